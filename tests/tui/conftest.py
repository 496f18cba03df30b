"""Fixtures of the TUI tests; the helpers they share are in tui_helpers.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("textual")

from tui_helpers import tui_args  # noqa: E402


@pytest.fixture
def make_app(tmp_path: Path) -> Callable:
    """`make_app(model="tiny", step=False, image=None, colors="truecolor")`: an InspectApp writing its
    files to tmp_path, timings hidden and colours fixed, so what it draws never depends on the terminal."""
    from qwen3vl_inspect.tui.launch import build_app

    def make(colors: str = "truecolor", **kwargs):
        return build_app(tui_args(**kwargs), show_timings=False, out_dir=tmp_path, colors=colors)

    return make
