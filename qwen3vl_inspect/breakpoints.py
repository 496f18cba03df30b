"""Stage breakpoints for any debugger: QWEN3VL_INSPECT_BREAK=blocks.5.attn,merger (names or globs).

When a Trace computes a matching stage it calls `breakpoint()` from `stop_at_stage`, whose local
variables are the stage and its tensors, so VS Code, pdb or any `PYTHONBREAKPOINT` hook stops
with them in view. Read from the environment at every check, so it can be set while running.
The TUI owns the terminal, where `breakpoint()` in a worker thread would hang the app: it turns the
patterns into its own breakpoints (`top_level_matches`) and sets `Trace.stop_in_debugger = False`.
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


def step_names(stage_names: list[str]) -> list[str]:
    """Every name a pattern can match: the top-level stages and each block's steps."""
    from qwen3vl_inspect.stage_name import BLOCK_STEPS, StageName

    names: list[str] = []
    for name in stage_names:
        names.append(name)
        if StageName.parse(name).kind == "block":
            names += [f"{name}.{step}" for step in BLOCK_STEPS]
    return names


def unmatched(patterns: list[str], stage_names: list[str]) -> list[str]:
    """The patterns that match no stage or block step of this run (a typo would otherwise stop nowhere)."""
    names = step_names(stage_names)
    return [p for p in patterns if not any(fnmatchcase(n, p) for n in names)]


def describe_names(stage_names: list[str]) -> str:
    """`input, patchify, …, blocks.0..blocks.23 (steps blocks.N.norm1|attn|…), deepstack.0..deepstack.2, merger`."""
    from qwen3vl_inspect.stage_name import BLOCK_STEPS, StageName

    parts: list[str] = []
    blocks = [n for n in stage_names if StageName.parse(n).kind == "block"]
    taps = [n for n in stage_names if StageName.parse(n).kind == "deepstack"]
    for name in stage_names:
        kind = StageName.parse(name).kind
        if kind == "block" and name == blocks[0]:
            parts.append(f"{blocks[0]}..{blocks[-1]} (steps blocks.N.{'|'.join(BLOCK_STEPS)})")
        elif kind == "deepstack" and name == taps[0]:
            parts.append(f"{taps[0]}..{taps[-1]}" if len(taps) > 1 else name)
        elif kind not in ("block", "deepstack"):
            parts.append(name)
    return ", ".join(parts)


def unmatched_warning(stage_names: list[str]) -> str | None:
    """One line when QWEN3VL_INSPECT_BREAK holds patterns that match nothing in this run, else None."""
    from qwen3vl_inspect.formatting import safe_text

    missing = unmatched(break_patterns(), stage_names)
    if not missing:
        return None
    return (f"{ENV_VAR} pattern(s) {', '.join(repr(safe_text(p)) for p in missing)} match no stage; "
            f"stages are: {describe_names(stage_names)} (globs such as blocks.*.attn work)")


def matching_stages(stage: Stage, patterns: list[str]) -> list[Stage]:
    """The stage and/or its sub-stages whose names match one of the patterns, in order."""
    return [s for s in (stage, *stage.substages) if any(fnmatchcase(s.name, p) for p in patterns)]


def stop_at_stage(trace: Trace, stage: Stage) -> None:
    """Enter the debugger with this stage's tensors as locals: `output`, `block_input`, `stage`, `trace`."""
    # locals for the debugger's variables view
    output: torch.Tensor | None = trace.tensor(stage.name) if stage.kind != "input" else None  # noqa: F841
    block_input = trace.block_input(stage.layer) if stage.layer is not None else None  # noqa: F841
    name, explanation = stage.name, stage.explanation  # noqa: F841
    breakpoint()  # QWEN3VL_INSPECT_BREAK matched this stage: step or inspect `output`, `block_input`, `trace`


def top_level_matches(patterns: list[str], stage_names: list[str]) -> list[str]:
    """The top-level stages a front end without a debugger pauses after: a pattern on a block step
    (`blocks.3.attn`) pauses after its block, which computes all its steps together."""
    from qwen3vl_inspect.stage_name import StageName

    hits = {str(StageName.parse(name).top) for name in step_names(stage_names)
            if any(fnmatchcase(name, p) for p in patterns)}
    return [name for name in stage_names if name in hits]


def check(trace: Trace, stage: Stage) -> None:
    if not trace.stop_in_debugger:  # a front end that owns the terminal (the TUI) pauses by itself instead
        return
    patterns = break_patterns()
    if patterns:
        for hit in matching_stages(stage, patterns):
            stop_at_stage(trace, hit)
