"""The image with a stage's per-patch values drawn over it, in half-block cells.

Attributes down: `show(overlay)` with the values to draw; the widget fits the patch grid to its
own size (whole cells per patch where possible), composes the picture once per (overlay, size,
colour mode) and serves rows from that cache. Up: `QueryPicked` when the image is clicked (an
attention view's query, or the fusion view's token).
"""

from __future__ import annotations

from typing import Any

from PIL import Image
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from qwen3vl_inspect.render.halfblock import HalfBlock, ramp_for
from qwen3vl_inspect.stage_overlays import FUSION, Overlay
from qwen3vl_inspect.tui.cell_picture import Fit, compose, fit, patch_at
from qwen3vl_inspect.tui.messages import QueryPicked
from qwen3vl_inspect.tui.recent import Recent

PICTURES_KEPT = 32


class ImageView(Widget, can_focus=True):
    BINDINGS = [
        Binding("up", "screen.move_query(-1,0)", show=False),
        Binding("down", "screen.move_query(1,0)", show=False),
        Binding("left", "screen.move_query(0,-1)", show=False),
        Binding("right", "screen.move_query(0,1)", show=False),
    ]

    def __init__(self, image: Image.Image, grid: tuple[int, int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.grid = grid
        self.overlay: Overlay | None = None
        self.show_overlay = True
        self.dim = True
        self.message = ""
        self._fit: Fit | None = None
        self._picture: HalfBlock | None = None
        self._strips: list[Strip] = []
        self._pictures: Recent[tuple[Any, ...], tuple[HalfBlock, list[Strip]]] = Recent(PICTURES_KEPT)

    @property
    def palette(self) -> tuple[int, ...] | None:
        """The legible palette ramp when the terminal has 256 or 16 colours; None with truecolor."""
        return ramp_for(getattr(self.app, "picture_colors", None) or self.app.console.color_system)

    def show(self, overlay: Overlay | None, *, show_overlay: bool = True, dim: bool = False, message: str = "") -> None:
        self.overlay, self.show_overlay, self.dim, self.message = overlay, show_overlay, dim, message
        self._update_picture()

    def _update_picture(self) -> None:
        size = self.content_size
        self._fit = fit(self.grid[0], self.grid[1], size.width, size.height)
        if self._fit is None:
            self._picture, self._strips = None, []
            self.refresh()
            return
        key = (id(self.overlay), self.overlay.spec if self.overlay else None, self._fit, self.palette,
               self.show_overlay, self.dim)
        cached = self._pictures.get(key)
        if cached is None:
            picture = compose(self.image, self.overlay, self._fit, self.grid, palette=self.palette,
                              show=self.show_overlay, dim=self.dim)
            cached = self._pictures.put(key, (picture, [Strip(line, picture.width) for line in picture.lines]))
        self._picture, self._strips = cached
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._update_picture()

    def _left(self) -> int:
        return max(0, (self.content_size.width - (self._fit.cols if self._fit else 0)) // 2)

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if y < len(self._strips):
            left = self._left()
            strip = self._strips[y]
            return Strip([Segment(" " * left), *strip, Segment(" " * max(0, width - left - strip.cell_length))], width)
        if y == len(self._strips) + (1 if self._strips else 0) and self.message:
            text = self.message[:width].center(width)
            return Strip([Segment(text, Style(color="yellow", bold=True))], width)
        return Strip.blank(width)

    def on_click(self, event: events.Click) -> None:
        if self._fit is None or not self._wants_queries():
            return
        offset = event.get_content_offset(self)
        if offset is None:
            return
        patch = patch_at(offset.x - self._left(), offset.y * 2, self._fit, self.grid)
        if patch is not None:
            self.post_message(QueryPicked(*patch))

    def _wants_queries(self) -> bool:
        return self.overlay is not None and (self.overlay.spec.describes_attention or self.overlay.spec.kind == FUSION)
