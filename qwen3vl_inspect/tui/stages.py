"""Small helpers shared by the controller and the widgets: the stage plan known before the model
exists (titles), and running an uninterruptible torch call so a quitting app
need not wait for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.stage_name import StageName

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


def planned_title(name: str, config: VisionConfig) -> str:
    """A list row's title: a block step's own title ("attention") under its block."""
    return StageName.parse(name).short_title(config)
