"""Two lines above the picture: which stage and what the colours mean, and the colour scale."""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from qwen3vl_inspect.formatting import fmt_float
from qwen3vl_inspect.render.heatmap import colorize
from qwen3vl_inspect.stage_overlays import Overlay
from qwen3vl_inspect.tui.cell_picture import CMAP

SCALE_CELLS = 16


def scale_bar(palette: tuple[int, ...] | None, cells: int = SCALE_CELLS) -> Text:
    text = Text()
    if palette:
        for i in np.linspace(0, len(palette) - 1, cells).round().astype(int):
            text.append(" ", Style(bgcolor=Color.from_ansi(palette[i])))
        return text
    for r, g, b in colorize(np.linspace(0, 1, cells)[None, :], CMAP)[0].tolist():
        text.append(" ", Style(bgcolor=Color.from_rgb(r, g, b)))
    return text


class ViewCaption(Static):
    def show(self, title: str, overlay: Overlay | None, palette: tuple[int, ...] | None, note: str = "") -> None:
        first = Text(title, style="bold", no_wrap=True, overflow="ellipsis")
        if overlay is not None and overlay.what:
            first.append(" — " + overlay.what)
        second = Text(no_wrap=True, overflow="ellipsis")
        span = overlay.range if overlay is not None else None
        if span is not None:
            second.append(fmt_float(span[0], 3) + " ")
            second.append_text(scale_bar(palette))
            second.append(" " + fmt_float(span[1], 3))
            if overlay.nonfinite_cells:
                second.append(f"  {overlay.nonfinite_cells} patch(es) NaN/Inf, drawn as the low end", style="bold red")
            if overlay.query is not None:
                second.append(f"  ▣ {overlay.query_label}", style="bold cyan")
                row, col = overlay.query
                inside = row < overlay.values.shape[0] and col < overlay.values.shape[1]
                own = float(overlay.values[row, col]) if inside else None
                if own is not None and own > span[1]:
                    second.append(f" (itself {fmt_float(own, 3)}, off the scale)", style="cyan")
        if note:
            second.append(("  " if second.plain else "") + note, style="yellow")
        key = (first.markup, second.markup)
        if key != getattr(self, "_shown", None):
            self._shown = key
            self.update(Text("\n").join([first, second]), layout=False)  # always two lines
