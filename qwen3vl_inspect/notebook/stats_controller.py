"""Every stage's tensor stats as rows: what the StatsTable shows, as plain data for tests and pandas.

Top-level stats are known as soon as a stage is computed; a block's sub-stage stats cost one
recomputation of that block, so they are only gathered when asked for (`substages=True`).
"""

from __future__ import annotations

from qwen3vl_inspect.stats_rows import StatsRow, row_of
from qwen3vl_inspect.tracing import Trace


class StatsController:
    def __init__(self, trace: Trace, substages: bool = False, only_nonfinite: bool = False) -> None:
        self.trace = trace
        self.substages = substages
        self.only_nonfinite = only_nonfinite

    def rows(self) -> list[StatsRow]:
        rows = []
        for stage in self.trace.stages:
            rows.append(row_of(stage))
            if self.substages and stage.substages:
                self.trace.compute_step_stats(stage.layer)  # one more run of the block, asked for
                rows += [row_of(sub, substage=True) for sub in stage.substages]
        return [r for r in rows if r.nonfinite] if self.only_nonfinite else rows

    def first_nonfinite(self) -> StatsRow | None:
        """The first row (in run order) holding NaN/Inf: where a NaN hunt starts. With sub-stages shown,
        the first bad step inside the first bad block (its `blocks.k.mlp` rather than `blocks.k`)."""
        rows = self.rows()
        first = next((r for r in rows if r.nonfinite), None)
        if first is None:
            return None
        return next((r for r in rows if r.nonfinite and r.name.startswith(first.name + ".")), first)

    def run(self) -> None:
        """Compute the rest of the run (a failing stage stops it; earlier rows stay)."""
        from qwen3vl_inspect.stage import StageError

        try:
            self.trace.run()
        except StageError:
            pass

    def html(self) -> str:
        from qwen3vl_inspect.render.html import stats_rows_html

        return stats_rows_html(self.rows(), self.trace)
