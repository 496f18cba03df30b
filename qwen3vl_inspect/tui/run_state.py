"""The run's state machine: what the encoder is doing, and the only code that changes it.

The screen calls these transitions on the UI thread, when a key is pressed or a worker's message
arrives. Worker threads never call them: they read `pause_requested` and post messages. Each
transition returns what the screen should start next, so the screen holds no run logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from qwen3vl_inspect.tui.failure import Failure


class RunState(Enum):
    LOADING = "LOADING"  # the model is being built or loaded
    STEPPING = "STEP"  # step mode: the next stage waits for space
    RUNNING = "RUN"  # computing stages one after another
    PAUSED = "PAUSED"  # stopped at a breakpoint
    FUSING = "FUSE"  # the encoder is done; its output is being placed in the text sequence
    DONE = "DONE"
    FAILED = "FAILED"  # a stage raised; the stages before it are kept

    @property
    def badge(self) -> str:
        """The status bar's word: fusing is part of the run as far as the user is concerned."""
        return "RUN" if self is RunState.FUSING else self.value


class Next(Enum):
    """What the screen should start after a transition."""

    NOTHING = "nothing"
    ONE_STAGE = "one stage"
    RUN_ON = "run on"
    FUSION = "fusion"


@dataclass
class RunControl:
    step_mode: bool = False  # the user's choice: one stage per key press
    state: RunState = RunState.LOADING
    activity: str = "starting"  # the status line's text
    computing: str | None = None  # the stage a worker is computing now
    paused_at: str | None = None  # the breakpoint the run stopped at
    pause_requested: bool = False  # read by the engine worker between stages

    # ---- from workers' messages --------------------------------------------------------------------

    def loading(self, text: str = "loading the model") -> None:
        self.activity = text

    def loaded(self) -> Next:
        self.state = RunState.STEPPING if self.step_mode else RunState.RUNNING
        self.activity = "model ready" if self.step_mode else "running"
        return Next.NOTHING if self.step_mode else Next.RUN_ON

    def stage_started(self, name: str) -> None:
        self.computing = name
        self.activity = f"computing {name} …"

    def stage_computed(self) -> None:
        self.computing = None

    def stage_failed(self, name: str, failure: Failure) -> None:
        self.state, self.computing, self.paused_at = RunState.FAILED, None, None
        self.activity = f"{name} failed: {failure}"

    def paused(self, reason: str, at: str | None) -> None:
        """reason: "breakpoint" (stopped at `at`), "paused" (the user asked) or "step" (one stage done)."""
        self.computing, self.pause_requested = None, False
        if reason == "breakpoint":
            self.state, self.paused_at = RunState.PAUSED, at
            self.activity = f"paused at breakpoint {at}: c continues, space steps"
        elif reason == "paused":
            self.step_mode, self.state = True, RunState.STEPPING
            self.activity = "paused: space computes the next stage, c continues"
        else:
            self.state = RunState.STEPPING
            self.activity = f"computed {at}: space steps, c continues"

    def encoder_finished(self, fusion_started: bool) -> Next:
        """The last stage is computed: place its output in the text, once."""
        self.computing, self.paused_at = None, None
        if fusion_started:
            return Next.NOTHING
        self.state = RunState.FUSING
        self.activity = "fusing the image tokens into the text sequence …"
        return Next.FUSION

    def fusion_finished(self, stages: int, failure: Failure | None = None) -> None:
        self.state = RunState.DONE
        self.activity = f"all {stages} stages computed" if failure is None else f"fusion failed: {failure}"

    # ---- from keys ------------------------------------------------------------------------------------

    def request_step(self, loaded: bool, engine_busy: bool, finished: bool) -> Next:
        """Space: compute one stage, or pause a running run after its current stage."""
        if not loaded:
            self.step_mode = True
            self.activity = "step mode: the first stage waits for space once the model is ready"
            return Next.NOTHING
        if engine_busy:
            self.pause_requested = True
            self.activity = "pausing after the current stage …"
            return Next.NOTHING
        if finished or self.state is RunState.FAILED:
            return Next.NOTHING
        self.step_mode, self.paused_at, self.state = True, None, RunState.STEPPING
        return Next.ONE_STAGE

    def request_continue(self, loaded: bool, engine_busy: bool, finished: bool) -> Next:
        """c: leave step mode and run on to the end (or the next breakpoint)."""
        self.step_mode, self.paused_at, self.pause_requested = False, None, False
        if not loaded or engine_busy or finished or self.state is RunState.FAILED:
            return Next.NOTHING
        self.state, self.activity = RunState.RUNNING, "running"
        return Next.RUN_ON
