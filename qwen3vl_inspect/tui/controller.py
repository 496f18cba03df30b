"""The TUI's state and the work behind it, in plain Python: tests drive it without a terminal.

The screen keeps only widgets; every decision (which stage is selected, which head, whether a
breakpoint stops the run, what a key does at the edge of the list) lives here. Heavy calls
(`load`, `step`, `overlay`, `head_summary`) run in worker threads and share one lock, because a
Trace is stepped and queried from different threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen3vl_inspect import breakpoints, stage_overlays
from qwen3vl_inspect.config import VisionConfig, checkpoint_folder, weights_label
from qwen3vl_inspect.fusion.fuse import DEFAULT_TEXT
from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.session import load_encoder
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec
from qwen3vl_inspect.tracing import Stage, StageError, Trace, stage_names_for, trace
from qwen3vl_inspect.tui.against import AgainstRun
from qwen3vl_inspect.tui.failure import Failure
from qwen3vl_inspect.tui.recent import Recent
from qwen3vl_inspect.tui.run_state import Next, RunControl
from qwen3vl_inspect.tui.stages import FUSION, planned_title

if TYPE_CHECKING:
    from qwen3vl_inspect.comparison import Comparison, StageComparison
    from qwen3vl_inspect.fusion import FusionResult, TokenInfo

PENDING, DONE, FAILED, NONFINITE = "pending", "done", "failed", "nonfinite"
OVERLAY_CACHE = 64
PREFETCH_BYTES = 64 * 2**20  # one block's maps (all heads) small enough to compute ahead


@dataclass
class StepResult:
    stage: Stage
    pause: str | None  # why the run should stop here (a breakpoint), or None
    first_nonfinite: tuple[str, str, str] | None = None  # (stage, module path, description), once


class Inspector:
    def __init__(self, image_path: Path, inputs: VisionInputs, config: VisionConfig, model: str,
                 device: str = "cpu", dtype: str = "float32", step: bool = False, out_dir: Path | None = None,
                 text: str | None = None, against: str | None = None, dtype_b: str | None = None) -> None:
        self.image_path, self.inputs, self.config = Path(image_path), inputs, config
        self.model, self.device, self.dtype = model, device, dtype
        self.out_dir = Path.cwd() if out_dir is None else Path(out_dir)
        self.lock = threading.RLock()
        self.encoder: VisionEncoder | None = None
        self.trace: Trace | None = None
        self.weights = weights_label(model)  # exact source once built
        self.run = RunControl(step_mode=step)  # the run's state; changed only on the UI thread
        # QWEN3VL_INSPECT_BREAK becomes the TUI's own breakpoints: breakpoint() in a worker thread would hang the app
        names = stage_names_for(config)
        patterns = breakpoints.break_patterns()
        self.breakpoints: set[str] = set(breakpoints.top_level_matches(patterns, names))
        # one line each for the user, shown as notifications once the UI is up: (severity, text)
        self.notes: list[tuple[str, str]] = []
        if patterns:
            unmatched = breakpoints.unmatched_warning(names)
            set_on = ", ".join(name for name in names if name in self.breakpoints)
            self.notes.append(("warning", unmatched + (f"; pausing at {set_on}" if set_on else "")) if unmatched else
                              ("information", f"{breakpoints.ENV_VAR}: the run pauses after {set_on} (TUI breakpoints, "
                                              "b toggles; the debugger is not called here)"))
        self.nonfinite: tuple[str, str, str] | None = None
        _, self.grid_h, self.grid_w = (int(v) for v in inputs.grid_thw[0].tolist())
        # what the user is looking at
        self.selected = "input"
        self.head: int | None = None  # None: mean of heads
        self.last_head = 0
        self.rollout = False
        self.received = False
        self.query = (self.grid_h // 2, self.grid_w // 2)
        self.norms_instead = False
        self.show_overlay = True
        self._overlays: Recent[ViewSpec, Overlay] = Recent(OVERLAY_CACHE)  # pictures' values: a few KB each
        # the fusion view: the finished Trace's output in the language model's input, for the prompt `text`
        self.text = DEFAULT_TEXT if text is None else text
        self.fusion: FusionResult | None = None
        self.fusion_failure: Failure | None = None
        self.fusion_started = False
        self.merge = config.spatial_merge_size
        self.token = (self.grid_h // self.merge // 2, self.grid_w // self.merge // 2)  # merged-grid (row, col)
        # `--against B`: the finished run compared with B, stage by stage (colours the stage list)
        self.against = None if against is None else AgainstRun(against, dtype_b)
        self.show_error = True  # once compared: a compared stage shows its error against B (x toggles)

    # ---- the run --------------------------------------------------------------------------------

    @property
    def image(self):
        image = self.inputs.images[0]
        return image[0] if isinstance(image, list) else image

    @property
    def names(self) -> list[str]:
        stages = self.trace.stage_names if self.trace is not None else stage_names_for(self.config)
        return [*stages, FUSION]

    @property
    def computed(self) -> int:
        return 0 if self.trace is None else len(self.trace.stages) + (self.fusion is not None)

    @property
    def done(self) -> bool:
        return self.trace is not None and self.trace.done

    @property
    def finished(self) -> bool:
        """The encoder is done and its output fused (or the fusion failed): nothing left to compute."""
        return self.done and (self.fusion is not None or self.fusion_failure is not None)

    @property
    def failure(self) -> StageError | None:
        return None if self.trace is None else self.trace.failure

    def load(self, report: Callable[[str], None]) -> Trace:
        """`build` and `attach` in one call, for scripts and tests that drive the controller directly."""
        encoder, traced = self.build(report)
        self.attach(encoder, traced)
        return traced

    def build(self, report: Callable[[str], None]) -> tuple[VisionEncoder, Trace]:
        """Build or load the encoder and make the (lazy) Trace; `report` gets one line per step.
        Runs in a worker thread and changes nothing here: the screen `attach`es the result."""
        source = checkpoint_folder(self.model)
        if source is not None:
            from qwen3vl_inspect.model.checkpoint import describe_checkpoint

            about = describe_checkpoint(source)  # shard headers only
            report(f"reading {about['vision_tensors']} vision tensors ({about['vision_bytes'] / 2**20:.0f} MiB) "
                   f"from {len(about['vision_shards'])} of {about['total_shards']} shard(s) in {source.name}")
        else:
            report(f"loading the {self.model} preset ({self.config.depth} blocks, {weights_label(self.model)})")
        encoder = load_encoder(self.model, self.dtype, self.device)
        report("preparing the trace")
        traced = trace(encoder, self.inputs)
        traced.stop_in_debugger = False  # the breakpoints above pause the run instead
        return encoder, traced

    def attach(self, encoder: VisionEncoder, traced: Trace) -> Next:
        """The model is ready (UI thread): returns whether to run on now or wait for space."""
        with self.lock:
            self.encoder, self.trace, self.weights = encoder, traced, encoder.weights_source
        return self.run.loaded()

    def fuse(self) -> FusionResult:
        """`fusion_of_run` and `fused` in one call, for scripts and tests."""
        result = self.fusion_of_run()
        self.fused(result)
        return result

    def fusion_of_run(self) -> FusionResult:
        """The finished Trace's output placed in the language model's input; runs in a worker thread."""
        from qwen3vl_inspect.fusion import fuse_trace

        with self.lock:
            return fuse_trace(self.trace, text=self.text)

    def fused(self, result: FusionResult | None, failure: Failure | None = None) -> None:
        """The fusion view's result or why there is none (UI thread)."""
        self.fusion, self.fusion_failure = result, failure
        self.run.fusion_finished(len(self.names), failure)

    def comparison_of_run(self) -> Comparison:
        """`--against B` on the same inputs, compared with this run; runs in a worker thread."""
        if self.against is None or self.encoder is None:
            raise RuntimeError("nothing to compare: no --against, or the model is not loaded")
        with self.lock:
            return self.against.compute(self.encoder, self.inputs, self.dtype, self.device)

    def divergence(self, name: str) -> StageComparison | None:
        return None if self.against is None else self.against.row(name)

    def next_name(self) -> str | None:
        if self.trace is None or self.trace.done or self.trace.failure is not None:
            return None
        return self.trace.stage_names[len(self.trace.stages)]

    def step(self) -> StepResult | None:
        """Compute the next stage (None when done). Raises StageError; earlier stages stay."""
        with self.lock:
            stage = self.trace.step()
            if stage is None:
                return None
            first = None
            if self.nonfinite is None and stage.nonfinite:  # top-level stats are eager; steps' are lazy
                first = self._locate()
        pause = stage.name if stage.name in self.breakpoints else None
        return StepResult(stage, pause, first)

    def stage_computed(self, name: str, first_nonfinite: tuple[str, str, str] | None) -> None:
        """A worker finished stage `name` (UI thread): remember the run's first NaN/Inf, follow in step mode."""
        if self.nonfinite is None and first_nonfinite is not None:
            self.nonfinite = first_nonfinite
        self.run.stage_computed()
        if self.run.step_mode:
            self.select(name)

    def paused(self, reason: str, at: str | None) -> None:
        self.run.paused(reason, at)
        if reason == "breakpoint" and at is not None:
            self.select(at)

    def encoder_finished(self) -> Next:
        """The engine worker has nothing left (UI thread): start the fusion once."""
        if not self.done:
            return Next.NOTHING
        started, self.fusion_started = self.fusion_started, True
        return self.run.encoder_finished(started)

    def request_step(self, engine_busy: bool) -> Next:
        return self.run.request_step(self.trace is not None, engine_busy, self.done or self.failure is not None)

    def request_continue(self, engine_busy: bool) -> Next:
        return self.run.request_continue(self.trace is not None, engine_busy, self.done or self.failure is not None)

    def _locate(self) -> tuple[str, str, str]:
        found = self.trace.locate_nonfinite()
        if found is None:
            bad = self.trace.first_nonfinite()
            return bad.name, bad.module or bad.name, "NaN/Inf in the output"
        stage, path, report = found
        return stage.name, path, report.describe() if report is not None else "NaN/Inf in the output"

    def status(self, name: str) -> str:
        if self.trace is None:
            return PENDING
        if name == FUSION:
            return DONE if self.fusion is not None else FAILED if self.fusion_failure is not None else PENDING
        failure = self.trace.failure
        if failure is not None and str(StageName.parse(name).top) == failure.stage:
            return FAILED
        try:
            stage = self.trace[name]
        except KeyError:
            return PENDING
        return NONFINITE if stage.nonfinite else DONE

    def stage(self, name: str) -> Stage | None:
        if self.trace is None:
            return None
        try:
            return self.trace[name]
        except KeyError:
            return None

    def title(self, name: str) -> str:
        stage = self.stage(name)
        return stage.title if stage is not None else planned_title(name, self.config)

    def toggle_breakpoint(self, name: str | None = None) -> tuple[str, bool]:
        """Breakpoints sit on top-level stages (a block's steps are computed together)."""
        target = str(StageName.parse(name or self.selected).top)
        if target in self.breakpoints:
            self.breakpoints.discard(target)
            return target, False
        self.breakpoints.add(target)
        return target, True

    # ---- navigation -----------------------------------------------------------------------------

    def select(self, name: str) -> None:
        self.selected = name

    def block_step(self, delta: int) -> str | None:
        """Same step of the previous/next block (`blocks.3.mlp` → `blocks.4.mlp`); from elsewhere, the nearest block."""
        here = StageName.parse(self.selected)
        if not here.in_block:
            names = self.names
            index = names.index(str(here.top)) if str(here.top) in names else 0
            blocks = [n for n in (names[index + 1:] if delta > 0 else reversed(names[:index]))
                      if n != FUSION and StageName.parse(n).in_block]
            return self._go(blocks[0]) if blocks else None
        target = here.layer + delta
        if not 0 <= target < self.config.depth:
            return None
        return self._go(str(here.in_layer(target)))

    def _go(self, name: str) -> str:
        self.selected = name
        return name

    def head_step(self, delta: int) -> None:
        heads = self.config.num_heads
        self.head = (self.last_head if self.head is None else self.head + delta) % heads
        self.last_head = self.head

    def toggle_mean(self) -> None:
        self.head = self.last_head if self.head is None else None

    def toggle_rollout(self) -> None:
        self.rollout = not self.rollout

    def toggle_received(self) -> None:
        self.received = not self.received

    def move_query(self, drow: int, dcol: int) -> None:
        row, col = self.query
        self.query = (min(max(row + drow, 0), self.grid_h - 1), min(max(col + dcol, 0), self.grid_w - 1))
        self.received = False

    def set_query(self, row: int, col: int) -> None:
        self.query = (min(max(row, 0), self.grid_h - 1), min(max(col, 0), self.grid_w - 1))
        self.received = False

    def move_token(self, drow: int, dcol: int) -> None:
        """Move the fusion view's selected image token on the merged grid (one 2×2 patch group per step)."""
        self.set_token(self.token[0] + drow, self.token[1] + dcol)

    def set_token(self, row: int, col: int) -> None:
        rows, cols = self.grid_h // self.merge, self.grid_w // self.merge
        self.token = (min(max(row, 0), rows - 1), min(max(col, 0), cols - 1))

    def selected_token(self) -> TokenInfo | None:
        from qwen3vl_inspect.tui.fusion_view import token_at

        return None if self.fusion is None else token_at(self.fusion, *self.token)

    # ---- views ------------------------------------------------------------------------------------

    def view_kind(self, name: str | None = None) -> str:
        name = name or self.selected
        if name == "input":  # the resized image exists before the model does
            return stage_overlays.IMAGE
        status = self.status(name)
        if status == FAILED:
            return stage_overlays.FAILED
        if status == PENDING:
            return stage_overlays.PENDING
        if name == FUSION:
            return stage_overlays.FUSION
        row = self.divergence(name) if self.show_error else None
        if row is not None and row.location is not None and row.diff is not None:
            return stage_overlays.ERROR
        fixed = {"input": stage_overlays.IMAGE, "patchify": stage_overlays.PATCHIFY, "rotary": stage_overlays.ROTARY}
        if name in fixed:
            return fixed[name]
        parsed = StageName.parse(name)
        if parsed.in_block and parsed.step in (None, "attn") and not self.norms_instead:
            return stage_overlays.ATTENTION
        return stage_overlays.NORMS

    def can_attend(self) -> bool:
        """Attention keys mean something: a block stage is selected and shows its attention."""
        return self.view_kind() == stage_overlays.ATTENTION

    def view_spec(self) -> ViewSpec:
        kind = self.view_kind()
        if kind == stage_overlays.FUSION:  # the selected token by its top-left patch
            return ViewSpec(self.selected, kind, query=(self.token[0] * self.merge, self.token[1] * self.merge))
        if kind != stage_overlays.ATTENTION:
            return ViewSpec(self.selected, kind)
        return ViewSpec(self.selected, kind, StageName.parse(self.selected).layer, None if self.rollout else self.head,
                        self.rollout, None if self.received else self.query)

    def cached_overlay(self, spec: ViewSpec) -> Overlay | None:
        if spec.kind in (stage_overlays.PENDING, stage_overlays.FAILED):
            return stage_overlays.plain(spec, "")
        if spec.kind == stage_overlays.IMAGE:
            return stage_overlays.plain(spec, f"the resized image the patches are cut from, "
                                        f"{self.image.width}×{self.image.height} pixels")
        found = self._overlays.get(spec)
        if found is None and spec.kind == stage_overlays.FUSION and self.fusion is not None:  # a few numbers
            from qwen3vl_inspect.tui.fusion_view import fusion_overlay

            found = self._overlays.put(spec, fusion_overlay(self.fusion, spec))
        elif found is None and spec.kind == stage_overlays.ERROR and self.against is not None:  # a reshape
            error = self.against.error_overlay(spec)
            found = None if error is None else self._overlays.put(spec, error)
        return found

    def overlay(self, spec: ViewSpec) -> Overlay:
        """Compute (or fetch) the picture's values; call from a worker thread."""
        found = self.cached_overlay(spec)
        if found is not None:
            return found
        with self.lock:
            result = self._compute(spec)
            if self.stage(spec.stage) is not None:
                self.trace.stats(spec.stage)  # a block step's stats: computed here, in the worker; the UI only reads
        return result

    def _compute(self, spec: ViewSpec) -> Overlay:
        """Compute and cache one overlay; the caller holds `lock`."""
        return self._overlays.put(spec, stage_overlays.compute(self.trace, spec))

    def is_quick(self, spec: ViewSpec) -> bool:
        """True when the overlay needs only tensors already at hand (no block recomputation, no new map)."""
        if self.trace is None or self.stage(spec.stage) is None:
            return False
        if spec.kind in (stage_overlays.PATCHIFY, stage_overlays.ROTARY):
            return True
        if spec.kind == stage_overlays.NORMS:
            return StageName.parse(spec.stage).kind != "step"  # a block step's tensor would be recomputed
        if spec.kind == stage_overlays.ATTENTION:
            return self.trace.attention_at_hand(spec.layer, spec.head, spec.rollout)
        return False

    def quick_overlay(self, spec: ViewSpec) -> Overlay | None:
        """The overlay computed right here (UI thread) if that takes a few milliseconds, else None.

        Never waits: if a worker holds the Trace (a stage running), the caller falls back to a worker.
        """
        if not self.is_quick(spec) or not self.lock.acquire(blocking=False):
            return None
        try:
            return self._compute(spec)
        finally:
            self.lock.release()

    def layers_to_prefetch(self, layer: int) -> list[int]:
        """Computed neighbour blocks whose maps are not at hand yet, when a block's maps are small enough
        (at most PREFETCH_BYTES) to fetch ahead: then [ and ] redraw at once."""
        n = self.grid_h * self.grid_w
        if self.trace is None or self.config.num_heads * n * n * 4 > PREFETCH_BYTES:
            return []
        return [other for other in (layer + 1, layer - 1)
                if 0 <= other < self.config.depth and not self.trace.attention_at_hand(other, 0)
                and self.status(str(StageName.block(other))) not in (PENDING, FAILED)]

    def prefetch(self, layer: int) -> None:
        """Every head of block `layer` into the Trace's attention store, so head keys redraw at once."""
        with self.lock:
            self.trace.attention(layer)

    def cached_summary(self, layer: int) -> dict[str, Any] | None:
        return self.trace.attention_store.summary_at_hand(layer) if self.trace is not None else None

    def head_summary(self, layer: int) -> dict[str, Any]:
        """Entropy / mean distance per head and sink patches of one block (computed once, in a worker)."""
        with self.lock:
            return self.trace.head_summary(layer)

    # ---- files (see files.py) -------------------------------------------------------------------------

    def save_png(self, spec: ViewSpec) -> Path:
        """The current view as a PNG in `out_dir` (where the command was run); returns the path."""
        from qwen3vl_inspect.tui.files import save_png

        shown = self.overlay(spec) if spec.kind not in (stage_overlays.PENDING, stage_overlays.FAILED) else None
        return save_png(self, spec, shown)

    def export_json(self) -> Path:
        """The trace summary (every computed stage's shapes and stats) as JSON in `out_dir`; returns the path."""
        from qwen3vl_inspect.tui.files import export_json

        return export_json(self)
