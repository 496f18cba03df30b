"""Pictures of a Comparison: error growth across layers, and the per-patch error over the image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from qwen3vl_inspect.inputs.layout import merge_to_raster

if TYPE_CHECKING:
    from qwen3vl_inspect.comparison.result import Comparison


def error_growth_figure(result: Comparison, ax=None):
    """Max abs error and tolerance at every top-level stage (patch_embed … blocks … merger), log scale.

    Sub-stages are left out so the x axis reads as depth; diverged stages are red dots.
    """
    from matplotlib.figure import Figure

    rows = [r for r in result.stages if r.diff is not None and r.name.count(".") < 2]
    if ax is None:
        fig = Figure(figsize=(max(6.0, 0.35 * len(rows)), 3.6), dpi=110)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    x = range(len(rows))
    floor = 1e-12  # log axes can't show 0: bitwise-equal stages sit on the bottom
    ax.semilogy(x, [max(r.diff.max_abs, floor) for r in rows], "o-", label="max abs error (b vs a)")
    ax.semilogy(x, [max(r.tolerance or floor, floor) for r in rows], "--", color="grey", label="tolerance")
    bad = [i for i, r in enumerate(rows) if not r.ok]
    if bad:
        ax.semilogy(bad, [max(rows[i].diff.max_abs, floor) for i in bad], "o", color="red", label="diverged")
    ax.set_xticks(list(x), [r.name for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("max abs error")
    ax.set_title(f"{result.b_label} vs {result.a_label}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def default_stage(result: Comparison) -> str:
    """The first divergence with per-token numbers, else the merger (what the language model receives)."""
    for row in result.stages:
        if not row.ok and row.diff is not None and row.location is not None:
            return row.name
    names = [r.name for r in result.stages if r.diff is not None and r.location is not None]
    return "merger" if "merger" in names else names[-1]


def error_grid(result: Comparison, name: str | None = None, image: int = 0) -> torch.Tensor:
    """[grid_h, grid_w] max abs error per patch of image `image`, frame 0, raster order.

    Merged-token stages (N/4 rows) give each of a token's 2×2 patches the token's error."""
    row = result[name or default_stage(result)]
    if row.diff is None or row.location is None:
        raise ValueError(f"stage {row.name} has no per-patch error to draw")
    grid = result.grid_thw.cpu()
    t, h, w = (int(v) for v in grid[image])
    merge = int(round((int(grid.prod(-1).sum()) / row.diff.per_token.shape[0]) ** 0.5)) if row.merged else 1
    sizes = [int(g.prod()) // merge**2 for g in grid]
    start = sum(sizes[:image])
    values = row.diff.per_token[start:start + sizes[image]]
    if row.merged:
        merged = values[: (h // merge) * (w // merge)].reshape(h // merge, w // merge)  # (h/m, w/m), raster
        return merged.repeat_interleave(merge, 0).repeat_interleave(merge, 1)  # (h, w)
    frame = values[: h * w]
    size = _merge_size(result)
    return merge_to_raster(frame, torch.tensor([[1, h, w]]), size).reshape(h, w)  # (h, w)


def _merge_size(result: Comparison) -> int:
    for row in result.stages:
        if row.merged and row.shape_a:
            patches = int(result.grid_thw.prod(-1).sum())
            return int(round((patches / row.shape_a[0]) ** 0.5))
    return 2


def error_overlay_figure(result: Comparison, name: str | None = None, image: int = 0, ax=None):
    """The per-patch error of one stage over the resized image; returns the Figure."""
    from qwen3vl_inspect.render.heatmap import overlay_figure

    stage = name or default_stage(result)
    picture = result.inputs.images[image]
    picture = picture[0] if isinstance(picture, list) else picture
    title = f"max abs error per patch at {stage}: {result.b_label} vs {result.a_label}"
    return overlay_figure(picture, error_grid(result, stage, image), title=title, ax=ax)
