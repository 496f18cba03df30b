"""The inspector's thread workers: build the model, step the encoder, compute maps, fuse, write files.

Each runs in `@work(thread=True)` and talks to the screen only by posting messages: results and
typed `Failure`s go up, and the screen applies them to the controller on the UI thread (workers
read the controller's state, never change it). Each checks cancellation between stages, and runs
the torch call itself through `call_cancellable`, so a quitting app never waits for a model build
or a long block.
"""

from __future__ import annotations

from textual import work
from textual.worker import WorkerState, get_current_worker

from qwen3vl_inspect.memory_errors import ADVICE
from qwen3vl_inspect.stage_overlays import ViewSpec
from qwen3vl_inspect.tui import messages as msg
from qwen3vl_inspect.tui.controller import Inspector
from qwen3vl_inspect.tui.failure import Failure
from qwen3vl_inspect.tui.stages import Cancelled, call_cancellable


class EngineWorkers:
    """Mixed into the inspector screen: needs `inspector`, `post_message` and `workers`."""

    inspector: Inspector

    @work(thread=True, exclusive=True, group="engine")
    def load(self) -> None:
        ins, worker = self.inspector, get_current_worker()
        try:
            encoder, traced = call_cancellable(
                lambda: ins.build(lambda text: self.post_message(msg.LoadProgress(text))), lambda: worker.is_cancelled)
        except Cancelled:
            return
        except Exception as exc:  # a bad checkpoint, one that fails late, out of memory: still one line
            self.post_message(msg.LoadFailed(Failure.of(exc, f"loading the model {ins.model}", ADVICE["load"])))
            return
        self.post_message(msg.ModelLoaded(encoder, traced))

    @work(thread=True, exclusive=True, group="engine")
    def advance(self, one: bool) -> None:
        self._advance(one)

    def _advance(self, one: bool) -> None:
        """Compute stages until done, a breakpoint, a pause request, or (one=True) a single stage."""
        ins, worker = self.inspector, get_current_worker()
        while not worker.is_cancelled:
            if not one and ins.run.pause_requested:
                self.post_message(msg.RunPaused("paused"))
                return
            name = ins.next_name()
            if name is None:
                self.post_message(msg.RunFinished())
                return
            self.post_message(msg.StageStarted(name))
            try:
                result = call_cancellable(ins.step, lambda: worker.is_cancelled)
            except Cancelled:
                return
            except Exception as exc:  # the stage (StageError) or what follows it (locating a NaN): keep the UI
                self.post_message(msg.StageFailed(getattr(exc, "stage", name), Failure.of(exc)))
                return
            if result is None:
                self.post_message(msg.RunFinished())
                return
            self.post_message(msg.StageComputed(result.stage.name, result.first_nonfinite))
            if ins.done:
                self.post_message(msg.RunFinished())
                return
            if one or result.pause:
                self.post_message(msg.RunPaused("breakpoint" if result.pause and not one else "step", result.stage.name))
                return

    def _engine_busy(self) -> bool:
        return any(w.group == "engine" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in self.workers)

    @work(thread=True, exclusive=True, group="overlay")
    def compute_overlay(self, spec: ViewSpec) -> None:
        ins, worker = self.inspector, get_current_worker()
        try:
            result = call_cancellable(lambda: ins.overlay(spec), lambda: worker.is_cancelled)
            self.post_message(msg.OverlayReady(result))
        except Cancelled:
            return
        except Exception as exc:  # out of memory, a map over budget: shown in the view, the UI stays
            self.post_message(msg.OverlayFailed(spec, Failure.of(exc, "drawing this view", ADVICE["attention"])))

    @work(thread=True, exclusive=True, group="summary")
    def compute_summary(self, layer: int) -> None:
        ins, worker = self.inspector, get_current_worker()
        try:
            summary = call_cancellable(lambda: ins.head_summary(layer), lambda: worker.is_cancelled)
        except Cancelled:
            return
        except Exception as exc:
            self.post_message(msg.SummaryFailed(layer, Failure.of(exc, f"summarising the heads of block {layer}",
                                                                  ADVICE["attention"])))
            return
        self.post_message(msg.SummaryReady(layer, summary))

    @work(thread=True, exclusive=True, group="prefetch")
    def prefetch(self, layers: list[int]) -> None:
        """Neighbour blocks' maps, computed while the user looks at this one."""
        ins, worker = self.inspector, get_current_worker()
        for layer in layers:
            if worker.is_cancelled:
                return
            try:
                call_cancellable(lambda layer=layer: ins.prefetch(layer), lambda: worker.is_cancelled)
            except Exception:  # Cancelled, or a map over budget: the view will say so if it is opened
                return

    @work(thread=True, exclusive=True, group="fusion")
    def compute_fusion(self) -> None:
        """Tokens, embeddings, position ids and DeepStack plan of the finished run (the last list entry)."""
        ins, worker = self.inspector, get_current_worker()
        try:
            result = call_cancellable(ins.fusion_of_run, lambda: worker.is_cancelled)
        except Cancelled:
            return
        except Exception as exc:  # InputError (a prompt the model can't take), a missing tokenizer: shown in the view
            self.post_message(msg.FusionFailed(Failure.of(exc)))
            return
        self.post_message(msg.FusionReady(result))

    @work(thread=True, exclusive=True, group="comparison")
    def compute_comparison(self) -> None:
        """`--against B`: the same inputs through B, compared stage by stage with the finished run."""
        ins, worker = self.inspector, get_current_worker()
        try:
            result = call_cancellable(ins.comparison_of_run, lambda: worker.is_cancelled)
        except Cancelled:
            return
        except Exception as exc:  # B can't be built or run: said in the status line, the UI stays
            against = ins.against.against if ins.against is not None else "B"
            self.post_message(msg.ComparisonFailed(Failure.of(exc, f"comparing with {against}")))
            return
        self.post_message(msg.ComparisonReady(result))

    @work(thread=True, group="files")
    def write_file(self, what: str, spec: ViewSpec | None) -> None:
        ins, worker = self.inspector, get_current_worker()
        try:
            write = (lambda: ins.save_png(spec)) if what == "PNG" else ins.export_json
            path = call_cancellable(write, lambda: worker.is_cancelled)
            self.post_message(msg.FileWritten(what, str(path)))
        except Cancelled:
            return
        except Exception as exc:
            self.post_message(msg.FileFailed(what, Failure.of(exc)))
