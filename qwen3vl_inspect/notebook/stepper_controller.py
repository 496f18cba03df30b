"""State and logic of the StageStepper: where the learner is in the run, and what that stage shows.

Stepping past the last computed stage computes the next one (`Trace.step`), so a notebook walks the
encoder like a debugger. With `substages=True` a block opens into norm1 → attention → residual →
norm2 → MLP → residual before the next block. A failing stage is caught and shown, not raised:
every stage before it stays readable.
"""

from __future__ import annotations

from PIL import Image

from qwen3vl_inspect import stage_overlays
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.notebook import widget_picture
from qwen3vl_inspect.session import first_image
from qwen3vl_inspect.stage import Stage, StageError
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec
from qwen3vl_inspect.tracing import Trace

FIXED_VIEWS = {"input": stage_overlays.IMAGE, "patchify": stage_overlays.PATCHIFY, "rotary": stage_overlays.ROTARY}


class StepperController:
    def __init__(self, trace: Trace, substages: bool = True) -> None:
        self.trace = trace
        self.substages = substages
        self.error: str | None = None
        self.selected: str | None = None
        if not trace.stages:
            self._compute_next()
        self.selected = self.names()[0] if self.names() else None

    # ---- the list ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Computed stages in order (with block sub-stages when `substages`)."""
        stages = self.trace.all_stages() if self.substages else self.trace.stages
        return [s.name for s in stages]

    @property
    def index(self) -> int:
        names = self.names()
        return names.index(self.selected) if self.selected in names else 0

    @property
    def at_end(self) -> bool:
        return self.trace.done and self.index == len(self.names()) - 1

    def _compute_next(self) -> Stage | None:
        try:
            return self.trace.step()
        except StageError as exc:
            self.error = str(exc)
            return None

    # ---- moving -------------------------------------------------------------------------------

    def step(self) -> str | None:
        """Next stage in the list, computing it if it has not been computed yet; returns its name."""
        names = self.names()
        if self.index + 1 < len(names):
            self.selected = names[self.index + 1]
        else:
            stage = self._compute_next()
            if stage is not None:
                self.selected = stage.name
        return self.selected

    def back(self) -> str | None:
        if self.index > 0:
            self.selected = self.names()[self.index - 1]
        return self.selected

    def first(self) -> str | None:
        self.selected = self.names()[0] if self.names() else None
        return self.selected

    def run_to_end(self) -> str | None:
        """Compute every remaining stage and select the last one (stops at a failing stage)."""
        while not self.trace.done and self.trace.failure is None:
            if self._compute_next() is None:
                break
        self.selected = self.names()[-1] if self.names() else None
        return self.selected

    def run_to(self, name: str) -> str:
        """Compute up to `name` (a stage or a block sub-stage) and select it."""
        top = str(StageName.parse(name).top)
        if top not in self.trace.stage_names:
            raise InputError(f"no stage {name!r}; stages are: {', '.join(self.trace.stage_names)}")
        while top not in [s.name for s in self.trace.stages] and self.trace.failure is None:
            if self._compute_next() is None:
                break
        self.select(name)
        return name

    def select(self, name: str) -> None:
        if name not in [s.name for s in self.trace.all_stages()]:
            raise InputError(f"stage {name!r} has not been computed yet; step to it first")
        if StageName.parse(name).kind == "step" and not self.substages:
            self.substages = True
        self.selected = name

    def set_substages(self, on: bool) -> None:
        self.substages = bool(on)
        if self.selected not in self.names():  # a sub-stage was selected: go to its block
            self.selected = str(StageName.parse(self.selected).top) if self.selected else None

    # ---- what is shown --------------------------------------------------------------------------

    def stage(self) -> Stage | None:
        """The selected stage, with its stats (a block step's are computed here, on first view)."""
        if self.selected is None:
            return None
        self.trace.stats(self.selected)
        return self.trace[self.selected]

    def view_spec(self) -> ViewSpec:
        name = self.selected or "input"
        if name in FIXED_VIEWS:
            return ViewSpec(name, FIXED_VIEWS[name])
        parsed = StageName.parse(name)
        if parsed.step == "attn":  # attention received by each patch, mean of heads
            return ViewSpec(name, stage_overlays.ATTENTION, parsed.layer, None, False, None)
        return ViewSpec(name, stage_overlays.NORMS)

    def overlay(self) -> Overlay:
        return stage_overlays.compute(self.trace, self.view_spec())

    def picture_source(self) -> Image.Image:
        return first_image(self.trace)

    def picture(self) -> Image.Image:
        return widget_picture.render(self.picture_source(), self.overlay())

    def png(self) -> bytes:
        return widget_picture.png_bytes(self.picture())

    def progress(self) -> str:
        done, total = len(self.trace.stages), len(self.trace.stage_names)
        where = f"{self.index + 1} of {len(self.names())} shown" if self.names() else "nothing computed"
        failed = f" · {self.error}" if self.error else ""
        return f"{where} · {done} of {total} stages computed{failed}"
