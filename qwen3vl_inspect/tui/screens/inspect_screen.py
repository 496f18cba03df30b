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
from qwen3vl_inspect.tui import keys
from qwen3vl_inspect.tui import messages as msg
from qwen3vl_inspect.tui.controller import FUSION, Inspector
from qwen3vl_inspect.stage_overlays import ViewSpec
from qwen3vl_inspect.tui.screens.help_screen import HelpScreen
from qwen3vl_inspect.teaching import explain
from qwen3vl_inspect.tui.fusion_panel import panel as fusion_panel
from qwen3vl_inspect.tui.fusion_view import image_tokens, merged_grid
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
        ins.activity = "loading the model"
        self.sync()
        if ins.break_note:
            self.notify(ins.break_note, severity="warning" if "match no stage" in ins.break_note else "information",
                        timeout=12, markup=False)
        self.set_timer(START_DELAY, self.load_and_run)  # paint first: building a model competes for the CPU

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
        self.inspector.activity = message.text
        self.sync(view=False)

    def on_model_loaded(self, message: msg.ModelLoaded) -> None:
        ins = self.inspector
        ins.activity = "model ready" if ins.step_mode else "running"
        self._show_header()
        self.query_one(StageList).rebuild(ins)
        self.sync()

    def on_load_failed(self, message: msg.LoadFailed) -> None:
        self.app.exit(message.error, return_code=2)

    def on_stage_computed(self, message: msg.StageComputed) -> None:
        ins = self.inspector
        if message.first_nonfinite is not None:
            stage, module, _ = message.first_nonfinite
            self.notify(f"NaN/Inf first appears in {stage}, produced by {module}", severity="error", timeout=8)
        if ins.step_mode:
            ins.select(message.name)
            self.query_one(StageList).go_to(message.name)
        self.sync()

    def on_stage_failed(self, message: msg.StageFailed) -> None:
        ins = self.inspector
        ins.activity = f"{message.name} failed: {message.error}"
        self.notify(f"{message.name} failed: {message.error}. The stages before it are kept.", severity="error",
                    timeout=10, markup=False)
        self.sync()

    def on_run_paused(self, message: msg.RunPaused) -> None:
        ins = self.inspector
        if message.reason == "breakpoint":
            ins.paused_at = message.at
            ins.activity = f"paused at breakpoint {message.at}: c continues, space steps"
            ins.select(message.at)
            self.query_one(StageList).go_to(message.at)
        elif message.reason == "paused":
            ins.step_mode = True
            ins.activity = "paused: space computes the next stage, c continues"
        else:
            ins.activity = f"computed {message.at}: space steps, c continues"
        self.sync()

    def on_run_finished(self, message: msg.RunFinished) -> None:
        ins = self.inspector
        ins.paused_at = None
        if ins.done and not ins.fusion_started:  # the merger's output is complete: place it in the text
            ins.fusion_started = True
            ins.activity = "fusing the image tokens into the text sequence …"
            self.compute_fusion()
        elif ins.finished:
            ins.activity = f"all {len(ins.names)} stages computed"
        self.sync()

    def on_fusion_ready(self, message: msg.FusionReady) -> None:
        self.inspector.activity = f"all {len(self.inspector.names)} stages computed"
        self.sync()

    def on_fusion_failed(self, message: msg.FusionFailed) -> None:
        self.inspector.activity = f"fusion failed: {message.error}"
        self.notify(f"vision-to-text fusion failed: {message.error}", severity="error", timeout=10, markup=False)
        self.sync()

    def on_overlay_ready(self, message: msg.OverlayReady) -> None:
        if message.overlay.spec == self._pending_spec:
            self._pending_spec = None
        self.refresh_view()

    def on_overlay_failed(self, message: msg.OverlayFailed) -> None:
        self._errors[message.spec] = message.error
        if message.spec == self._pending_spec:
            self._pending_spec = None
        self.refresh_view()

    def on_summary_ready(self, message: msg.SummaryReady) -> None:
        if message.layer == self._summary_layer:
            self._summary_layer = None
        if "error" in message.summary:
            self.notify(f"head summary of block {message.layer}: {message.summary['error']}", severity="error")
            return
        self.refresh_view()

    def on_file_written(self, message: msg.FileWritten) -> None:
        failed = message.path.startswith("failed")
        text = f"{message.what} {message.path}" if failed else f"saved {message.what}: {message.path}"
        self.inspector.activity = text
        self.notify(text, severity="error" if failed else "information", timeout=6, markup=False)
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

    def mode(self) -> str:
        ins = self.inspector
        if ins.failure is not None:
            return "FAILED"
        if ins.trace is None:
            return "LOADING"
        if ins.finished:
            return "DONE"
        if ins.done:  # fusing the output
            return "RUN"
        if ins.paused_at is not None:
            return "PAUSED"
        return "STEP" if ins.step_mode else "RUN"

    def sync(self, view: bool = True) -> None:
        ins = self.inspector
        self.query_one(StageList).refresh_labels(ins)
        self.query_one(RunStatus).show(self.mode(), ins.computed, len(ins.names), ins.activity,
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
            how = ("press space to compute the next stage, c to run on" if ins.step_mode or ins.paused_at
                   else "it appears as soon as the encoder reaches it")
            if spec.stage == FUSION:
                how = "it is computed as soon as the patch merger is"
            cause = ins.fusion_error if spec.stage == FUSION else ins.failure.cause if ins.failure else None
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
        state = (ins.can_attend(), ins.selected.startswith("blocks."), ins.trace is not None, ins.selected == FUSION)
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
            return self.inspector.selected.startswith("blocks.")
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

    def action_toggle_overlay(self) -> None:
        self.inspector.show_overlay = not self.inspector.show_overlay
        self.refresh_view()

    def action_step(self) -> None:
        ins = self.inspector
        if ins.trace is None:
            ins.step_mode = True
            ins.activity = "step mode: the first stage waits for space once the model is ready"
        elif self._engine_busy():
            ins.pause_requested = True
            ins.activity = "pausing after the current stage …"
        elif ins.failure is not None or ins.done:
            self.notify("nothing left to compute" if ins.done else f"the run stopped at {ins.failure.stage}")
        else:
            ins.step_mode, ins.paused_at = True, None
            self.advance(one=True)
        self.sync(view=False)

    def action_continue_run(self) -> None:
        ins = self.inspector
        ins.step_mode, ins.paused_at, ins.pause_requested = False, None, False
        if ins.trace is not None and not ins.done and ins.failure is None and not self._engine_busy():
            ins.activity = "running"
            self.advance(one=False)
        self.sync(view=False)

    def action_toggle_breakpoint(self) -> None:
        name, on_ = self.inspector.toggle_breakpoint()
        self.notify(f"breakpoint {'set on' if on_ else 'removed from'} {name}"
                    + (": the run pauses once it is computed" if on_ else ""), timeout=4)
        self.sync(view=False)

    def action_save_png(self) -> None:
        self.inspector.activity = "saving PNG …"
        self.write_file("PNG", self.inspector.view_spec())
        self.sync(view=False)

    def action_export_json(self) -> None:
        self.inspector.activity = "exporting JSON (every block step's stats: one more pass over the blocks) …"
        self.write_file("JSON", None)
        self.sync(view=False)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit(self) -> None:
        self.app.exit(None)
