"""One recorded stage of a Trace, and the error a failing stage raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qwen3vl_inspect.probe.tensors import TensorStats


class StageError(RuntimeError):
    """A stage raised (or ran out of memory); `stage` names it, earlier stages stay readable."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"stage {stage} failed: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@dataclass
class Stage:
    """Name, shapes, stats and teaching text of one step of the encoder: plain data.

    `stats` of a block's steps (norm1, attention, …) start as None: computing them means running the
    block again from its stored input, which happens only when asked (`Trace.stats(name)` or
    `Trace.compute_step_stats(layer)`), never as a side effect of reading a Stage.
    """

    name: str  # "patch_embed", "blocks.3", "blocks.3.attn", "deepstack.0", "merger", … (see stage_name.py)
    kind: str  # key into teaching.TEXTS
    title: str
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    dtype: str
    explanation: str
    seconds: float = 0.0
    layer: int | None = None
    module: str | None = None  # encoder module path that computes it
    substages: list[Stage] = field(default_factory=list)
    stats: TensorStats | None = field(default=None, repr=False)

    @property
    def nonfinite(self) -> bool:
        """NaN/Inf in the output, as far as the stats computed so far tell."""
        return self.stats is not None and not self.stats.is_finite

    def _repr_html_(self) -> str:
        from qwen3vl_inspect.render.html import stage_html

        return stage_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shape": list(self.output_shape),
            "dtype": self.dtype,
            "seconds": round(self.seconds, 6),
            "module": self.module,
            "stats": None if self.stats is None else self.stats.to_dict(),
            "substages": [s.to_dict() for s in self.substages],
        }
