"""Overlays as pictures for the widgets: upscaled so every patch is a crisp block, PNG-encoded.

The values come from the TUI's view-neutral `stage_overlays` module (one code path decides what each
stage shows, in the terminal and in the notebook); here they only get colours. The colour scale
leaves out the query's own cell (it would wash out every other patch) and NaN/Inf cells are
painted bright red, so a NaN hunt sees them at a glance.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from qwen3vl_inspect.render.heatmap import colorize
from qwen3vl_inspect.stage_overlays import Overlay

NONFINITE_RGB = (255, 0, 0)
QUERY_RGB = (0, 255, 255)
TARGET_WIDTH = 640  # pixels the picture is drawn at (at least): small images are scaled up


def display_scale(image: Image.Image, target: int = TARGET_WIDTH) -> int:
    return max(1, round(target / max(image.width, 1)))


def render(image: Image.Image, shown: Overlay | None, *, alpha: float = 0.6, cmap: str = "inferno",
           scale: int | None = None) -> Image.Image:
    """The image (scaled up `scale`×) with the overlay's colours blended in and its query outlined."""
    scale = display_scale(image) if scale is None else scale
    size = (image.width * scale, image.height * scale)
    base = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    if shown is None:
        return base
    if shown.values is not None:
        colours = colorize(shown.normalised(), cmap)  # (rows, cols, 3)
        bad = ~np.isfinite(shown.values)
        colours[bad] = NONFINITE_RGB
        layer = Image.fromarray(colours).resize(size, Image.Resampling.NEAREST)
        picture = Image.blend(base, layer, alpha)
        if bad.any():  # NaN/Inf cells fully opaque: they must never look like a dark patch
            mask = Image.fromarray((bad * 255).astype(np.uint8)).resize(size, Image.Resampling.NEAREST)
            picture.paste(Image.new("RGB", size, NONFINITE_RGB), mask=mask)
        rows, cols = shown.values.shape
    elif shown.colours is not None:
        layer = Image.fromarray(shown.colours).resize(size, Image.Resampling.NEAREST)
        picture = Image.blend(base, layer, 0.75)
        rows, cols = shown.colours.shape[:2]
    else:
        return base
    pen = ImageDraw.Draw(picture)
    cell_w, cell_h = size[0] / cols, size[1] / rows
    if shown.groups:  # outline merge blocks (or merged tokens) so the 2×2 structure shows
        step = shown.groups
        for col in range(0, cols + 1, step):
            pen.line([(col * cell_w, 0), (col * cell_w, size[1])], fill=(255, 255, 255), width=1)
        for row in range(0, rows + 1, step):
            pen.line([(0, row * cell_h), (size[0], row * cell_h)], fill=(255, 255, 255), width=1)
    if shown.query is not None:
        row, col = shown.query  # attention maps live on the patch grid, so a cell is a patch
        box = (col * cell_w, row * cell_h, (col + 1) * cell_w - 1, (row + 1) * cell_h - 1)
        pen.rectangle(box, outline=QUERY_RGB, width=max(2, round(cell_w / 8)))
    return picture


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # speed over size: it never leaves the machine
    return buffer.getvalue()
