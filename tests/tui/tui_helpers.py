"""Helpers of the TUI tests: an App on the embedded demo image with the `tiny` preset, and a
way to wait (by polling the app's own state, never by timing) until the encoder or a view is ready."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def tui_args(image: str | None = None, model: str = "tiny", step: bool = False, **extra) -> argparse.Namespace:
    values = dict(image=image, model=model, device="cpu", dtype="float32", min_pixels=None, max_pixels=None, step=step)
    values.update(extra)
    return argparse.Namespace(**values)


async def until(pilot, condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds; fail with `what` if it never does."""
    steps = int(timeout / 0.02)
    for _ in range(steps):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def view_ready(app) -> bool:
    """The picture on screen is the one the current selection asks for."""
    from qwen3vl_inspect.tui.widgets.image_view import ImageView

    ins = app.inspector
    spec = ins.view_spec()
    image = app.screen.query_one(ImageView)
    return image.overlay is not None and image.overlay.spec == spec and bool(image._strips)


async def run_done(pilot) -> None:
    """The encoder has run and its output is fused into the text sequence (the list's last entry)."""
    await until(pilot, lambda: pilot.app.inspector.finished, what="the encoder run and the fusion to finish")


DEBUGGER_CALLS: list[str] = []


def debugger_called(*args, **kwargs) -> None:
    """A PYTHONBREAKPOINT hook that records the call: the TUI must never reach the debugger."""
    import sys

    DEBUGGER_CALLS.append(sys._getframe(1).f_locals.get("name", "?"))
