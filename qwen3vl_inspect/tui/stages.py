"""Names and small helpers shared by the controller and the widgets: the stage plan known before the
model exists, stage-name arithmetic, and running an uninterruptible torch call so a quitting app
need not wait for it."""

from __future__ import annotations

import threading
from typing import Any, Callable

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.probe.tensors import TensorStats
from qwen3vl_inspect.stage import Stage
from qwen3vl_inspect.tracing import SUBSTAGE_TITLES, stage_names_for

FUSION = "fusion"  # the last entry of the list: a view over the finished Trace, not one of its stages


class Cancelled(Exception):
    """The worker that asked for this call was cancelled; its result is not wanted any more."""


def call_cancellable(fn: Callable[[], Any], cancelled: Callable[[], bool], poll: float = 0.05) -> Any:
    """Run `fn` in a daemon thread and wait, giving up (raising Cancelled) when `cancelled()` turns true.

    Torch calls can't be interrupted; running them in a daemon thread lets a quitting app leave at
    once instead of waiting seconds for a model build or a big block to finish.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="qwen3vl-inspect-call")
    thread.start()
    while thread.is_alive():
        thread.join(poll)
        if cancelled() and thread.is_alive():
            raise Cancelled()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def planned_stage_names(config: VisionConfig) -> list[str]:
    """The Trace's top-level stages for this config, known before the model is built (same order)."""
    return stage_names_for(config)


def planned_title(name: str, config: VisionConfig) -> str:
    fixed = {"input": "input & resize", "patchify": "patchify", "patch_embed": "patch embedding",
             "pos_embed": "position embedding", "rotary": "rotary embedding", "merger": "patch merger",
             FUSION: "vision-to-text fusion"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".")
    if parts[0] == "deepstack":
        return f"DeepStack merger {parts[1]} (block {config.deepstack_visual_indexes[int(parts[1])]})"
    if len(parts) == 3:
        return SUBSTAGE_TITLES[parts[2]]
    return f"block {parts[1]}"


def known_stats(stage: Stage) -> TensorStats | None:
    """Stats if already computed. A block step's stats are computed on first read (a recomputation of
    the block), which must happen in a worker, never on the UI thread: this never triggers it."""
    return stage.known_stats if stage.stats_ready else None


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "blocks" else None


def top_level(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "blocks" else name
