"""StageStepper: walk the encoder stage by stage like a debugger — the picture, the shapes, the
stats (NaN/Inf in red) and the teaching text of each stage. A thin front end over `StepperController`."""

from __future__ import annotations

import html

import ipywidgets as widgets

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.notebook import widget_picture
from qwen3vl_inspect.notebook.stepper_controller import StepperController
from qwen3vl_inspect.render.html import stage_html
from qwen3vl_inspect.tracing import Trace


class StageStepper(widgets.VBox):
    def __init__(self, trace: Trace, substages: bool = True, width: int = 0, **kwargs) -> None:
        self.controller = StepperController(trace, substages=substages)
        self.first_button = widgets.Button(description="◀◀ first", tooltip="back to the first stage")
        self.back_button = widgets.Button(description="◀ back", tooltip="previous stage")
        self.step_button = widgets.Button(description="step ▶", button_style="primary",
                                          tooltip="next stage (computes it if needed)")
        self.run_button = widgets.Button(description="run to end ▶▶", tooltip="compute every remaining stage")
        self.substages = widgets.Checkbox(value=substages, description="block sub-stages", indent=False)
        self.stages = widgets.Dropdown(description="stage", options=[], layout=widgets.Layout(width="22em"))
        self.picture = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px" if width else "auto"))
        self.caption = widgets.HTML()
        self.panel = widgets.HTML()
        self.progress = widgets.HTML()
        self._syncing = False
        for button, action in ((self.first_button, self.controller.first), (self.back_button, self.controller.back),
                               (self.step_button, self.controller.step), (self.run_button, self.controller.run_to_end)):
            button.on_click(lambda _b, action=action: self._do(action))
        self.substages.observe(lambda change: self._do(lambda: self.controller.set_substages(change["new"])), names="value")
        self.stages.observe(self._on_select, names="value")
        buttons = widgets.HBox([self.first_button, self.back_button, self.step_button, self.run_button])
        view = widgets.HBox([widgets.VBox([self.picture, self.caption]), self.panel])
        super().__init__(children=[buttons, widgets.HBox([self.stages, self.substages]), self.progress, view], **kwargs)
        self.redraw()

    def _do(self, action) -> None:
        if self._syncing:
            return
        try:
            action()
        except InputError as exc:
            self.progress.value = f'<span style="color:#d00">{html.escape(str(exc))}</span>'
            return
        self.redraw()

    def _on_select(self, change) -> None:
        if not self._syncing and change["new"]:
            self._do(lambda: self.controller.select(change["new"]))

    def step(self) -> None:
        self._do(self.controller.step)

    def redraw(self) -> None:
        c = self.controller
        self._syncing = True
        try:
            self.stages.options = [(self._label(name), name) for name in c.names()]
            self.stages.value = c.selected
            self.substages.value = c.substages
        finally:
            self._syncing = False
        self.back_button.disabled = c.index == 0
        self.step_button.disabled = c.at_end or (c.trace.failure is not None and c.index == len(c.names()) - 1)
        self.run_button.disabled = c.trace.done or c.trace.failure is not None
        error = f'<span style="color:#d00">{html.escape(c.error)}</span>' if c.error else ""
        self.progress.value = f"<small>{html.escape(c.progress())}</small>" + (f"<div>{error}</div>" if error else "")
        stage = c.stage()
        if stage is None:
            self.panel.value = "<i>nothing computed</i>"
            return
        shown = c.overlay()
        self.picture.value = widget_picture.png_bytes(widget_picture.render(c.picture_source(), shown))
        self.caption.value = f"<small>{html.escape(shown.what)}</small>" + "".join(
            f"<div><small>{html.escape(note)}</small></div>" for note in shown.notes)
        self.panel.value = stage_html(stage)

    def _label(self, name: str) -> str:
        stage = self.controller.trace[name]
        flag = " ⚠ NaN/Inf" if stage.nonfinite else ""
        return ("    " if name.count(".") == 2 else "") + f"{name}{flag}"
