"""`qwen3vl-inspect IMAGE --against B`: the finished run compared with B, and what the views draw from it.

The comparison runs once, in a worker, after the fusion; the worker returns it and the screen hands
it over here on the UI thread (`compared`). The stage list asks `row(name)` for its colours, the
image view `error_overlay(spec)` for the per-patch error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec
from qwen3vl_inspect.tui.stages import FUSION

if TYPE_CHECKING:
    from qwen3vl_inspect.comparison import Comparison, StageComparison
    from qwen3vl_inspect.inputs.image import VisionInputs
    from qwen3vl_inspect.model.encoder import VisionEncoder


class AgainstRun:
    def __init__(self, against: str, dtype_b: str | None) -> None:
        self.against, self.dtype_b = against, dtype_b
        self.comparison: Comparison | None = None
        self.started = False

    def compute(self, encoder: VisionEncoder, inputs: VisionInputs, dtype: str, device: str) -> Comparison:
        """Build B and compare it with `encoder` on the same inputs; runs in a worker, changes nothing here."""
        from qwen3vl_inspect.comparison import compare
        from qwen3vl_inspect.comparison.sides import build_against

        b = build_against(self.against, encoder, self.dtype_b or dtype, device)
        return compare(encoder, b, inputs)

    def compared(self, comparison: Comparison) -> None:
        self.comparison = comparison

    def row(self, name: str) -> StageComparison | None:
        """The comparison row of a stage (a block's last residual is the block output), once compared."""
        if self.comparison is None:
            return None
        parsed = StageName.parse(name) if name != FUSION else None
        key = str(parsed.top) if parsed is not None and parsed.step == "residual2" else name
        return next((row for row in self.comparison.stages if row.name == key), None)

    def error_overlay(self, spec: ViewSpec) -> Overlay | None:
        """The per-patch max abs error of a compared stage against B (already computed: a reshape)."""
        row = self.row(spec.stage)
        if row is None or self.comparison is None or row.diff is None:
            return None
        values = self.comparison.error_grid(row.name).numpy()  # (grid_h, grid_w), raster order
        origin = f", {row.origin} here" if row.origin == "introduced" else f", {row.origin}" if row.origin else ""
        what = (f"max abs error per patch against {self.against}: {row.status}{origin} "
                f"(max {row.diff.max_abs:.3g}, tolerance {row.tolerance:.2g})")
        return Overlay(spec, what, values=values, groups=2 if row.merged else 0,
                       notes=["x: back to the stage's own view", self.comparison.verdict])
