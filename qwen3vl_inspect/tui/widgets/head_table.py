"""The block's heads at a glance: entropy (how spread out), mean distance (how far they look),
and sink patches that draw far more than their share of attention."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

WIDE = 36  # from this width on, two columns of heads (16 heads in 8 lines)


class HeadTable(Static):
    def on_resize(self) -> None:
        if getattr(self, "_args", None) is not None:
            self.show(*self._args)

    def show(self, summary: dict[str, Any] | None, head: int | None, layer: int) -> None:
        columns = 2 if self.content_size.width == 0 or self.content_size.width >= WIDE else 1
        key = (id(summary), head, layer, columns)
        self._args = (summary, head, layer)
        if key == getattr(self, "_shown", None):
            return
        self._shown = key
        if summary is None:
            self.update(Text(f"block {layer} heads: computing…", style="dim"))
            return
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        for _ in range(columns):
            table.add_column("head", justify="right")
            table.add_column("entr", justify="right")
            table.add_column("dist", justify="right")
        cells = [(Text(str(i), style="reverse" if i == head else "bold"), f"{e:.2f}", f"{d:.1f}")
                 for i, (e, d) in enumerate(zip(summary["entropy"], summary["mean_distance"]))]
        per_column = -(-len(cells) // columns)
        for row in range(per_column):
            line: list = []
            for column in range(columns):
                index = column * per_column + row
                line += list(cells[index]) if index < len(cells) else ["", "", ""]
            table.add_row(*line)
        uniform = Text(f"uniform entropy log n = {summary['uniform_entropy']:.2f}; dist in patches", style="dim")
        sinks = summary["sinks"]
        sink_text = Text("sinks: ", style="bold")
        if sinks:
            sink_text.append(", ".join(f"({s.row},{s.col}) ×{s.ratio:.0f}" for s in sinks[:5]))
        else:
            sink_text.append("none (no patch gets 5× its share)", style="dim")
        self.update(Group(Text(f"block {layer} · heads", style="bold"), table, uniform, sink_text))
