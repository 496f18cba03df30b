"""AttentionExplorer: block and head sliders, head/mean/rollout and query/received toggles, and a
click on the picture to choose the query patch. A thin front end: `AttentionController` decides."""

from __future__ import annotations

import html

import ipywidgets as widgets

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.notebook.attention_controller import MODES, AttentionController
from qwen3vl_inspect.notebook.click_image import ClickableImage
from qwen3vl_inspect.tracing import Trace


class AttentionExplorer(widgets.VBox):
    """Attention of one block over the first image of `trace`; click a patch to see where it looks."""

    def __init__(self, trace: Trace, layer: int | None = None, head: int = 0, mode: str = "mean",
                 width: int = 0, **kwargs) -> None:
        self.controller = AttentionController(trace, layer=layer, head=head, mode=mode)
        c = self.controller
        self.block = widgets.IntSlider(value=c.layer, min=0, max=c.config.depth - 1, description="block",
                                       continuous_update=False)
        self.head = widgets.IntSlider(value=c.head, min=0, max=c.config.num_heads - 1, description="head",
                                      continuous_update=False)
        self.mode = widgets.ToggleButtons(options=list(MODES), value=c.mode, description="show",
                                          tooltips=["one head", "mean of all heads", "rollout from block 0"])
        self.target = widgets.ToggleButtons(options=["query", "received"], value="query", description="map",
                                            tooltips=["where the query patch looks (click the picture)",
                                                      "attention each patch receives (mean over queries)"])
        self.picture = ClickableImage(width=width)
        self.caption = widgets.HTML()
        self.status = widgets.HTML()
        self._syncing = False
        self.block.observe(lambda change: self._apply(c.set_layer, change["new"]), names="value")
        self.head.observe(lambda change: self._apply(c.set_head, change["new"]), names="value")
        self.mode.observe(lambda change: self._apply(c.set_mode, change["new"]), names="value")
        self.target.observe(lambda change: self._apply(c.set_received, change["new"] == "received"), names="value")
        self.picture.on_click(self.click)
        controls = [widgets.HBox([self.block, self.head]), widgets.HBox([self.mode]), widgets.HBox([self.target])]
        super().__init__(children=[*controls, self.picture, self.caption, self.status], **kwargs)
        self.redraw()

    def _apply(self, setter, value) -> None:
        if self._syncing:
            return
        try:
            setter(value)
        except InputError as exc:
            self.status.value = f'<span style="color:#d00">{html.escape(str(exc))}</span>'
            return
        self.redraw()

    def click(self, x: float, y: float) -> tuple[int, int]:
        """What a click at (x, y) (fractions of the picture) does: that patch becomes the query."""
        query = self.controller.click(x, y)
        self.redraw()
        return query

    def _sync_controls(self) -> None:
        c = self.controller
        self._syncing = True
        try:
            self.block.value, self.head.value, self.mode.value = c.layer, c.head, c.mode
            self.target.value = "received" if c.received else "query"
        finally:
            self._syncing = False

    def redraw(self) -> None:
        self._sync_controls()
        self.status.value = "<i>computing…</i>"
        try:
            png = self.controller.png()
            caption = self.controller.caption()
        except InputError as exc:
            self.status.value = f'<span style="color:#d00">{html.escape(str(exc))}</span>'
            return
        self.picture.show(png)
        self.caption.value = f'<span class="qwen3vl-caption">{html.escape(caption)}</span>'
        query = self.controller.query
        self.status.value = ("" if self.controller.received
                             else f"<small>query patch (row {query[0]}, col {query[1]}) · click the picture to move it</small>")
