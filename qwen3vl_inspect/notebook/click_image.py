"""An image that reports where it was clicked: ipywidgets 8's `Image` has no click events.

Built on anywidget: its front end ships inside its wheel (a prebuilt JupyterLab/Notebook 7
extension, also understood by VS Code's notebooks), and our part of the front end is the few
lines of ES module below, sent with the widget. Nothing is fetched from a CDN. The click is sent
as a custom message `{"type": "click", "x": fx, "y": fy}` with fractions of the drawn size, so
the Python side maps it to a patch whatever size the browser draws the picture at.
"""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets

_ESM = r"""
function render({ model, el }) {
  const img = document.createElement("img");
  img.className = "qwen3vl-click-image";
  img.style.cursor = "crosshair";
  img.style.maxWidth = "100%";
  img.style.imageRendering = "pixelated";
  img.draggable = false;
  let url = null;
  const draw = () => {
    const value = model.get("value");
    const bytes = value instanceof DataView
      ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : new Uint8Array(value || []);
    const next = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
    img.src = next;
    if (url) URL.revokeObjectURL(url);
    url = next;
    const width = model.get("width");
    img.style.width = width ? `${width}px` : "";
    img.dataset.version = String(model.get("version"));
  };
  img.addEventListener("click", (event) => {
    const box = img.getBoundingClientRect();
    if (!box.width || !box.height) return;
    model.send({
      type: "click",
      x: (event.clientX - box.left) / box.width,
      y: (event.clientY - box.top) / box.height,
    });
  });
  model.on("change:value", draw);
  model.on("change:width", draw);
  draw();
  el.appendChild(img);
  return () => { if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""


class ClickableImage(anywidget.AnyWidget):
    """A PNG (`value`, bytes) drawn at `width` CSS pixels (0: natural size); `on_click(fn)` gets (fx, fy)."""

    _esm = _ESM
    value = traitlets.Bytes(b"").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)  # bumped with every new picture; tests read it from the DOM

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._click_handlers: list[Callable[[float, float], None]] = []
        self.on_msg(self._on_message)

    def show(self, png: bytes) -> None:
        with self.hold_sync():  # picture and version reach the browser in one update
            self.version += 1
            self.value = png

    def on_click(self, handler: Callable[[float, float], None]) -> None:
        self._click_handlers.append(handler)

    def _on_message(self, _widget: object, content: dict, _buffers: list) -> None:
        if not isinstance(content, dict) or content.get("type") != "click":
            return
        x, y = float(content.get("x", 0.0)), float(content.get("y", 0.0))
        for handler in self._click_handlers:
            handler(x, y)
