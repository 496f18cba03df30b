"""What a comparison found: one row per stage in data-flow order, the first divergence, and findings.

Plain data (like `Stage`); tables, HTML and plots live in `compare/display.py` and `compare/plots.py`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from qwen3vl_inspect.comparison.metrics import Difference
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.layout import PixelBox
from qwen3vl_inspect.stage_name import StageName

EQUAL, WITHIN, DIVERGED = "equal", "within", "diverged"
MISSING_A, MISSING_B, SHAPE_MISMATCH = "missing in a", "missing in b", "shape mismatch"
OK_STATUSES = (EQUAL, WITHIN)
INTRODUCED, INHERITED = "introduced", "inherited"


@dataclass
class StageComparison:
    """One stage of both runs. `origin` (diverged stages only) says whether b's own module at this
    stage makes the error ("introduced": replaying it on a's input is already off) or it arrives from
    upstream ("inherited")."""

    name: str
    status: str
    shape_a: tuple[int, ...] | None
    shape_b: tuple[int, ...] | None
    dtype_a: str | None = None
    dtype_b: str | None = None
    integer: bool = False
    diff: Difference | None = None
    tolerance: float | None = None
    location: PixelBox | None = None  # where max_abs is: image, frame, row/col on the patch (or merged) grid, pixels
    merged: bool = False  # the rows are merged tokens (2×2 patches each), not patches
    origin: str | None = None
    local_error: float | None = None  # max abs error of b's module replayed on a's input
    origin_how: str = ""  # how origin was decided: "replay", "upstream" (the stage before it), "no upstream"

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def stage(self) -> StageName | None:
        """The canonical stage name (None for the integer tensors position_ids and cu_seqlens)."""
        try:
            return StageName.parse(self.name)
        except InputError:
            return None

    @property
    def max_abs(self) -> float | None:
        return None if self.diff is None else self.diff.max_abs

    @property
    def patch(self) -> tuple[int, int, int] | None:
        """(t, h, w) of the worst token: frame, row and column on the patch grid (merged grid if `merged`)."""
        box = self.location
        return None if box is None else (box.frame, box.row, box.col)

    def to_dict(self) -> dict[str, Any]:
        d = self.diff
        box = self.location
        return dict(
            name=self.name, status=self.status, shape_a=_list(self.shape_a), shape_b=_list(self.shape_b),
            dtype_a=self.dtype_a, dtype_b=self.dtype_b, integer=self.integer, tolerance=_num(self.tolerance),
            max_abs=_num(d.max_abs) if d else None, rel_error=_num(d.rel_error) if d else None,
            cos_min=_num(d.cos_min) if d else None, cos_mean=_num(d.cos_mean) if d else None,
            sqnr_db=_num(d.sqnr_db) if d else None,
            nan_a=d.nonfinite_a.nan if d else None, inf_a=d.nonfinite_a.inf if d else None,
            nan_b=d.nonfinite_b.nan if d else None, inf_b=d.nonfinite_b.inf if d else None,
            worst=None if box is None else dict(image=box.image, t=box.frame, h=box.row, w=box.col, merged=self.merged,
                                                 pixels=[box.left, box.top, box.right, box.bottom]),
            origin=self.origin, local_error=_num(self.local_error), origin_how=self.origin_how or None,
        )


@dataclass
class Comparison:
    """b against a (the reference), stage by stage. `first_divergence` is the first row not equal or within."""

    a_label: str
    b_label: str
    stages: list[StageComparison]
    grid_thw: torch.Tensor
    tolerance_note: str
    not_exposed: list[str] = field(default_factory=list)  # stages one side does not promise (ONNX intermediates)
    seconds: dict[str, float] = field(default_factory=dict)  # time of each phase (record a, record b, floor, …)
    inputs: Any = None  # the VisionInputs (for drawing the error over the image)
    errors: dict[str, str] = field(default_factory=dict)  # side ("a"/"b") → what its forward raised

    def __getitem__(self, name: str) -> StageComparison:
        for row in self.stages:
            if row.name == name:
                return row
        raise KeyError(f"no stage {name!r} in this comparison; stages: {', '.join(r.name for r in self.stages)}")

    def __iter__(self):
        return iter(self.stages)

    @property
    def first_divergence(self) -> StageComparison | None:
        return next((row for row in self.stages if not row.ok), None)

    @property
    def ok(self) -> bool:
        return self.first_divergence is None

    @property
    def diverged(self) -> list[StageComparison]:
        return [row for row in self.stages if not row.ok]

    def findings(self) -> list[str]:
        """Sentences a person acts on: missing stages, the first divergence and its origin, NaN/Inf."""
        notes = [f"{side}'s forward raised {error}" for side, error in self.errors.items()]
        notes += missing_findings(self.stages)
        first = next((row for row in self.stages if row.status in (DIVERGED, SHAPE_MISMATCH)), None)
        if first is not None:
            notes.append(f"first divergence: {first.name} ({describe_origin(first)})")
            introduced = [row.name for row in self.stages if row.origin == INTRODUCED and row is not first]
            # a block whose own step introduced the error says nothing new
            introduced = [n for n in introduced if not any(o.startswith(n + ".") for o in introduced + [first.name])]
            if introduced:
                more = f" … ({len(introduced) - 8} more)" if len(introduced) > 8 else ""
                notes.append("also introduced at: " + compact(introduced[:8]) + more)
        for side in ("a", "b"):
            bad = next((row for row in self.stages if row.diff and getattr(row.diff, f"nonfinite_{side}").total), None)
            if bad is not None:
                notes.append(f"{side} has NaN/Inf from {bad.name} on")
        return notes

    @property
    def verdict(self) -> str:
        compared = sum(1 for row in self.stages if row.diff is not None or row.integer)
        first = self.first_divergence
        if first is None:
            equal = sum(1 for row in self.stages if row.status == EQUAL)
            return (f"within tolerance: all {compared} compared stages match ({equal} bitwise equal); "
                    f"tolerance: {self.tolerance_note}")
        count = len(self.diverged)
        head = f"DIVERGED at {first.name}"
        if first.status in (DIVERGED, SHAPE_MISMATCH) and first.origin:
            head += f" ({first.origin} there)"
        elif first.status in (MISSING_A, MISSING_B):
            head += f" ({first.status})"
        return f"{head}; {count} of {len(self.stages)} stages not within tolerance ({self.tolerance_note})"

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return dict(a=self.a_label, b=self.b_label, grid_thw=self.grid_thw.tolist(), ok=self.ok,
                    first_divergence=None if first is None else first.name, verdict=self.verdict,
                    findings=self.findings(), tolerance=self.tolerance_note, errors=self.errors, not_exposed=self.not_exposed,
                    seconds={k: round(v, 4) for k, v in self.seconds.items()},
                    stages=[row.to_dict() for row in self.stages])

    # ---- display (rich, Jupyter, matplotlib): see compare/display.py and compare/plots.py ---------------

    def __rich__(self):
        from qwen3vl_inspect.comparison.display import comparison_renderable

        return comparison_renderable(self)

    def _repr_html_(self) -> str:
        from qwen3vl_inspect.comparison.display import comparison_html

        return comparison_html(self)

    def plot_error_growth(self, ax=None):
        """Relative error and tolerance of every block across layers (log scale); returns the Figure."""
        from qwen3vl_inspect.comparison.plots import error_growth_figure

        return error_growth_figure(self, ax=ax)

    def error_grid(self, name: str | None = None, image: int = 0) -> torch.Tensor:
        """Per-patch max abs error of stage `name` (default: the first divergence, else `merger`) for one
        image's first frame, in raster order on the patch grid: [grid_h, grid_w]."""
        from qwen3vl_inspect.comparison.plots import error_grid

        return error_grid(self, name, image)


# ---- sentences ------------------------------------------------------------------------------------

def describe_origin(row: StageComparison) -> str:
    if row.status == SHAPE_MISMATCH:
        return f"shape {_list(row.shape_a)} in a, {_list(row.shape_b)} in b"
    tol = "—" if row.tolerance is None else f"{row.tolerance:.2g}"
    if row.origin == INTRODUCED and row.origin_how == "replay":
        return f"introduced here: b's module on a's input is already off by {row.local_error:.3g} (tolerance {tol})"
    if row.origin == INHERITED and row.origin_how == "replay":
        return f"inherited: b's module on a's input is within tolerance ({row.local_error:.2g} ≤ {tol})"
    if row.origin == INTRODUCED and row.origin_how == "no upstream":
        return "introduced here: computed from grid_thw alone"
    if row.origin == INTRODUCED:
        return "introduced here: the stage before it is within tolerance (b can't be replayed)"
    if row.origin == INHERITED:
        return "inherited from an earlier stage"
    return "origin unknown"


DEEPSTACK_LOSS = "the language model would get no DeepStack features"


def missing_findings(rows: list[StageComparison]) -> list[str]:
    """`deepstack.0–2 missing in b: the language model would get no DeepStack features` and the like."""
    notes = []
    for status, side, other in ((MISSING_B, "b", "a"), (MISSING_A, "a", "b")):
        names = [row.name for row in rows if row.status == status]
        if not names:
            continue
        taps = [n for n in names if n.startswith("deepstack.")]
        all_taps = [row.name for row in rows if row.name.startswith("deepstack.")]
        if taps:
            why = (DEEPSTACK_LOSS if len(taps) == len(all_taps)
                   else f"the language model would get DeepStack features from only {len(all_taps) - len(taps)} "
                        f"of {len(all_taps)} taps")
            notes.append(f"{compact(taps)} missing in {side}: {why}")
        if "merger" in names:
            notes.append(f"merger missing in {side}: the language model would get no visual tokens")
        rest = [n for n in names if n not in taps and n != "merger"]
        if rest:
            notes.append(f"{compact(rest)} missing in {side} ({other} has them)")
    return notes


def compact(names: list[str]) -> str:
    """["deepstack.0", "deepstack.1", "deepstack.2", "blocks.3.mlp"] → "deepstack.0–2, blocks.3.mlp"."""
    groups: list[tuple[str, str, list[int]]] = []
    for name in names:
        match = re.fullmatch(r"(.*?)(\d+)(.*)", name)
        if match is None:
            groups.append((name, "", []))
            continue
        head, number, tail = match.group(1), int(match.group(2)), match.group(3)
        if groups and groups[-1][0] == head and groups[-1][1] == tail and groups[-1][2] and groups[-1][2][-1] == number - 1:
            groups[-1][2].append(number)
        else:
            groups.append((head, tail, [number]))
    parts = []
    for head, tail, numbers in groups:
        if not numbers:
            parts.append(head)
        elif len(numbers) == 1:
            parts.append(f"{head}{numbers[0]}{tail}")
        else:
            parts.append(f"{head}{numbers[0]}–{numbers[-1]}{tail}")
    return ", ".join(parts)


def _list(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else [int(s) for s in shape]


def _num(value: float | None) -> float | str | None:
    """JSON has no inf/NaN: those become strings."""
    if value is None:
        return None
    return value if math.isfinite(value) else str(value)
