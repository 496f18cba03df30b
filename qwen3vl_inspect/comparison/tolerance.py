"""How much difference is "the same": a per-stage tolerance measured from a precision floor.

A fixed atol is wrong at every stage but one: values grow through the blocks, and bf16 rounding at
block 20 is far larger than at the patch embedding. So the reference (a) is re-run at the other side's
dtype, and the error that rounding alone makes at each stage (the floor), times SAFETY, is what b may
differ by. When both sides share a dtype, a is re-run in float32 if that dtype is a low-precision
one; two float32 runs differ only by summation order, so the floor is then ROUNDING·eps·max|a|.
"""

from __future__ import annotations

import copy

import torch

from qwen3vl_inspect.comparison.metrics import max_abs_error
from qwen3vl_inspect.comparison.recording import Recording, record_module
from qwen3vl_inspect.inputs.image import VisionInputs

SAFETY = 4.0  # b may be this many times as far from a as a's own rounding at the lower dtype
ROUNDING = 64  # float32 vs float32: kernels that add in another order differ by a few eps per op
FLOAT32_EPS = torch.finfo(torch.float32).eps


def precision_rank(dtype: torch.dtype | None) -> float:
    """Smaller is coarser: the machine epsilon's reciprocal."""
    return 1 / torch.finfo(dtype or torch.float32).eps


def floor_dtype(a: Recording, b: Recording) -> torch.dtype | None:
    """The dtype to re-run a at, or None when no re-run says anything (a is ONNX, or both float32/64)."""
    if a.module is None:
        return None
    a_dtype, b_dtype = a.dtype or torch.float32, b.dtype or torch.float32
    if a_dtype != b_dtype:
        return b_dtype
    if precision_rank(a_dtype) < precision_rank(torch.float32):  # bf16 vs bf16: a's distance from float32
        return torch.float32
    return None


def measure_floor(a: Recording, inputs: VisionInputs, dtype: torch.dtype, substages: bool = True) -> dict[str, float]:
    """Re-run a's module at `dtype` on the same inputs; max abs error against a at every float stage."""
    twin = copy.deepcopy(a.module).to(dtype)
    floors: dict[str, float] = {}

    def measure(name: str, tensor: torch.Tensor) -> None:
        reference = a.tensors.get(name)
        if reference is not None and reference.is_floating_point() and reference.shape == tensor.shape:
            floors[name] = max_abs_error(reference, tensor)

    record_module(twin, inputs, f"{a.label} at {dtype}", sink=measure, substages=substages)
    return floors


def stage_tolerance(scale: float, floor: float | None, rtol: float | None, atol: float | None,
                    fallback_eps: float = FLOAT32_EPS) -> float:
    """Allowed max abs error at a stage whose reference has max |a| = `scale`."""
    if rtol is not None or atol is not None:
        return (atol or 0.0) + (rtol or 0.0) * scale
    rounding = ROUNDING * fallback_eps * scale
    return rounding if floor is None else SAFETY * floor + ROUNDING * FLOAT32_EPS * scale


def describe(floor_at: torch.dtype | None, measured: bool, rtol: float | None, atol: float | None,
             fallback_eps: float) -> str:
    if rtol is not None or atol is not None:
        return f"fixed: atol {atol or 0:g} + rtol {rtol or 0:g}·max|a|"
    if measured:
        return f"precision floor: a re-run in {str(floor_at).removeprefix('torch.')}, ×{SAFETY:g}"
    return f"rounding: {ROUNDING}·eps·max|a| (eps {fallback_eps:.2g})"


def fallback_eps(a: Recording, b: Recording) -> float:
    """The epsilon of the coarser side, when no floor could be measured."""
    coarse = min((a.dtype or torch.float32, b.dtype or torch.float32), key=precision_rank)
    return torch.finfo(coarse).eps
