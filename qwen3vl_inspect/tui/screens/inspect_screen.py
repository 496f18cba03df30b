"""The inspector: stage list on the left, the picture in the middle, the numbers on the right.

Attributes down (the screen sets widget data from the Inspector), messages up (widgets and
workers post; handlers here update the Inspector, then `sync`). Model loading, stepping and map
computation run in thread workers that check cancellation between stages.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer

from qwen3vl_inspect import stage_overlays
from qwen3vl_inspect.config import checkpoint_folder
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.stage_overlays import ViewSpec
from qwen3vl_inspect.teaching import explain
from qwen3vl_inspect.tui import keys
from qwen3vl_inspect.tui import messages as msg
from qwen3vl_inspect.tui.controller import FUSION, Inspector
from qwen3vl_inspect.tui.failure import FailureKind
from qwen3vl_inspect.tui.fusion_panel import panel as fusion_panel
from qwen3vl_inspect.tui.fusion_view import image_tokens, merged_grid
from qwen3vl_inspect.tui.run_state import Next
from qwen3vl_inspect.tui.screens.help_screen import HelpScreen
from qwen3vl_inspect.tui.screens.workers import EngineWorkers
from qwen3vl_inspect.tui.widgets.head_table import HeadTable
from qwen3vl_inspect.tui.widgets.image_view import ImageView
from qwen3vl_inspect.tui.widgets.run_header import RunHeader
from qwen3vl_inspect.tui.widgets.run_status import RunStatus
from qwen3vl_inspect.tui.widgets.stage_info import StageInfo
from qwen3vl_inspect.tui.widgets.stage_list import StageList
from qwen3vl_inspect.tui.widgets.too_small import MIN_HEIGHT, MIN_WIDTH, TooSmall
from qwen3vl_inspect.tui.widgets.view_caption import ViewCaption

START_DELAY = 0.15  # seconds between the first frame and starting to build the model
ATTENTION_ACTIONS = {"head", "toggle_mean", "toggle_rollout", "toggle_received"}


class InspectScreen(EngineWorkers, Screen):
    BINDINGS = keys.bindings()

    def __init__(self, inspector: Inspector, show_timings: bool = True) -> None:
        super().__init__()
        self.inspector = inspector
        self.show_timings = show_timings
        self._pending_spec: ViewSpec | None = None  # the overlay being computed
        self._errors: dict[ViewSpec, str] = {}
        self._bindings_state: tuple | None = None
        self._summary_layer: int | None = None  # the block whose head summary is being computed

    def compose(self) -> ComposeResult:
        ins = self.inspector
        yield RunHeader(id="header")
        with Horizontal(id="body"):
            yield StageList(id="stages")
            with Vertical(id="centre"):
                yield ViewCaption(id="caption")
                yield ImageView(ins.image, (ins.grid_h, ins.grid_w), id="image")
            with VerticalScroll(id="side"):
                yield HeadTable(id="heads")
                yield StageInfo(self.show_timings, id="info")
        yield RunStatus(id="status")
        yield TooSmall(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        ins = self.inspector
        self.query_one(StageList).rebuild(ins)
        self.query_one(StageList).go_to(ins.selected)
        self.query_one(StageList).focus()
        self._show_header()
        self._check_size(self.size.width, self.size.height)
        ins.run.loading()
        self.sync()
        for severity, note in ins.notes:
            self.notify(note, severity=severity, timeout=12, markup=False)  # type: ignore[arg-type]
        self.set_timer(START_DELAY, self.load)  # paint first: building a model competes for the CPU

    # ---- size --------------------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            self.query_one(TooSmall).show(width, height)

    # ---- messages up ------------------------------------------------------------------------------------

    def on_load_progress(self, message: msg.LoadProgress) -> None:
        self.inspector.run.loading(message.text)
        self.sync(view=False)

    def on_model_loaded(self, message: msg.ModelLoaded) -> None:
        ins = self.inspector
        next_ = ins.attach(message.encoder, message.trace)
        self._show_header()
        self.query_one(StageList).rebuild(ins)
        self.sync()
        self._start(next_)

    def on_load_failed(self, message: msg.LoadFailed) -> None:
        failure = message.failure
        bad_input = failure.kind is FailureKind.BAD_INPUT
        text = failure.text if bad_input else f"could not load --model {self.inspector.model}: {failure}"
        self.app.exit(text, return_code=2)

    def on_stage_started(self, message: msg.StageStarted) -> None:
        self.inspector.run.stage_started(message.name)
        self.sync(view=False)

    def on_stage_computed(self, message: msg.StageComputed) -> None:
        ins = self.inspector
        if message.first_nonfinite is not None:
            stage, module, _ = message.first_nonfinite
            self.notify(f"NaN/Inf first appears in {stage}, produced by {module}", severity="error", timeout=8)
        ins.stage_computed(message.name, message.first_nonfinite)
        if ins.run.step_mode:
            self.query_one(StageList).go_to(message.name)
        self.sync()

    def on_stage_failed(self, message: msg.StageFailed) -> None:
        self.inspector.run.stage_failed(message.name, message.failure)
        self.notify(f"{message.name} failed: {message.failure}. The stages before it are kept.", severity="error",
                    timeout=10, markup=False)
        self.sync()

    def on_run_paused(self, message: msg.RunPaused) -> None:
        self.inspector.paused(message.reason, message.at)
        if message.reason == "breakpoint" and message.at is not None:
            self.query_one(StageList).go_to(message.at)
        self.sync()

    def on_run_finished(self, message: msg.RunFinished) -> None:
        self._start(self.inspector.encoder_finished())
        self.sync()

    def on_fusion_ready(self, message: msg.FusionReady) -> None:
        ins = self.inspector
        ins.fused(message.result)
        if ins.against is not None and not ins.against.started:
            ins.against.started = True
            ins.run.activity = f"comparing with {ins.against.against} …"
            self.compute_comparison()
        self.sync()

    def on_comparison_ready(self, message: msg.ComparisonReady) -> None:
        ins = self.inspector
        if ins.against is not None:
            ins.against.compared(message.comparison)
        ins.run.activity = message.comparison.verdict
        first = message.comparison.first_divergence
        if first is not None:
            self.notify(f"first divergence: {first.name} ({first.origin or first.status})", severity="warning",
                        timeout=10, markup=False)
        self.sync()

    def on_comparison_failed(self, message: msg.ComparisonFailed) -> None:
        ins = self.inspector
        ins.run.activity = f"compare failed: {message.failure}"
        against = ins.against.against if ins.against is not None else "B"
        self.notify(f"--against {against}: {message.failure}", severity="error", timeout=10, markup=False)
        self.sync()

    def on_fusion_failed(self, message: msg.FusionFailed) -> None:
        self.inspector.fused(None, message.failure)
        self.notify(f"vision-to-text fusion failed: {message.failure}", severity="error", timeout=10, markup=False)
        self.sync()

    def _start(self, next_: Next) -> None:
        """Start what a run-state transition asked for."""
        if next_ is Next.ONE_STAGE:
            self.advance(one=True)
        elif next_ is Next.RUN_ON:
            self.advance(one=False)
        elif next_ is Next.FUSION:
            self.compute_fusion()

    def on_overlay_ready(self, message: msg.OverlayReady) -> None:
        if message.overlay.spec == self._pending_spec:
            self._pending_spec = None
        self.refresh_view()

    def on_overlay_failed(self, message: msg.OverlayFailed) -> None:
        self._errors[message.spec] = str(message.failure)
        if message.spec == self._pending_spec:
            self._pending_spec = None
        self.refresh_view()

    def on_summary_ready(self, message: msg.SummaryReady) -> None:
        if message.layer == self._summary_layer:
            self._summary_layer = None
        self.refresh_view()

    def on_summary_failed(self, message: msg.SummaryFailed) -> None:
        if message.layer == self._summary_layer:
            self._summary_layer = None
        self.notify(f"head summary of block {message.layer}: {message.failure}", severity="error")

    def on_file_written(self, message: msg.FileWritten) -> None:
        self._file_note(f"saved {message.what}: {message.path}", "information")

    def on_file_failed(self, message: msg.FileFailed) -> None:
        self._file_note(f"{message.what} failed: {message.failure}", "error")

    def _file_note(self, text: str, severity: str) -> None:
        self.inspector.run.activity = text
        self.notify(text, severity=severity, timeout=6, markup=False)  # type: ignore[arg-type]
        self.sync(view=False)

    @on(msg.StageChosen)
    def _stage_chosen(self, message: msg.StageChosen) -> None:
        self.inspector.select(message.name)
        self.refresh_view()

    @on(msg.QueryPicked)
    def _query_picked(self, message: msg.QueryPicked) -> None:
        ins = self.inspector
        if ins.view_kind() == stage_overlays.FUSION:
            ins.set_token(message.row // ins.merge, message.col // ins.merge)
        else:
            ins.set_query(message.row, message.col)
        self.query_one(ImageView).focus()
        self.refresh_view()

    # ---- attributes down ------------------------------------------------------------------------------

    def _show_header(self) -> None:
        ins = self.inspector
        height, width = ins.inputs.original_sizes[0]
        sizes = f"{width}×{height}→{ins.image.width}×{ins.image.height}"
        grid = f"{ins.grid_h}×{ins.grid_w}={ins.grid_h * ins.grid_w} patches"
        folder = checkpoint_folder(ins.model)
        model, weights = ins.model, ins.weights
        if folder is not None:  # a checkpoint: its folder name, and say where the weights come from once
            model = folder.name or str(folder)
            weights = "weights from the checkpoint" if weights == str(folder) else weights
        self.query_one(RunHeader).show(ins.image_path.name, sizes, grid, model, weights, ins.dtype, ins.device)

    def sync(self, view: bool = True) -> None:
        ins = self.inspector
        self.query_one(StageList).refresh_labels(ins)
        self.query_one(RunStatus).show(ins.run.state.badge, ins.computed, len(ins.names), ins.run.activity,
                                       len(ins.breakpoints), ins.nonfinite)
        if view:
            self.refresh_view()

    def refresh_view(self) -> None:
        ins = self.inspector
        spec = ins.view_spec()
        image, caption, info, heads = (self.query_one(ImageView), self.query_one(ViewCaption),
                                       self.query_one(StageInfo), self.query_one(HeadTable))
        title = ins.title(spec.stage)
        stage = ins.stage(spec.stage)
        heads.display = spec.kind == stage_overlays.ATTENTION
        if spec.kind in (stage_overlays.PENDING, stage_overlays.FAILED):
            failed = spec.kind == stage_overlays.FAILED
            how = ("press space to compute the next stage, c to run on" if ins.run.step_mode or ins.run.paused_at
                   else "it appears as soon as the encoder reaches it")
            if spec.stage == FUSION:
                how = "it is computed as soon as the patch merger is"
            cause = ins.fusion_failure if spec.stage == FUSION else ins.failure.cause if ins.failure else None
            note = f"failed: {cause}" if failed else f"not computed yet — {how}"
            image.show(None, dim=True, message="failed" if failed else "not computed yet")
            caption.show(title, None, image.palette, note)
            info.show_message(title, [note] if not failed else [f"stage {spec.stage} failed:", str(cause),
                                                               "Every stage before it is kept and can be opened."])
            self._refresh_footer()
            return
        shown = ins.cached_overlay(spec) or ins.quick_overlay(spec)
        error = self._errors.get(spec)
        if shown is not None:
            image.show(shown, show_overlay=ins.show_overlay)
            note = "" if ins.show_overlay else "overlay off (o)"
            caption.show(title, shown, image.palette, note)
        elif error is not None:
            caption.show(title, None, image.palette, f"could not draw this view: {error}")
        else:
            caption.show(title, image.overlay if image.overlay and image.overlay.spec.stage == spec.stage else None,
                         image.palette, "computing …")
            if spec != self._pending_spec:
                self._pending_spec = spec
                self.compute_overlay(spec)
        if spec.kind == stage_overlays.FUSION:
            self._show_fusion()
        elif stage is not None:
            info.show_stage(stage, shown, ins.nonfinite)
        else:
            info.show_message(title, [f"{safe_text(ins.image_path.name)} was resized to {ins.image.width}×{ins.image.height}: "
                                      f"{ins.grid_h}×{ins.grid_w} patches of 16×16 pixels.",
                                      "The numbers of this stage appear once the model is ready."])
        if spec.kind == stage_overlays.ATTENTION:
            summary = ins.cached_summary(spec.layer)
            heads.show(summary, spec.head if not spec.rollout else None, spec.layer)
            if summary is None and spec.layer != self._summary_layer and error is None:
                self._summary_layer = spec.layer
                self.compute_summary(spec.layer)
            ahead = ins.layers_to_prefetch(spec.layer) if shown is not None else []
            if ahead:
                self.prefetch(ahead)
        self._refresh_footer()

    def _show_fusion(self) -> None:
        """The fusion view's numbers (sequence, position ids, DeepStack plan, selected token) in the stage panel."""
        ins = self.inspector
        token = ins.selected_token()
        rows, cols = merged_grid(ins.fusion)
        explanation = explain("fusion", merged=len(image_tokens(ins.fusion)), rows=rows, cols=cols)
        parts = fusion_panel(ins.fusion, token, explanation)
        self.query_one(StageInfo).show_parts((id(ins.fusion), token.index), parts)

    def _refresh_footer(self) -> None:
        """Rebuild the footer's keys only when the set of usable keys changed (it is the costly part of a redraw)."""
        ins = self.inspector
        state = (ins.can_attend(), StageName.parse(ins.selected).in_block, ins.trace is not None, ins.selected == FUSION)
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    # ---- actions (keys) ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ATTENTION_ACTIONS:
            return self.inspector.can_attend()
        if action == "move_query":  # an attention query, or the fusion view's selected token
            return self.inspector.can_attend() or self.inspector.view_kind() == stage_overlays.FUSION
        if action == "toggle_breakpoint":  # the fusion follows the merger by itself: nothing to stop at
            return self.inspector.selected != FUSION
        if action == "toggle_norms":
            return StageName.parse(self.inspector.selected).in_block
        if action in ("save_png", "export_json"):
            return self.inspector.trace is not None
        return True

    def action_next_stage(self) -> None:
        self.query_one(StageList).action_cursor_down()

    def action_prev_stage(self) -> None:
        self.query_one(StageList).action_cursor_up()

    def action_first_stage(self) -> None:
        self.query_one(StageList).go_to(self.inspector.names[0])

    def action_last_stage(self) -> None:
        self.query_one(StageList).go_to(self.inspector.names[-1])

    def action_block(self, delta: int) -> None:
        name = self.inspector.block_step(delta)
        if name is not None:
            self.query_one(StageList).go_to(name)
            self.refresh_view()

    def action_head(self, delta: int) -> None:
        self.inspector.head_step(delta)
        self.refresh_view()

    def action_toggle_mean(self) -> None:
        self.inspector.toggle_mean()
        self.refresh_view()

    def action_toggle_rollout(self) -> None:
        self.inspector.toggle_rollout()
        self.refresh_view()

    def action_toggle_received(self) -> None:
        self.inspector.toggle_received()
        self.refresh_view()

    def action_move_query(self, drow: int, dcol: int) -> None:
        if self.inspector.view_kind() == stage_overlays.FUSION:
            self.inspector.move_token(drow, dcol)
        else:
            self.inspector.move_query(drow, dcol)
        self.refresh_view()

    def action_toggle_norms(self) -> None:
        self.inspector.norms_instead = not self.inspector.norms_instead
        self.refresh_view()

    def action_toggle_error(self) -> None:
        self.inspector.show_error = not self.inspector.show_error
        self.refresh_view()

    def action_toggle_overlay(self) -> None:
        self.inspector.show_overlay = not self.inspector.show_overlay
        self.refresh_view()

    def action_step(self) -> None:
        ins = self.inspector
        next_ = ins.request_step(self._engine_busy())
        if next_ is Next.NOTHING and ins.trace is not None and (ins.done or ins.failure is not None):
            self.notify("nothing left to compute" if ins.done else f"the run stopped at {ins.failure.stage}")
        self._start(next_)
        self.sync(view=False)

    def action_continue_run(self) -> None:
        self._start(self.inspector.request_continue(self._engine_busy()))
        self.sync(view=False)

    def action_toggle_breakpoint(self) -> None:
        name, on_ = self.inspector.toggle_breakpoint()
        self.notify(f"breakpoint {'set on' if on_ else 'removed from'} {name}"
                    + (": the run pauses once it is computed" if on_ else ""), timeout=4)
        self.sync(view=False)

    def action_save_png(self) -> None:
        self.inspector.run.activity = "saving PNG …"
        self.write_file("PNG", self.inspector.view_spec())
        self.sync(view=False)

    def action_export_json(self) -> None:
        self.inspector.run.activity = "exporting JSON (every block step's stats: one more pass over the blocks) …"
        self.write_file("JSON", None)
        self.sync(view=False)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit(self) -> None:
        self.app.exit(None)
