"""What a stage view draws over the image: per-patch values in raster order, asked of the Trace.

Pure Python (no textual): the TUI computes these in worker threads, tests call them directly, and
the PNG export draws the same values with `render.heatmap`. Views never run model math; every
number here comes from `Trace.patch_norms`, `Trace.attention` or `Trace.rollout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from qwen3vl_inspect.inputs.layout import merge_order_row_col
from qwen3vl_inspect.tracing import Trace

# Kinds of view, by what the picture shows
IMAGE, PATCHIFY, ROTARY, NORMS, ATTENTION, PENDING, FAILED = (
    "image", "patchify", "rotary", "norms", "attention", "pending", "failed")
FUSION = "fusion"  # the merged-token grid of the language model's input (built by the TUI from a FusionResult)
ERROR = "error"  # `--against B`: per-patch max abs error of this stage against B (from a Comparison)


@dataclass(frozen=True)
class ViewSpec:
    """Everything that decides one picture; equal specs draw equal pictures (the cache key)."""

    stage: str
    kind: str
    layer: int | None = None
    head: int | None = None  # None: mean over heads
    rollout: bool = False
    query: tuple[int, int] | None = None  # None: attention received (column mean)

    @property
    def describes_attention(self) -> bool:
        return self.kind == ATTENTION


@dataclass
class Overlay:
    """Values to colour over the image (raster order), or fixed colours, and what they mean."""

    spec: ViewSpec
    what: str
    values: np.ndarray | None = None  # [rows, cols] float; rows×cols is the patch grid or the merged grid
    colours: np.ndarray | None = None  # [rows, cols, 3] uint8, drawn as is (rotary ids)
    groups: int = 0  # shade alternate groups of groups×groups value cells (2: merge blocks); 0: none
    query: tuple[int, int] | None = None  # patch to outline (patch-grid row, col)
    notes: list[str] = field(default_factory=list)
    query_span: int = 1  # the outline covers span×span patches from `query` (2: one merged token)
    query_label: str = "query"  # what the caption calls the outlined patch(es)

    def _scaled_cells(self) -> np.ndarray:
        """Finite-mask of the cells the colour scale is fitted to: all but the query's own cell, whose
        weight (large in rollout, which adds the identity) would otherwise wash out every other patch."""
        keep = np.isfinite(self.values)
        if (self.query is not None and self.query_span == 1 and self.values.shape[0] > self.query[0]
                and self.values.shape[1] > self.query[1]):
            others = keep.copy()
            others[self.query] = False
            if others.any():
                keep = others
        return keep

    @property
    def range(self) -> tuple[float, float] | None:
        if self.values is None:
            return None
        finite = self.values[self._scaled_cells()]
        return (float(finite.min()), float(finite.max())) if finite.size else None

    def normalised(self) -> np.ndarray:
        """Values mapped to [0, 1] over `range` (clipped); NaN/Inf become 0 so they never hide the image."""
        span = self.range
        if span is None:
            return np.zeros_like(self.values, dtype=float)
        low, high = span
        scaled = (self.values - low) / (high - low) if high > low else np.zeros_like(self.values, dtype=float)
        return np.where(np.isfinite(self.values), np.clip(scaled, 0.0, 1.0), 0.0)

    @property
    def nonfinite_cells(self) -> int:
        return 0 if self.values is None else int((~np.isfinite(self.values)).sum())


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def plain(spec: ViewSpec, what: str) -> Overlay:
    return Overlay(spec, what)


def patchify_overlay(tr: Trace, spec: ViewSpec) -> Overlay:
    """Each patch coloured by its position in the sequence: the 2×2 merge order made visible."""
    _, grid_h, grid_w = tr.grid_thw[0].tolist()
    merge = tr.config.spatial_merge_size
    rows, cols = merge_order_row_col(grid_h, grid_w, merge)
    order = np.empty((grid_h, grid_w))
    order[rows.numpy(), cols.numpy()] = np.arange(grid_h * grid_w)
    first = ", ".join(f"{k}→({r},{c})" for k, (r, c) in enumerate(zip(rows[:8].tolist(), cols[:8].tolist())))
    return Overlay(spec, f"sequence position of each patch (dark = first): {grid_h}×{grid_w} patches, "
                         f"listed {merge}×{merge} block by block", values=order, groups=merge,
                   notes=[f"row k of pixel_values is patch (row, col): {first}, …"])


def rotary_overlay(tr: Trace, spec: ViewSpec) -> Overlay:
    """The (row, col) ids each patch's rotary angles come from, as colours: red = col, green = row."""
    _, grid_h, grid_w = tr.grid_thw[0].tolist()
    row_ids = np.repeat(np.arange(grid_h)[:, None], grid_w, 1)
    col_ids = np.repeat(np.arange(grid_w)[None, :], grid_h, 0)
    colours = np.stack([col_ids * 255 // max(grid_w - 1, 1), row_ids * 255 // max(grid_h - 1, 1),
                        np.full_like(row_ids, 60)], axis=-1).astype(np.uint8)
    rows, cols = merge_order_row_col(grid_h, grid_w, tr.config.spatial_merge_size)
    first = ", ".join(f"({r},{c})" for r, c in zip(rows[:8].tolist(), cols[:8].tolist()))
    return Overlay(spec, f"rotary ids: red grows with the col id 0…{grid_w - 1}, green with the row id 0…{grid_h - 1}",
                   colours=colours, notes=[f"ids of tokens 0–7 (row, col): {first}, …"])


def norms_overlay(tr: Trace, spec: ViewSpec) -> Overlay:
    values = _numpy(tr.patch_norms(spec.stage))
    _, grid_h, _ = tr.grid_thw[0].tolist()
    merged = values.shape[0] < grid_h
    what = "L2 norm of each merged token (one per 2×2 group)" if merged else "L2 norm of each patch's vector"
    notes = []
    if merged:
        n, m = grid_h * tr.grid_thw[0, 2].item(), tr.config.merge_unit
        notes.append(f"{n} patches → {n // m} tokens: each 2×2 group of patches (one outlined square) "
                     f"became one token of the language model's width")
    return Overlay(spec, what, values=values, groups=1 if merged else 0, notes=notes)


def attention_matrix(tr: Trace, spec: ViewSpec) -> torch.Tensor:
    """[n, n] raster-order map for the spec: one head, the mean of heads, or rollout up to the layer."""
    if spec.rollout:
        return tr.rollout(spec.layer)
    if spec.head is not None:
        return tr.attention(spec.layer, spec.head)
    return tr.head_mean_attention(spec.layer)


def attention_overlay(tr: Trace, spec: ViewSpec) -> Overlay:
    _, grid_h, grid_w = tr.grid_thw[0].tolist()
    matrix = attention_matrix(tr, spec)
    heads = tr.config.num_heads
    who = (f"rollout of blocks 0–{spec.layer}" if spec.rollout
           else f"mean of {heads} heads" if spec.head is None else f"head {spec.head} of {heads}")
    if spec.query is None:
        values = matrix.mean(0).reshape(grid_h, grid_w)  # column mean: attention each patch receives
        what = f"{who} · attention received (mean over queries)"
    else:
        row, col = spec.query
        values = matrix[row * grid_w + col].reshape(grid_h, grid_w)  # the query's row
        what = f"{who} · where query ({row},{col}) looks"
    return Overlay(spec, what, values=_numpy(values), query=spec.query)


def compute(tr: Trace, spec: ViewSpec) -> Overlay:
    """The overlay for a computed stage (the caller holds the Trace's lock)."""
    if spec.kind == PATCHIFY:
        return patchify_overlay(tr, spec)
    if spec.kind == ROTARY:
        return rotary_overlay(tr, spec)
    if spec.kind == NORMS:
        return norms_overlay(tr, spec)
    if spec.kind == ATTENTION:
        return attention_overlay(tr, spec)
    image = tr.inputs.images[0]
    width, height = (image[0] if isinstance(image, list) else image).size
    return plain(spec, f"the resized image the patches are cut from, {width}×{height} pixels")
