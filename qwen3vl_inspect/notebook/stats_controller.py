"""Every stage's tensor stats as rows: what the StatsTable shows, as plain data for tests and pandas.

Top-level stats are known as soon as a stage is computed; a block's sub-stage stats cost one
recomputation of that block, so they are only gathered when asked for (`substages=True`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qwen3vl_inspect.stage import Stage
from qwen3vl_inspect.tracing import Trace


@dataclass(frozen=True)
class StatsRow:
    name: str
    title: str
    shape: tuple[int, ...]
    dtype: str
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    inf: int
    zero_fraction: float | None
    substage: bool

    @property
    def nonfinite(self) -> bool:
        return self.nan + self.inf > 0

    def to_dict(self) -> dict:
        return asdict(self)


def row_of(stage: Stage, substage: bool = False) -> StatsRow:
    stats = stage.stats
    if stats is None:  # the input stage: pixels before the model, no tensor kept
        return StatsRow(stage.name, stage.title, tuple(stage.output_shape), stage.dtype, None, None, None, None,
                        0, 0, None, substage)
    return StatsRow(stage.name, stage.title, tuple(stats.shape), stats.dtype, stats.min, stats.max, stats.mean,
                    stats.std, stats.nan_count, stats.posinf_count + stats.neginf_count, stats.zero_fraction, substage)


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
