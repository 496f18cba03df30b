"""The numbers of the selected stage: shapes before → after, tensor stats (NaN/Inf in red), the
module that computes it, and the teaching text that says what the stage does and why; or, for a
view that is no Trace stage (the fusion), whatever renderables that view hands it."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from qwen3vl_inspect.formatting import fmt_float, fmt_shape, nonfinite_parts
from qwen3vl_inspect.probe.tensors import TensorStats
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.stage_overlays import Overlay
from qwen3vl_inspect.tracing import Stage


def stats_text(stats: TensorStats) -> Text:
    text = Text(f"min {fmt_float(stats.min)}  max {fmt_float(stats.max)}  μ {fmt_float(stats.mean)}  σ {fmt_float(stats.std)}")
    for part in nonfinite_parts(stats.nan_count, stats.posinf_count, stats.neginf_count):
        text.append(f"  {part}", style="bold red")
    return text


class StageInfo(Static):
    """Attributes down: `show_stage(...)` / `show_message(...)`; no messages up."""

    def __init__(self, show_timings: bool = True, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.show_timings = show_timings

    def _changed(self, key: tuple) -> bool:
        if key == getattr(self, "_shown", None):
            return False
        self._shown = key
        return True

    def show_message(self, title: str, lines: list[Text | str]) -> None:
        if not self._changed((title, *map(str, lines))):
            return
        self.update(Group(Text(title, style="bold"), *[Text(line) if isinstance(line, str) else line for line in lines]))

    def show_parts(self, key: tuple, parts: list[RenderableType]) -> None:
        """Any renderables (a view that is not a Trace stage, e.g. the fusion); `key` says when they changed."""
        if self._changed(("parts", *key)):
            self.update(Group(*parts))

    def show_stage(self, stage: Stage, overlay: Overlay | None, nonfinite: tuple[str, str, str] | None) -> None:
        if not self._changed((id(stage), stage.stats is not None, nonfinite,
                              tuple(overlay.notes) if overlay is not None else None)):
            return
        parts: list[RenderableType] = []
        head = Text(stage.title, style="bold")
        if self.show_timings and stage.seconds:
            took = f"{stage.seconds * 1000:.0f} ms" if stage.seconds < 1 else f"{stage.seconds:.2f} s"
            head.append(f" · computed in {took}", style="dim")
        parts.append(head)
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        ins = ", ".join(fmt_shape(s) for s in stage.input_shapes)
        table.add_row("shape", Text(f"{ins} → {fmt_shape(stage.output_shape)} {stage.dtype}"))
        if stage.module:
            table.add_row("module", stage.module)
        stats = stage.stats
        if stats is not None:
            table.add_row("stats", stats_text(stats))
        elif StageName.parse(stage.name).kind == "step":  # a worker is running the block again for them
            table.add_row("stats", Text("computing …", style="dim"))
        parts.append(table)
        bad = stats is not None and not stats.is_finite
        if nonfinite is not None and bad and str(StageName.parse(stage.name).top) == nonfinite[0]:
            parts.append(Text(f"first NaN/Inf of the run: produced by module {nonfinite[1]}", style="bold red"))
            parts.append(Text(nonfinite[2], style="red"))
        elif bad:
            parts.append(Text("NaN/Inf here (carried from an earlier stage)", style="bold red"))
        parts.append(Text(""))
        parts.append(Text(stage.explanation))
        if overlay is not None:
            for note in overlay.notes:
                parts.append(Text(""))
                parts.append(Text(note, style="italic"))
        self.update(Group(*parts))
