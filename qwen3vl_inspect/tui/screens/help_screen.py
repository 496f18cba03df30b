"""Every key, grouped, over the inspector; any of escape, q or ? closes it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from qwen3vl_inspect.tui.keys import help_rows


def help_table() -> Table:
    table = Table(box=None, padding=(0, 2), show_header=False, expand=False)
    table.add_column(style="bold cyan", no_wrap=True, justify="right")
    table.add_column()
    group = None
    for name, keys, what in help_rows():
        if name != group:
            if group is not None:
                table.add_row("", "")
            table.add_row(Text(name, style="bold underline"), "")
            group = name
        table.add_row(keys, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close", priority=True)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("qwen3vl-inspect · keys", style="bold"), id="help-title")
            yield Static(help_table())
            yield Static(Text("The stage list shows: ✓ computed · ✗ failed or NaN/Inf · ● breakpoint · "
                              "▸ computing now · ◆ feeds a DeepStack merger. escape closes this help.",
                              style="dim"))

    def action_dismiss(self) -> None:
        self.dismiss(None)
