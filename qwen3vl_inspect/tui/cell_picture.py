"""Turn an Overlay into terminal pixels: fit the patch grid to cells, blend, mark the query.

Pure numpy/PIL (no textual). A half-block cell holds two roughly square pixels, so a patch drawn
k pixels wide and k pixels tall keeps the image's aspect ratio and its edges fall on cell
boundaries (k whole columns, k half-rows). When the grid is larger than the space, patches get
fractional sizes and the picture is still faithful, only unaligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from qwen3vl_inspect.render.halfblock import HalfBlock, heat_indices
from qwen3vl_inspect.render.heatmap import colorize
from qwen3vl_inspect.stage_overlays import Overlay

CMAP = "inferno"
ALPHA = 0.7  # share of the heat colour in a blended cell; the image shows through in grey
QUERY_RGB = (0, 255, 255)
QUERY_256 = 51  # cyan in the xterm cube
QUERY_16 = 14  # bright cyan
SHADE = 0.72  # brightness of the alternate groups (merge blocks) when too small for lines
LINE = 0.3  # brightness of the lines between groups


@dataclass(frozen=True)
class Fit:
    cols: int  # terminal columns = pixels across
    px_rows: int  # pixels down (two per terminal row)
    patch_px: int  # pixels per patch side; 0 when patches got fractional sizes

    @property
    def rows(self) -> int:
        return (self.px_rows + 1) // 2


def fit(grid_h: int, grid_w: int, max_cols: int, max_rows: int) -> Fit | None:
    """Largest whole number of pixels per patch that fits; fractional only when even 1 doesn't."""
    if max_cols < 2 or max_rows < 1:
        return None
    k = min(max_cols // grid_w, 2 * max_rows // grid_h)
    if k >= 1:
        return Fit(grid_w * k, grid_h * k, k)
    scale = min(max_cols / grid_w, 2 * max_rows / grid_h)
    return Fit(max(1, int(grid_w * scale)), max(1, int(grid_h * scale)), 0)


_BASES: dict[tuple[int, int, int], tuple[Image.Image, np.ndarray]] = {}


def _base(image: Image.Image, cols: int, px_rows: int) -> np.ndarray:
    """The image scaled to the picture (area averaging), kept per size: resizing is the slow part."""
    key = (id(image), cols, px_rows)
    if key not in _BASES:
        if len(_BASES) >= 16:
            _BASES.pop(next(iter(_BASES)))
        scaled = image.convert("RGB").resize((cols, px_rows), Image.Resampling.BOX)
        _BASES[key] = (image, np.asarray(scaled, dtype=np.float32))  # the image is kept so its id stays unique
    return _BASES[key][1]


def _grow(cells: np.ndarray, cols: int, px_rows: int) -> np.ndarray:
    """Nearest-neighbour resize of a [rows, cols(, 3)] grid to the picture size: each cell a block."""
    rows_in, cols_in = cells.shape[:2]
    ys = np.minimum(np.arange(px_rows) * rows_in // px_rows, rows_in - 1)
    xs = np.minimum(np.arange(cols) * cols_in // cols, cols_in - 1)
    return cells[ys][:, xs]


def _cell_index(shape: tuple[int, int], cols: int, px_rows: int) -> tuple[np.ndarray, np.ndarray]:
    rows_in, cols_in = shape
    return (np.minimum(np.arange(px_rows) * rows_in // px_rows, rows_in - 1),
            np.minimum(np.arange(cols) * cols_in // cols, cols_in - 1))


def _shade_groups(shape: tuple[int, int], groups: int, cols: int, px_rows: int) -> np.ndarray:
    """[px_rows, cols] brightness factor that outlines groups of groups×groups cells.

    With room (a group at least 4 pixels across) a dark line on each group's top and left edge;
    otherwise a checkerboard, since lines would cover most of the picture.
    """
    ys, xs = _cell_index(shape, cols, px_rows)
    gy, gx = ys // groups, xs // groups
    if min(cols / shape[1], px_rows / shape[0]) * groups >= 4:
        top = np.r_[True, gy[1:] != gy[:-1]]
        left = np.r_[True, gx[1:] != gx[:-1]]
        return np.where(top[:, None] | left[None, :], LINE, 1.0)
    return np.where((gy[:, None] + gx[None, :]) % 2 == 1, SHADE, 1.0)


def _query_mask(query: tuple[int, int], grid: tuple[int, int], cols: int, px_rows: int, span: int = 1) -> np.ndarray:
    """Pixels that outline the query's span×span patches: a ring when they are ≥ 3 pixels, else all of them."""
    ys, xs = _cell_index(grid, cols, px_rows)
    inside = ((ys[:, None] >= query[0]) & (ys[:, None] < query[0] + span)
              & (xs[None, :] >= query[1]) & (xs[None, :] < query[1] + span))
    if not inside.any():
        return inside
    rows_in, cols_in = np.nonzero(inside)
    top, bottom, left, right = rows_in.min(), rows_in.max(), cols_in.min(), cols_in.max()
    if bottom - top < 2 or right - left < 2:
        return inside
    ring = inside.copy()
    ring[top + 1:bottom, left + 1:right] = False
    return ring


def compose(image: Image.Image, overlay: Overlay | None, where: Fit, grid: tuple[int, int], *,
            palette: tuple[int, ...] | None = None, show: bool = True, dim: bool = False) -> HalfBlock:
    """The picture for one view: the image in grey with the overlay blended on (or alone, in 256 colours).

    `grid` is the patch grid (rows, cols) the query is given on; the overlay's values may be on
    a coarser grid (merged tokens). With a `palette` ramp (`HEAT_256`, `HEAT_16`) values are drawn
    in its palette colours and the plain image is left to the terminal's own colour mapping.
    """
    cols, px_rows = where.cols, where.px_rows
    base = _base(image, cols, px_rows)
    heat = None if overlay is None or not show else overlay.values
    fixed = None if overlay is None or not show else overlay.colours
    cells = heat if heat is not None else fixed
    shade = None
    if cells is not None and overlay.groups:
        shade = _shade_groups(cells.shape[:2], overlay.groups, cols, px_rows)
    if heat is not None and palette:
        grown = _grow(overlay.normalised(), cols, px_rows)
        pixels = heat_indices(grown if shade is None else grown * shade, palette)  # palette numbers [px_rows, cols]
    else:
        if heat is not None:
            grey = base.mean(-1, keepdims=True) * 0.85
            colours = _grow(colorize(overlay.normalised(), CMAP), cols, px_rows).astype(np.float32)
            pixels = (1 - ALPHA) * grey + ALPHA * colours
        elif fixed is not None:
            pixels = 0.25 * base + 0.75 * _grow(fixed, cols, px_rows).astype(np.float32)
        else:
            pixels = base * (0.35 if dim else 1.0)
        if shade is not None:
            pixels = pixels * shade[..., None]
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if overlay is not None and overlay.query is not None and show:
        mask = _query_mask(overlay.query, grid, cols, px_rows, overlay.query_span)
        pixels = pixels.copy()
        pixels[mask] = (QUERY_16 if max(palette) < 16 else QUERY_256) if pixels.ndim == 2 else QUERY_RGB
    return HalfBlock(pixels)


def patch_at(x: int, y_px: int, where: Fit, grid: tuple[int, int]) -> tuple[int, int] | None:
    """The patch (row, col) under picture pixel (x, y_px), or None outside the picture."""
    if not (0 <= x < where.cols and 0 <= y_px < where.px_rows):
        return None
    return y_px * grid[0] // where.px_rows, x * grid[1] // where.cols
