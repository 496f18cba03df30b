"""`compare(a, b, inputs)`: run both sides once, line their stages up, and judge every one.

    from qwen3vl_inspect import compare
    result = compare(encoder, hf_visual, inputs)         # or an .onnx path, or encoder.to(torch.bfloat16)
    result.first_divergence                               # e.g. blocks.3.mlp, introduced there
    result                                                # a table in Jupyter / rich

Cost: one forward of a and one of b with hooks, one forward of a at the other dtype when the dtypes
differ (the precision floor), and one module call per diverged stage (the replay).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qwen3vl_inspect.comparison import tolerance as tol
from qwen3vl_inspect.comparison.metrics import difference
from qwen3vl_inspect.comparison.recording import INTEGER_STAGES, Recording, module_dtype, record
from qwen3vl_inspect.comparison.replay import NO_UPSTREAM, REPLAY, local_error
from qwen3vl_inspect.comparison.result import (
    DIVERGED,
    EQUAL,
    INHERITED,
    INTRODUCED,
    MISSING_A,
    MISSING_B,
    SHAPE_MISMATCH,
    WITHIN,
    Comparison,
    StageComparison,
)
from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.inputs.layout import token_pixel_box


def compare(a: Any, b: Any, inputs: Any = None, rtol: float | None = None, atol: float | None = None, *,
            substages: bool = True, floor: bool = True) -> Comparison:
    """Compare run b against run a (the reference) stage by stage on the same inputs.

    `a`, `b`: a `VisionEncoder` (any dtype/device), transformers' `Qwen3VLVisionModel` or any module with
    its submodule names, or the path of an ONNX file from `qwen3vl-inspect export`. `inputs`: a
    `VisionInputs` (from `preprocess`), or an image path / PIL image / list of them (default: the demo
    image). `rtol`/`atol` replace the measured tolerance (atol + rtol·max|a| at every stage);
    `floor=False` skips the precision-floor re-run and uses float rounding instead.
    """
    inputs = _as_inputs(inputs)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    rec_a = record(a, inputs, _label(a), substages)
    seconds["run a"] = time.perf_counter() - started
    started = time.perf_counter()
    rec_b = record(b, inputs, _label(b), substages)
    seconds["run b"] = time.perf_counter() - started
    floor_at = tol.floor_dtype(rec_a, rec_b) if floor and rtol is None and atol is None else None
    floors: dict[str, float] = {}
    if floor_at is not None:
        started = time.perf_counter()
        floors = tol.measure_floor(rec_a, inputs, floor_at, substages)
        seconds["precision floor"] = time.perf_counter() - started
    started = time.perf_counter()
    eps = tol.fallback_eps(rec_a, rec_b)
    names, not_exposed = _stage_names(rec_a, rec_b, substages)
    with _one_thread():
        rows = [_judge(name, rec_a, rec_b, inputs, floors.get(name) if floor_at else None, rtol, atol, eps)
                for name in names]
    _assign_origins(rows, rec_a, rec_b)
    seconds["compare"] = time.perf_counter() - started
    note = tol.describe(floor_at, floor_at is not None, rtol, atol, eps)
    errors = {side: rec.error for side, rec in (("a", rec_a), ("b", rec_b)) if rec.error}
    return Comparison(rec_a.label, rec_b.label, rows, inputs.grid_thw.cpu(), note, not_exposed, seconds, inputs, errors)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Judging is dozens of reductions over a few MB each: split across threads they spend more time
    waiting on each other than adding (measured 2× slower with 2 threads on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _as_inputs(inputs: Any) -> VisionInputs:
    if isinstance(inputs, VisionInputs):
        return inputs
    from qwen3vl_inspect.session import load_inputs

    return load_inputs(inputs)


def _label(side: Any) -> str:
    if isinstance(side, (str, Path)):
        return Path(side).name
    if isinstance(side, nn.Module):
        config = getattr(side, "config", None)
        source = getattr(config, "source", None)
        name = source if isinstance(source, str) and source else type(side).__name__
        return f"{name} ({str(module_dtype(side)).removeprefix('torch.')})"
    return type(side).__name__


def _stage_names(a: Recording, b: Recording, substages: bool) -> tuple[list[str], list[str]]:
    """Integer tensors first, then a's data-flow order with b's extra stages after their predecessor."""
    order = list(a.tensors)
    for previous, name in zip([None, *b.tensors], b.tensors):
        if name not in order:
            order.insert(order.index(previous) + 1 if previous in order else len(order), name)
    order = [n for n in INTEGER_STAGES if n in order] + [n for n in order if n not in INTEGER_STAGES]
    if not substages:
        order = [n for n in order if n.count(".") < 2]
    kept, not_exposed = [], []
    for name in order:
        absent = a if name not in a.tensors else b if name not in b.tensors else None
        if absent is not None and not absent.claims(name):
            not_exposed.append(name)
        else:
            kept.append(name)
    return kept, not_exposed


def _judge(name: str, a: Recording, b: Recording, inputs: VisionInputs, floor: float | None,
           rtol: float | None, atol: float | None, eps: float) -> StageComparison:
    ta, tb = a.tensors.get(name), b.tensors.get(name)
    row = StageComparison(name, EQUAL, _shape(ta), _shape(tb), _dtype(ta), _dtype(tb))
    if ta is None or tb is None:
        row.status = MISSING_A if ta is None else MISSING_B
        return row
    row.integer = not ta.is_floating_point() and not tb.is_floating_point()
    if ta.shape != tb.shape:
        row.status = SHAPE_MISMATCH
        return row
    if row.integer:
        row.status = EQUAL if torch.equal(ta.cpu().long(), tb.cpu().long()) else DIVERGED
        row.tolerance = 0.0
        return row
    row.diff = diff = difference(ta, tb)
    row.tolerance = tol.stage_tolerance(diff.scale, floor, rtol, atol, eps)
    row.location, row.merged = _location(diff.row, ta.shape[0], inputs, a)
    if diff.nonfinite_differs:
        row.status = DIVERGED
    elif diff.max_abs == 0:
        row.status = EQUAL
    else:
        row.status = WITHIN if diff.max_abs <= row.tolerance else DIVERGED
    return row


def _location(index: int, tokens: int, inputs: VisionInputs, side: Recording):
    """The pixel box of token `index`, when the rows are patches (N) or merged tokens (N/4)."""
    patches = int(inputs.grid_thw.prod(-1).sum())
    unit = side.merge_size**2
    if tokens not in (patches, patches // unit):
        return None, False
    merged = tokens != patches
    box = token_pixel_box(index, inputs.grid_thw.cpu(), side.patch_size, side.merge_size, merged=merged)
    return box, merged


def _assign_origins(rows: list[StageComparison], a: Recording, b: Recording) -> None:
    """For each diverged stage: replay b's module on a's input, or fall back to the stage upstream."""
    upstream_ok = True  # the last stage on the main path (not a DeepStack branch) was within tolerance
    for row in rows:
        if row.status == DIVERGED and not row.integer:
            error, how = local_error(row.name, a, b)
            row.local_error, row.origin_how = error, how
            if how == REPLAY and error is not None:
                row.origin = INTRODUCED if error > (row.tolerance or 0.0) else INHERITED
            elif how == NO_UPSTREAM:
                row.origin = INTRODUCED
            else:
                row.origin = INTRODUCED if upstream_ok else INHERITED
        elif row.status == DIVERGED:
            row.origin, row.origin_how = INTRODUCED, NO_UPSTREAM
        if not row.name.startswith("deepstack.") and not row.integer and row.status not in (MISSING_A, MISSING_B):
            upstream_ok = row.ok
        if row.status == SHAPE_MISMATCH:
            upstream_ok = False


def _shape(t: torch.Tensor | None) -> tuple[int, ...] | None:
    return None if t is None else tuple(t.shape)


def _dtype(t: torch.Tensor | None) -> str | None:
    return None if t is None else str(t.dtype).removeprefix("torch.")
