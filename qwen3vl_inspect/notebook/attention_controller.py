"""State and logic of the AttentionExplorer, without any widget: tests and scripts drive it directly.

One picture is decided by (block, head or mean or rollout, query patch or "received"); the values
come from the Trace (`attention`, `rollout`) through the same `stage_overlays` code the TUI uses, so the
notebook and the terminal show the same numbers for the same choice. Maps are for the first image
of the trace (the one the picture shows).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from qwen3vl_inspect import stage_overlays
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import fmt_float
from qwen3vl_inspect.notebook import widget_picture
from qwen3vl_inspect.session import first_image
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec
from qwen3vl_inspect.tracing import Trace

MODES = ("head", "mean", "rollout")


class AttentionController:
    def __init__(self, trace: Trace, layer: int | None = None, head: int = 0, mode: str = "mean",
                 query: tuple[int, int] | None = None, received: bool = False) -> None:
        self.trace = trace
        self.config = trace.config
        _, self.grid_h, self.grid_w = (int(v) for v in trace.grid_thw[0].tolist())
        self.layer = self.config.depth // 2 if layer is None else self._check_layer(layer)
        self.head = self._check_head(head)
        self.mode = self._check_mode(mode)
        self.query = (self.grid_h // 2, self.grid_w // 2) if query is None else self._clamp(*query)
        self.received = received

    # ---- choices --------------------------------------------------------------------------------

    def _check_layer(self, layer: int) -> int:
        if not 0 <= int(layer) < self.config.depth:
            raise InputError(f"block {layer} does not exist: blocks are numbered 0..{self.config.depth - 1}")
        return int(layer)

    def _check_head(self, head: int) -> int:
        if not 0 <= int(head) < self.config.num_heads:
            raise InputError(f"head {head} does not exist: heads are numbered 0..{self.config.num_heads - 1}")
        return int(head)

    def _check_mode(self, mode: str) -> str:
        if mode not in MODES:
            raise InputError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
        return mode

    def _clamp(self, row: int, col: int) -> tuple[int, int]:
        return min(max(int(row), 0), self.grid_h - 1), min(max(int(col), 0), self.grid_w - 1)

    def set_layer(self, layer: int) -> None:
        self.layer = self._check_layer(layer)

    def set_head(self, head: int) -> None:
        """Choosing a head also switches to that head's own map."""
        self.head = self._check_head(head)
        self.mode = "head"

    def set_mode(self, mode: str) -> None:
        self.mode = self._check_mode(mode)

    def set_received(self, received: bool) -> None:
        """True: how much attention each patch receives (column mean); False: where the query looks."""
        self.received = bool(received)

    def set_query(self, row: int, col: int) -> tuple[int, int]:
        self.query = self._clamp(row, col)
        self.received = False
        return self.query

    def click(self, x: float, y: float) -> tuple[int, int]:
        """A click at (x, y), as fractions of the shown picture's width and height, picks that patch."""
        col = int(min(max(float(x), 0.0), 0.999999) * self.grid_w)
        row = int(min(max(float(y), 0.0), 0.999999) * self.grid_h)
        return self.set_query(row, col)

    # ---- what is shown --------------------------------------------------------------------------

    def spec(self) -> ViewSpec:
        return ViewSpec(str(StageName.block(self.layer)), stage_overlays.ATTENTION, self.layer,
                        self.head if self.mode == "head" else None, self.mode == "rollout",
                        None if self.received else self.query)

    def overlay(self) -> Overlay:
        """The values for the current choice (the maps are computed by the Trace on first request and
        held in its attention store)."""
        return stage_overlays.compute(self.trace, self.spec())

    @property
    def image(self) -> Image.Image:
        return first_image(self.trace)

    def picture(self) -> Image.Image:
        return widget_picture.render(self.image, self.overlay())

    def png(self) -> bytes:
        return widget_picture.png_bytes(self.picture())

    def head_summary(self) -> dict[str, Any]:
        """Entropy and mean attention distance of every head of the current block, and its sink patches."""
        return self.trace.head_summary(self.layer)

    def caption(self) -> str:
        shown = self.overlay()
        span = shown.range
        scale = "" if span is None else f" · colour scale {fmt_float(span[0], 3)} … {fmt_float(span[1], 3)}"
        text = f"block {self.layer} · {shown.what}{scale}"
        if self.mode == "head":
            summary = self.head_summary()
            entropy, distance = summary["entropy"][self.head], summary["mean_distance"][self.head]
            text += (f" · head {self.head}: entropy {entropy:.2f} nats (uniform {summary['uniform_entropy']:.2f}),"
                     f" mean distance {distance:.1f} patches")
        if shown.nonfinite_cells:
            text += f" · {shown.nonfinite_cells} NaN/Inf cells (red)"
        return text

    def state(self) -> dict[str, Any]:
        return {"layer": self.layer, "head": self.head, "mode": self.mode, "query": self.query,
                "received": self.received}
