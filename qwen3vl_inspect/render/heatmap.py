"""Per-patch values drawn over the resized image: colormapped, blended, patch-aligned.

Values come in raster order on the patch grid (what `Trace.attention`, `Trace.patch_norms` give);
each value covers exactly its patch's pixels, so boundaries line up with the model's patches.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw


def _as_grid(values: torch.Tensor | np.ndarray) -> np.ndarray:
    grid = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    if grid.ndim != 2:
        raise ValueError(f"expected a 2D grid of per-patch values, got shape {grid.shape}")
    return grid


def normalise(grid: np.ndarray) -> np.ndarray:
    """Scale finite values to [0, 1] (min to max); NaN/Inf become 0 so they never hide the image."""
    finite = np.isfinite(grid)
    if not finite.any():
        return np.zeros_like(grid, dtype=float)
    low, high = grid[finite].min(), grid[finite].max()
    scaled = (grid - low) / (high - low) if high > low else np.zeros_like(grid, dtype=float)
    return np.where(finite, scaled, 0.0)


def colorize(grid: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """[h, w] values in [0, 1] → [h, w, 3] uint8 through a matplotlib colormap."""
    from matplotlib import colormaps

    return (colormaps[cmap](grid)[..., :3] * 255).astype(np.uint8)


def overlay(
    image: Image.Image,
    values: torch.Tensor | np.ndarray,
    cmap: str = "inferno",
    alpha: float = 0.6,
    query: tuple[int, int] | None = None,
) -> Image.Image:
    """Blend the colormapped grid over `image` (the resized image the grid was computed on).

    `query` (row, col) outlines one patch, e.g. the query whose attention is shown.
    """
    grid = _as_grid(values)
    rows, cols = grid.shape
    colours = Image.fromarray(colorize(normalise(grid), cmap)).resize(image.size, Image.NEAREST)
    blended = Image.blend(image.convert("RGB"), colours, alpha)
    if query is not None:
        cell_w, cell_h = image.width / cols, image.height / rows
        row, col = query
        box = (col * cell_w, row * cell_h, (col + 1) * cell_w - 1, (row + 1) * cell_h - 1)
        ImageDraw.Draw(blended).rectangle(box, outline=(0, 255, 255), width=max(1, round(cell_w / 8)))
    return blended


def overlay_figure(
    image: Image.Image,
    values: torch.Tensor | np.ndarray,
    title: str = "",
    cmap: str = "inferno",
    alpha: float = 0.6,
    query: tuple[int, int] | None = None,
    ax=None,
):
    """The overlay in a matplotlib Figure with a title and a colorbar of the raw values; returns the Figure."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    grid = _as_grid(values)
    if ax is None:  # a bare Figure (no pyplot): no global backend state, nothing left open
        fig = Figure(figsize=(7, 7 * image.height / image.width + 0.6), dpi=110)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.imshow(overlay(image, grid, cmap, alpha, query))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    finite = grid[np.isfinite(grid)]
    norm = Normalize(float(finite.min()) if finite.size else 0.0, float(finite.max()) if finite.size else 1.0)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.035, pad=0.02)
    return fig
