"""Every stage's tensor stats as flat rows: plain data for tables (HTML, rich) and for pandas."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qwen3vl_inspect.stage import Stage


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
