"""Everything about *where* a patch is, computed from `grid_thw` alone (no weights).

- which learned position-grid entries a patch interpolates from, and with what weights;
- the (row, col) ids that 2D rotary embedding rotates by;
- the attention segments (`cu_seqlens`) that keep packed images from seeing each other.

All three lists are in merge order (see `inputs.layout`), the order of `pixel_values`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qwen3vl_inspect.inputs.layout import merge_order_row_col


@dataclass(frozen=True)
class PatchPositions:
    """Per-patch position data for one packed batch of images/videos."""

    grid_thw: torch.Tensor  # [M, 3] (t, h, w) per image or video
    interp_indices: torch.Tensor  # [N, 4] learned-grid entries each patch blends (top-left, top-right, bottom-left, bottom-right)
    interp_weights: torch.Tensor  # [N, 4] float32 bilinear weights, each row sums to 1
    rotary_ids: torch.Tensor  # [N, 2] (row, col) on the patch grid
    cu_seqlens: torch.Tensor  # [S+1] int32 boundaries of attention segments (one per frame)

    @property
    def num_patches(self) -> int:
        return int(self.rotary_ids.shape[0])

    def segment_lengths(self) -> list[int]:
        return (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).tolist()


def _axis_taps(size: int, side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps along one axis with align_corners=True: output position i maps to
    src = i·(side-1)/(size-1) on the learned grid; it blends floor(src) and floor(src)+1."""
    index = torch.arange(size, device=device, dtype=torch.float32)
    src = index * (side - 1) / max(size - 1, 1)
    low = torch.floor(src)
    frac = src - low
    low = low.long()
    high = (low + 1).clamp(max=side - 1)
    return low, high, frac


def interpolation_taps(grid_h: int, grid_w: int, side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Raster-order [h·w, 4] indices into the side×side learned grid and their bilinear weights."""
    row_lo, row_hi, dy = _axis_taps(grid_h, side, device)
    col_lo, col_hi, dx = _axis_taps(grid_w, side, device)
    indices = torch.stack(
        [
            row_lo[:, None] * side + col_lo[None, :],
            row_lo[:, None] * side + col_hi[None, :],
            row_hi[:, None] * side + col_lo[None, :],
            row_hi[:, None] * side + col_hi[None, :],
        ],
        dim=-1,
    ).reshape(-1, 4)  # (h·w, 4)
    wy, wx = dy[:, None], dx[None, :]
    weights = torch.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], dim=-1).reshape(-1, 4)  # (h·w, 4)
    return indices, weights


def cu_seqlens_for(grid_thw: torch.Tensor) -> torch.Tensor:
    """Attention segment boundaries: every frame of every image is its own segment of h·w patches."""
    lengths = torch.repeat_interleave(grid_thw[:, 1] * grid_thw[:, 2], grid_thw[:, 0])
    return torch.nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0), value=0)


def patch_positions(grid_thw: torch.Tensor, num_grid_per_side: int, merge_size: int) -> PatchPositions:
    """Compute all per-patch position data for `grid_thw`, in merge order."""
    device = grid_thw.device
    indices, weights, rotary = [], [], []
    for t, h, w in grid_thw.tolist():
        if h % merge_size or w % merge_size:
            raise ValueError(f"grid {h}×{w} is not divisible by the merge size {merge_size}")
        rows, cols = merge_order_row_col(h, w, merge_size)
        raster = (rows * w + cols).to(device)
        taps, tap_weights = interpolation_taps(h, w, num_grid_per_side, device)
        indices.append(taps[raster].repeat(t, 1))  # (t·h·w, 4)
        weights.append(tap_weights[raster].repeat(t, 1))  # (t·h·w, 4)
        rotary.append(torch.stack([rows, cols], dim=-1).to(device).repeat(t, 1))  # (t·h·w, 2)
    return PatchPositions(
        grid_thw=grid_thw,
        interp_indices=torch.cat(indices),
        interp_weights=torch.cat(weights),
        rotary_ids=torch.cat(rotary),
        cu_seqlens=cu_seqlens_for(grid_thw).to(device),
    )


def rotary_inverse_frequencies(head_dim: int, theta: float, device: torch.device | None = None) -> torch.Tensor:
    """head_dim/4 frequencies: half the head dims rotate by the row id, half by the column id."""
    spatial_dim = head_dim // 2
    exponents = torch.arange(0, spatial_dim, 2, dtype=torch.float32, device=device) / spatial_dim
    return 1.0 / (theta**exponents)


def rotary_cos_sin(rotary_ids: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [N, head_dim] (float32) for 2D rotary embedding.

    Layout of the last axis: [row angles | col angles | row angles | col angles], each head_dim/4 wide,
    matching `rotate_half`, which pairs dimension d with d + head_dim/2.
    """
    inv_freq = rotary_inverse_frequencies(head_dim, theta, rotary_ids.device)
    angles = rotary_ids[..., None].float() * inv_freq  # (N, 2, head_dim/4)
    row_col = torch.cat([angles[:, 0], angles[:, 1]], dim=-1)  # (N, head_dim/2)
    full = torch.cat([row_col, row_col], dim=-1)  # (N, head_dim)
    return full.cos(), full.sin()
