"""The Textual App of `qwen3vl-inspect IMAGE`: only the App; screens and widgets live beside it."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from qwen3vl_inspect.tui.controller import Inspector
from qwen3vl_inspect.tui.screens.inspect_screen import InspectScreen


class InspectApp(App[str | None]):
    """Exit value: None, or one line of error (with return code 2) when the model could not be loaded."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "qwen3vl-inspect"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, inspector: Inspector, show_timings: bool = True, colors: str | None = None) -> None:
        """`colors` ("truecolor", "256", "standard") overrides what the terminal reports, for pictures
        that must not depend on the terminal (snapshot tests); None: ask the terminal."""
        super().__init__()
        self.inspector = inspector
        self.show_timings = show_timings
        self.picture_colors = colors

    def get_default_screen(self) -> InspectScreen:
        return InspectScreen(self.inspector, self.show_timings)
