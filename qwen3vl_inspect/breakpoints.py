"""Stage breakpoints for any debugger: QWEN3VL_INSPECT_BREAK=blocks.5.attn,merger (names or globs).

When a Trace computes a matching stage it calls `breakpoint()` from `stop_at_stage`, whose local
variables are the stage and its tensors, so VS Code, pdb or any `PYTHONBREAKPOINT` hook stops
with them in view. Read from the environment at every check, so it can be set while running.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from qwen3vl_inspect.stage import Stage
    from qwen3vl_inspect.tracing import Trace

ENV_VAR = "QWEN3VL_INSPECT_BREAK"


def break_patterns() -> list[str]:
    return [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]


def matching_stages(stage: "Stage", patterns: list[str]) -> list["Stage"]:
    """The stage and/or its sub-stages whose names match one of the patterns, in order."""
    return [s for s in (stage, *stage.substages) if any(fnmatchcase(s.name, p) for p in patterns)]


def stop_at_stage(trace: "Trace", stage: "Stage") -> None:
    """Enter the debugger with this stage's tensors as locals: `output`, `block_input`, `stage`, `trace`."""
    output: torch.Tensor | None = trace.tensor(stage.name) if stage.kind != "input" else None
    block_input = trace.block_input(stage.layer) if stage.layer is not None else None
    name, explanation = stage.name, stage.explanation  # noqa: F841 - for the debugger's variables view
    breakpoint()  # QWEN3VL_INSPECT_BREAK matched this stage: step or inspect `output`, `block_input`, `trace`


def check(trace: "Trace", stage: "Stage") -> None:
    patterns = break_patterns()
    if patterns:
        for hit in matching_stages(stage, patterns):
            stop_at_stage(trace, hit)
