"""How far apart two tensors of one stage are: pure functions returning a dataclass.

Every number is computed in float32 on a [tokens, features] view (the first axis is the token, patch
or merged token), because a per-token answer is what can be drawn over the image. NaN/Inf are counted
on each side; the error numbers use only positions finite on both sides, and a different NaN/Inf
pattern is itself a divergence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Nonfinite:
    nan: int = 0
    inf: int = 0

    @property
    def total(self) -> int:
        return self.nan + self.inf


@dataclass
class Difference:
    """The error of b against a (the reference) at one stage."""

    max_abs: float  # max |a - b| over finite positions
    row: int  # the token (first-axis index) holding max_abs
    scale: float  # max |a|: what the error is relative to
    rel_error: float  # ‖a - b‖ / ‖a‖ (Frobenius)
    cos_min: float  # per-token cosine similarity of a and b: the worst token
    cos_mean: float
    sqnr_db: float  # 10·log10(‖a‖² / ‖a - b‖²); inf when equal
    nonfinite_a: Nonfinite
    nonfinite_b: Nonfinite
    nonfinite_differs: bool  # NaN/Inf at different places on the two sides
    per_token: torch.Tensor  # [tokens] max |a - b| of each token (float32, CPU): the heatmap


def nonfinite(x: torch.Tensor) -> Nonfinite:
    if not x.is_floating_point():
        return Nonfinite()
    return Nonfinite(int(torch.isnan(x).sum()), int(torch.isinf(x).sum()))


def _nonfinite_code(x: torch.Tensor) -> torch.Tensor:
    """0 where finite, 1 NaN, 2 +Inf, -2 -Inf: equal codes mean the same NaN/Inf pattern."""
    return torch.where(torch.isfinite(x), 0.0, torch.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-2.0))


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """float32 CPU [tokens, features] (a 1-D tensor becomes one feature per token)."""
    x = x.detach().float().cpu()
    return x.reshape(x.shape[0], -1) if x.dim() != 1 else x[:, None]  # (tokens, features)


def difference(a: torch.Tensor, b: torch.Tensor) -> Difference:
    """Compare two tensors of the same shape; `a` is the reference."""
    a, b = as_rows(a), as_rows(b)
    norm_a, norm_b = torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(b, dim=1)  # (tokens,)
    bad_a = bad_b = Nonfinite()
    differs = False
    if not bool(torch.isfinite(norm_a.sum() + norm_b.sum())):  # a NaN/Inf anywhere shows in the norms
        bad_a, bad_b = nonfinite(a), nonfinite(b)
        differs = not torch.equal(_nonfinite_code(a), _nonfinite_code(b))
        both = torch.isfinite(a) & torch.isfinite(b)
        a, b = torch.where(both, a, 0.0), torch.where(both, b, 0.0)  # compare the positions finite on both
        norm_a, norm_b = torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(b, dim=1)
    delta = a - b  # the one full-size temporary: fresh large buffers cost more than the arithmetic
    norm_delta = torch.linalg.vector_norm(delta, dim=1)  # (tokens,)
    per_token = delta.abs_().amax(1)  # (tokens,) max |a - b| per token (delta is not needed after this)
    row = int(per_token.argmax()) if per_token.numel() else 0
    max_abs = float(per_token[row]) if per_token.numel() else 0.0
    error2, signal2 = float(torch.dot(norm_delta, norm_delta)), float(torch.dot(norm_a, norm_a))
    # a·b per token from the three norms (no product tensor); exact to float32 rounding (~1e-7 in cos)
    dots = (norm_a * norm_a + norm_b * norm_b - norm_delta * norm_delta) / 2  # (tokens,)
    cos = (dots / (norm_a * norm_b).clamp_min(1e-30)).clamp(-1.0, 1.0)
    cos = torch.where((norm_a == 0) & (norm_b == 0), 1.0, cos)
    low, high = torch.aminmax(a) if a.numel() else (torch.tensor(0.0), torch.tensor(0.0))
    return Difference(
        max_abs=max_abs,
        row=row,
        scale=max(abs(float(low)), abs(float(high))),
        rel_error=math.sqrt(error2 / signal2) if signal2 > 0 else (0.0 if error2 == 0 else math.inf),
        cos_min=float(cos.min()) if cos.numel() else 1.0,
        cos_mean=float(cos.mean()) if cos.numel() else 1.0,
        sqnr_db=10 * math.log10(signal2 / error2) if error2 > 0 and signal2 > 0 else (math.inf if error2 == 0 else -math.inf),
        nonfinite_a=bad_a,
        nonfinite_b=bad_b,
        nonfinite_differs=differs,
        per_token=per_token,
    )


def max_abs_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Just the largest |a - b| (float32): what a precision floor and a replay need."""
    delta = (a.detach().float().cpu() - b.detach().float().cpu()).abs()
    return float(torch.nan_to_num(delta, nan=math.inf).max()) if delta.numel() else 0.0
