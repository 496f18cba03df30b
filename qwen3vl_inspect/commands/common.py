"""What every command does first, from its arguments: the image (before the slow model), the encoder,
a Trace run with a progress bar. The work itself is `qwen3vl_inspect.session`'s."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qwen3vl_inspect import session
from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.tracing import StageError, Trace, trace


def image_path(args: argparse.Namespace) -> Path:
    return Path(args.image) if getattr(args, "image", None) else session.demo_image_path()


def load_inputs(args: argparse.Namespace) -> VisionInputs:
    """Read and preprocess the image: fails fast, before the model is built."""
    return session.load_inputs(image_path(args), args.min_pixels, args.max_pixels, args.model)


def load_encoder(args: argparse.Namespace, err: Console) -> VisionEncoder:
    session.parse_device(args.device)
    with err.status(f"loading {args.model} …"):
        return session.load_encoder(args.model, args.dtype, args.device)


def open_trace(args: argparse.Namespace, err: Console) -> Trace:
    """The image, then the encoder, then a lazy Trace: nothing of the run is computed yet."""
    inputs = load_inputs(args)
    return trace(load_encoder(args, err), inputs)


def run_trace(args: argparse.Namespace, err: Console, until: str | None = None) -> Trace:
    """Build and run a Trace with a progress bar on stderr; a failing stage is reported, earlier ones kept."""
    return run_with_progress(open_trace(args, err), err, until)


def run_with_progress(tr: Trace, err: Console, until: str | None = None) -> Trace:
    """Step `tr` (up to `until`, inclusive) with a progress bar on stderr; a failing stage is reported."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("running the encoder", total=len(tr.stage_names))
        try:
            for stage in tr:
                progress.update(task, advance=1, description=f"computed {stage.name}")
                if stage.name == until:
                    break
        except StageError as exc:
            err.print(f"error: {exc} (the {len(tr.stages)} stages before it are kept)", style="bold red",
                      markup=False, soft_wrap=True)
    return tr


def describe_run(tr: Trace, path: Path) -> str:
    return f"{path.name} · {tr.config.source} · {tr.encoder.weights_source} · grid {tr.grid_thw.tolist()}"
