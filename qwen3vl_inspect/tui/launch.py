"""`qwen3vl-inspect [IMAGE]`: check everything a user can get wrong, then start the TUI.

The image is read and preprocessed and the model argument checked (a preset name, or a folder
whose config.json and safetensors headers are read, no weights) before the App starts, so a
mistake is one line on stderr and exit code 2, not a broken screen. The model itself is built in
a worker once the UI is up. Without a terminal (piped, redirected) the text walk-through of the
`trace` command is printed instead (by `cli`, which never starts the App then).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import warnings
from pathlib import Path

from rich.console import Console

from qwen3vl_inspect.formatting import safe_text


def build_app(args: argparse.Namespace, show_timings: bool = True, out_dir: Path | None = None,
              colors: str | None = None):
    """Validate the arguments and return the (not yet running) App; raises InputError on a user mistake."""
    from qwen3vl_inspect import session

    image = Path(args.image) if args.image else session.demo_image_path()
    with warnings.catch_warnings(record=True) as caught:  # e.g. "animated GIF: using frame 0": shown in the UI
        warnings.simplefilter("always")
        inputs = session.load_inputs(image, args.min_pixels, args.max_pixels, args.model)
    config = session.check_model(args.model)
    session.parse_device(args.device)
    against = getattr(args, "against", None)
    if against is not None:
        from qwen3vl_inspect.comparison.sides import against_kind

        against_kind(against)  # a missing file or unknown model: one line, before the App starts
    from qwen3vl_inspect.tui.app import InspectApp
    from qwen3vl_inspect.tui.controller import Inspector

    inspector = Inspector(image, inputs, config, args.model, args.device, args.dtype,
                          step=getattr(args, "step", False), out_dir=out_dir, text=getattr(args, "text", None),
                          against=against, dtype_b=getattr(args, "dtype_b", None))
    inspector.notes += [("warning", safe_text(str(w.message))) for w in caught]
    return InspectApp(inspector, show_timings=show_timings, colors=colors)


def _leave_now(code: int) -> None:
    """Exit without waiting for a torch call still running in a daemon thread (a model build, a block)."""
    if any(t.name == "qwen3vl-inspect-call" and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run(args: argparse.Namespace, err: Console) -> int:
    app = build_app(args)
    result = app.run()
    code = app.return_code or 0
    if code == 2 and result:
        err.print(f"error: {safe_text(result)}", style="bold red", highlight=False, soft_wrap=True, markup=False)
    _leave_now(code)
    return code
