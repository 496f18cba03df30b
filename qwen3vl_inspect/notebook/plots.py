"""Matplotlib figures for notebooks: `render.heatmap.overlay_figure` on axes made here.

`overlay_figure(ax=None)` switches matplotlib to the Agg backend (right for scripts and the CLI),
which would stop a notebook's inline figures from showing; making the axes here with pyplot keeps
the notebook's backend and still uses the one drawing function every view shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from qwen3vl_inspect.render.heatmap import overlay_figure


def scale_without_query(values: torch.Tensor | np.ndarray, query: tuple[int, int] | None) -> np.ndarray:
    """The grid with the query's own cell clipped to the largest other value.

    A query's attention to itself (large in rollout, which adds the identity) would otherwise set the
    top of the colour scale and leave every other patch black; the TUI and the widgets scale the same way.
    """
    grid = (values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)).copy()
    if query is None or grid.size < 2:
        return grid
    others = np.delete(grid.reshape(-1), query[0] * grid.shape[1] + query[1])
    finite = others[np.isfinite(others)]
    if finite.size and np.isfinite(grid[query]):
        grid[query] = min(grid[query], finite.max())
    return grid


def overlay_plot(image: Image.Image, values: torch.Tensor | np.ndarray, title: str = "",
                 query: tuple[int, int] | None = None, ax: Any = None, cmap: str = "inferno", width: float = 6.0):
    """Per-patch values over the resized image, with a colorbar; returns the Figure.

    With a `query`, its own cell is clipped to the largest other value (see `scale_without_query`).
    """
    if ax is None:
        from matplotlib import pyplot as plt

        _, ax = plt.subplots(figsize=(width, width * image.height / image.width + 0.6), dpi=100)
    return overlay_figure(image, scale_without_query(values, query), title=title, cmap=cmap, query=query, ax=ax)


def overlay_grid(image: Image.Image, panels: Sequence[tuple[str, torch.Tensor | np.ndarray]],
                 query: tuple[int, int] | None = None, columns: int = 3, width: float = 4.5):
    """Several overlays side by side (e.g. three heads of one block); returns the Figure."""
    from matplotlib import pyplot as plt

    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, (width * image.height / image.width + 0.7) * rows),
                                dpi=100, squeeze=False)
    for ax, (title, values) in zip(axes.flat, panels):
        overlay_plot(image, values, title=title, query=query, ax=ax)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    figure.tight_layout()
    return figure
