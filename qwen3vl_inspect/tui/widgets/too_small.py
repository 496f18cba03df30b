"""Shown instead of everything else when the terminal is below the smallest supported size."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmall(Static):
    def show(self, width: int, height: int) -> None:
        self.update(Text.assemble(
            ("Terminal too small\n\n", "bold"),
            f"This window is {width}×{height}; qwen3vl-inspect needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\n",
            "Make the window larger (or the font smaller). q quits.",
            justify="center"))
