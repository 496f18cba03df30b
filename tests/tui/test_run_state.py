"""The run-state machine and typed failures: plain Python, no terminal."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.stage import StageError
from qwen3vl_inspect.tui import screens
from qwen3vl_inspect.tui.failure import Failure, FailureKind
from qwen3vl_inspect.tui.run_state import Next, RunControl, RunState


def test_a_run_to_the_end():
    run = RunControl()
    assert run.state is RunState.LOADING
    assert run.loaded() is Next.RUN_ON and run.state is RunState.RUNNING
    run.stage_started("patch_embed")
    assert run.computing == "patch_embed" and "patch_embed" in run.activity
    run.stage_computed()
    assert run.computing is None
    assert run.encoder_finished(fusion_started=False) is Next.FUSION and run.state is RunState.FUSING
    assert run.state.badge == "RUN"  # fusing is part of the run for the user
    assert run.encoder_finished(fusion_started=True) is Next.NOTHING  # the fusion starts once
    run.fusion_finished(stages=40)
    assert run.state is RunState.DONE and run.activity == "all 40 stages computed"


def test_step_mode_waits_for_space_and_steps_one_stage():
    run = RunControl(step_mode=True)
    assert run.loaded() is Next.NOTHING and run.state is RunState.STEPPING
    assert run.request_step(loaded=True, engine_busy=False, finished=False) is Next.ONE_STAGE
    run.paused("step", "patchify")
    assert run.state is RunState.STEPPING and "computed patchify" in run.activity
    assert run.request_continue(loaded=True, engine_busy=False, finished=False) is Next.RUN_ON
    assert not run.step_mode and run.state is RunState.RUNNING


def test_space_while_running_asks_the_worker_to_pause_and_the_pause_clears_the_request():
    run = RunControl()
    run.loaded()
    assert run.request_step(loaded=True, engine_busy=True, finished=False) is Next.NOTHING
    assert run.pause_requested  # the worker reads this between stages
    run.paused("paused", None)
    assert not run.pause_requested and run.step_mode and run.state is RunState.STEPPING


def test_a_breakpoint_pauses_and_continue_runs_on():
    run = RunControl()
    run.loaded()
    run.paused("breakpoint", "blocks.1")
    assert run.state is RunState.PAUSED and run.state.badge == "PAUSED" and run.paused_at == "blocks.1"
    assert run.request_continue(loaded=True, engine_busy=False, finished=False) is Next.RUN_ON
    assert run.paused_at is None


def test_a_failed_run_computes_nothing_more():
    run = RunControl()
    run.loaded()
    run.stage_failed("blocks.2", Failure.of(RuntimeError("boom")))
    assert run.state is RunState.FAILED and run.activity == "blocks.2 failed: RuntimeError: boom"
    assert run.request_step(loaded=True, engine_busy=False, finished=False) is Next.NOTHING
    assert run.request_continue(loaded=True, engine_busy=False, finished=False) is Next.NOTHING


def test_space_before_the_model_is_loaded_chooses_step_mode():
    run = RunControl()
    assert run.request_step(loaded=False, engine_busy=True, finished=False) is Next.NOTHING
    assert run.step_mode and run.loaded() is Next.NOTHING


@pytest.mark.parametrize("exc, kind, text", [
    (InputError("photo.png: file not found"), FailureKind.BAD_INPUT, "photo.png: file not found"),
    (StageError("blocks.3", RuntimeError("[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: not enough memory")),
     FailureKind.OUT_OF_MEMORY, "out of memory"),
    (MemoryError(), FailureKind.OUT_OF_MEMORY, "--max-pixels"),
    (StageError("merger", ValueError("bad shape")), FailureKind.ERROR, "ValueError: bad shape"),
])
def test_failures_are_typed_from_the_exception(exc, kind, text):
    failure = Failure.of(exc)
    assert failure.kind is kind and text in str(failure) and "\n" not in str(failure)


def test_workers_never_change_the_controllers_state():
    """Worker threads read the Inspector and post messages; only the UI thread changes it."""
    source = Path(screens.__file__).parent / "workers.py"
    tree = ast.parse(source.read_text())
    writes = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and isinstance(part.value, (ast.Name, ast.Attribute)):
                    owner = ast.unparse(part.value)
                    if owner in ("ins", "self.inspector") or owner.startswith(("ins.", "self.inspector.")):
                        writes.append(f"line {node.lineno}: {ast.unparse(target)}")
    assert writes == []
    assert "post_message" in source.read_text()  # the guard looks at the right file
