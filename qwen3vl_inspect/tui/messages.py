"""Messages that flow up: from workers (the run, the maps) and from widgets (a click on the image).

Workers post these from their threads (`post_message` is thread-safe); the screen handles them on
the UI thread, so widgets are only ever touched there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec
from qwen3vl_inspect.tui.failure import Failure

if TYPE_CHECKING:
    from qwen3vl_inspect.comparison import Comparison
    from qwen3vl_inspect.fusion import FusionResult
    from qwen3vl_inspect.model.encoder import VisionEncoder
    from qwen3vl_inspect.tracing import Trace


class LoadProgress(Message):
    """The model is being built or loaded: one line of what is happening."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = safe_text(text)  # may name the checkpoint folder: shown, never obeyed


class ModelLoaded(Message):
    """The encoder is built and the Trace exists; stages can now be computed."""

    def __init__(self, encoder: VisionEncoder, trace: Trace) -> None:
        super().__init__()
        self.encoder = encoder
        self.trace = trace


class LoadFailed(Message):
    """The model could not be loaded; the app closes with this one line and exit code 2."""

    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure


class StageStarted(Message):
    """The engine worker begins computing stage `name`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class StageComputed(Message):
    def __init__(self, name: str, first_nonfinite: tuple[str, str, str] | None = None) -> None:
        super().__init__()
        self.name = name
        self.first_nonfinite = first_nonfinite


class StageFailed(Message):
    """A stage raised (or ran out of memory): earlier stages stay, the UI stays usable."""

    def __init__(self, name: str, failure: Failure) -> None:
        super().__init__()
        self.name = name
        self.failure = failure


class RunPaused(Message):
    """The run stopped before the end: a breakpoint, one step done, or the user asked."""

    def __init__(self, reason: str, at: str | None = None) -> None:
        super().__init__()
        self.reason = reason
        self.at = at


class RunFinished(Message):
    pass


class OverlayReady(Message):
    def __init__(self, overlay: Overlay) -> None:
        super().__init__()
        self.overlay = overlay


class OverlayFailed(Message):
    def __init__(self, spec: ViewSpec, failure: Failure) -> None:
        super().__init__()
        self.spec = spec
        self.failure = failure


class SummaryReady(Message):
    def __init__(self, layer: int, summary: dict[str, Any]) -> None:
        super().__init__()
        self.layer = layer
        self.summary = summary


class SummaryFailed(Message):
    def __init__(self, layer: int, failure: Failure) -> None:
        super().__init__()
        self.layer = layer
        self.failure = failure


class FusionReady(Message):
    """The finished run's output fused into the language model's input."""

    def __init__(self, result: FusionResult) -> None:
        super().__init__()
        self.result = result


class FusionFailed(Message):
    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure


class FileWritten(Message):
    def __init__(self, what: str, path: str) -> None:
        super().__init__()
        self.what = what
        self.path = safe_text(path)


class FileFailed(Message):
    def __init__(self, what: str, failure: Failure) -> None:
        super().__init__()
        self.what = what
        self.failure = failure


class QueryPicked(Message):
    """A click on the image chose a query patch (patch-grid row, col), or the fusion view's token there."""

    def __init__(self, row: int, col: int) -> None:
        super().__init__()
        self.row = row
        self.col = col


class StageChosen(Message):
    """The stage list's cursor moved to a stage."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class ComparisonReady(Message):
    """`--against B` finished: its comparison with this run."""

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison


class ComparisonFailed(Message):
    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure
