"""The run at a glance: mode (RUN / STEP / PAUSED / DONE / FAILED), progress, what is happening now,
breakpoints, and the first NaN/Inf of the run in red."""

from __future__ import annotations

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

MODE_STYLES = {"LOADING": "black on yellow", "RUN": "black on green", "STEP": "black on cyan",
               "PAUSED": "black on cyan", "DONE": "black on blue", "FAILED": "white on red"}


class RunStatus(Static):
    def show(self, mode: str, computed: int, total: int, activity: str, breakpoints: int,
             nonfinite: tuple[str, str, str] | None) -> None:
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True)
        grid.add_column(width=14, no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        badge = Text(f" {mode} ", style=MODE_STYLES.get(mode, "reverse"))
        bar = ProgressBar(total=max(total, 1), completed=computed, width=14)
        count = Text(f"{computed}/{total}")
        detail = Text(activity)
        if breakpoints:
            detail.append(f"  ● {breakpoints} breakpoint{'s' if breakpoints > 1 else ''}", style="red")
        if nonfinite is not None:
            detail.append(f"  NaN/Inf first in {nonfinite[0]} ({nonfinite[1]})", style="bold red")
        grid.add_row(badge, bar, count, detail)
        key = (mode, computed, total, detail.markup)
        if key != getattr(self, "_shown", None):
            self._shown = key
            self.update(grid, layout=False)  # always one line
