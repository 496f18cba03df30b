"""StatsTable: every stage's tensor stats in one table, NaN/Inf rows in red; a thin front end over
`StatsController`."""

from __future__ import annotations

import ipywidgets as widgets

from qwen3vl_inspect.notebook.stats_controller import StatsController
from qwen3vl_inspect.tracing import Trace


class StatsTable(widgets.VBox):
    def __init__(self, trace: Trace, substages: bool = False, only_nonfinite: bool = False, **kwargs) -> None:
        self.controller = StatsController(trace, substages=substages, only_nonfinite=only_nonfinite)
        self.substages = widgets.Checkbox(value=substages, description="block sub-stages (recomputes each block)",
                                          indent=False)
        self.only_nonfinite = widgets.Checkbox(value=only_nonfinite, description="only rows with NaN/Inf", indent=False)
        self.run_button = widgets.Button(description="compute the rest", tooltip="run the remaining stages")
        self.table = widgets.HTML()
        self.summary = widgets.HTML()
        self.substages.observe(lambda change: self._set("substages", change["new"]), names="value")
        self.only_nonfinite.observe(lambda change: self._set("only_nonfinite", change["new"]), names="value")
        self.run_button.on_click(lambda _b: self._run())
        controls = widgets.HBox([self.substages, self.only_nonfinite, self.run_button])
        super().__init__(children=[controls, self.summary, self.table], **kwargs)
        self.refresh()

    def _set(self, name: str, value: bool) -> None:
        setattr(self.controller, name, bool(value))
        self.refresh()

    def _run(self) -> None:
        self.controller.run()
        self.refresh()

    def refresh(self) -> None:
        """Redraw from the trace (call after stepping it elsewhere)."""
        c = self.controller
        self.run_button.disabled = c.trace.done or c.trace.failure is not None
        first = c.first_nonfinite()
        self.summary.value = ("" if first is None else
                              f'<span style="color:#d00;font-weight:bold">first NaN/Inf: {first.name} '
                              f"({first.nan} NaN, {first.inf} Inf)</span>")
        self.table.value = c.html()
