"""One recorded stage of a Trace, and the error a failing stage raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from qwen3vl_inspect.probe.tensors import TensorStats


class StageError(RuntimeError):
    """A stage raised (or ran out of memory); `stage` names it, earlier stages stay readable."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"stage {stage} failed: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@dataclass
class Stage:
    """Name, shapes, stats and teaching text of one step of the encoder.

    Stats of block sub-stages are computed when first read (`stats_source`), from tensors the Trace
    recomputes out of the stored block input, so recording a run costs one stats pass per block.
    """

    name: str  # "patch_embed", "blocks.3", "blocks.3.attn", "deepstack.0", "merger", …
    kind: str  # key into teaching.TEXTS
    title: str
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    dtype: str
    explanation: str
    seconds: float = 0.0
    layer: int | None = None
    module: str | None = None  # encoder module path that computes it
    substages: list["Stage"] = field(default_factory=list)
    known_stats: TensorStats | None = field(default=None, repr=False)
    stats_source: Callable[[], TensorStats] | None = field(default=None, repr=False)

    @property
    def stats(self) -> TensorStats | None:
        if self.known_stats is None and self.stats_source is not None:
            self.known_stats, self.stats_source = self.stats_source(), None
        return self.known_stats

    @property
    def stats_ready(self) -> bool:
        """True when reading `stats` costs nothing (no recomputation of the block)."""
        return self.known_stats is not None or self.stats_source is None

    @property
    def nonfinite(self) -> bool:
        stats = self.stats
        return stats is not None and bool(stats.has_nan or stats.has_inf)

    def _repr_html_(self) -> str:
        from qwen3vl_inspect.render.html import stage_html

        return stage_html(self)

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "name": self.name,
            "title": self.title,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shape": list(self.output_shape),
            "dtype": self.dtype,
            "seconds": round(self.seconds, 6),
            "module": self.module,
            "stats": None if stats is None else stats.to_dict(),
            "substages": [s.to_dict() for s in self.substages],
        }
