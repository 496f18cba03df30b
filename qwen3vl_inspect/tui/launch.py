"""`qwen3vl-inspect [IMAGE]`: check everything a user can get wrong, then start the TUI.

The image is read and preprocessed and the model argument checked (a preset name, or a folder
whose config.json and safetensors headers are read, no weights) before the App starts, so a
mistake is one line on stderr and exit code 2, not a broken screen. The model itself is built in
a worker once the UI is up. Without a terminal (piped, redirected) the text walk-through of the
`trace` command is printed instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from rich.console import Console

from qwen3vl_inspect.config import VisionConfig, checkpoint_folder, is_preset_name, unknown_model


def check_model(model: str) -> VisionConfig:
    """The vision config of a preset or checkpoint folder, reading headers only: fails fast on a bad path."""
    path = Path(model).expanduser()
    if path.exists() and not (is_preset_name(model) and checkpoint_folder(model) is None):
        if not path.is_dir():
            raise unknown_model(model)
        from qwen3vl_inspect.model.checkpoint import describe_checkpoint

        config = VisionConfig.from_json(path / "config.json")
        describe_checkpoint(path)  # index, shard headers, key layout: a broken download fails here
        return config
    if is_preset_name(model):
        return VisionConfig.preset(model)
    raise unknown_model(model)


def check_device(device: str) -> None:
    from qwen3vl_inspect.commands.common import parse_device

    parse_device(device)


def build_app(args: argparse.Namespace, show_timings: bool = True, out_dir: Path | None = None,
              colors: str | None = None):
    """Validate the arguments and return the (not yet running) App; raises InputError on a user mistake."""
    from qwen3vl_inspect.commands.common import image_path, load_inputs

    inputs = load_inputs(args)
    config = check_model(args.model)
    check_device(args.device)
    from qwen3vl_inspect.tui.app import InspectApp
    from qwen3vl_inspect.tui.controller import Inspector

    inspector = Inspector(image_path(args), inputs, config, args.model, args.device, args.dtype,
                          step=getattr(args, "step", False), out_dir=out_dir, text=getattr(args, "text", None))
    return InspectApp(inspector, show_timings=show_timings, colors=colors)


def _leave_now(code: int) -> None:
    """Exit without waiting for a torch call still running in a daemon thread (a model build, a block)."""
    if any(t.name == "qwen3vl-inspect-call" and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        from qwen3vl_inspect.commands import trace

        err.print("(not a terminal: printing the stage table; run in a terminal for the interactive view)",
                  style="dim", markup=False, highlight=False)
        args.json = getattr(args, "json", False)
        args.substages = getattr(args, "substages", False)
        return trace.run(args, out, err)
    app = build_app(args)
    result = app.run()
    code = app.return_code or 0
    if code == 2 and result:
        err.print(f"error: {result}", style="bold red", highlight=False, soft_wrap=True, markup=False)
    _leave_now(code)
    return code
