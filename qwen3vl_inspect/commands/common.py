"""What every command does first, from its arguments: the image (before the slow model), the encoder,
a Trace run with a progress bar. The work itself is `qwen3vl_inspect.session`'s."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qwen3vl_inspect import breakpoints, session
from qwen3vl_inspect.errors import EXIT_BAD_INPUT, EXIT_FAILED
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.memory_errors import ADVICE, guard, is_out_of_memory, out_of_memory
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.tracing import StageError, Trace, trace


def image_path(args: argparse.Namespace) -> Path:
    return Path(args.image) if getattr(args, "image", None) else session.demo_image_path()


def load_inputs(args: argparse.Namespace) -> VisionInputs:
    """Read and preprocess the image: fails fast, before the model is built."""
    return session.load_inputs(image_path(args), args.min_pixels, args.max_pixels, args.model)


def preflight(args: argparse.Namespace, err: Console) -> None:
    """Checks that cost nothing, before any file is read (the device): every subcommand runs them first."""
    if getattr(args, "device", None) is not None:
        session.parse_device(args.device)


def load_encoder(args: argparse.Namespace, err: Console) -> VisionEncoder:
    session.parse_device(args.device)
    with err.status(f"loading {safe_text(args.model)} …"), guard(f"loading the model {safe_text(args.model)}",
                                                                 ADVICE["load"]):
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
    warning = breakpoints.unmatched_warning(tr.stage_names)
    if warning:  # not an error: the run is still useful, but the user expected it to stop
        err.print(f"warning: {warning}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("running the encoder", total=len(tr.stage_names))
        try:
            for stage in tr:
                progress.update(task, advance=1, description=f"computed {stage.name}")
                if stage.name == until:
                    break
        except StageError as exc:
            err.print(f"error: {stage_failure(exc, len(tr.stages))}",
                      style="bold red", markup=False, highlight=False, soft_wrap=True)
    return tr


def stage_failure(exc: StageError, kept: int | None = None) -> str:
    """The one line for a failed stage (and how many stages before it are kept); running out of memory
    says what to lower."""
    kept_text = "" if kept is None else f" (the {kept} stages before it are kept)"
    if is_out_of_memory(exc):
        return str(out_of_memory(exc.cause, f"computing stage {exc.stage}{kept_text}"))
    return safe_text(exc) + kept_text


def fail_code(tr: Trace) -> int:
    """Exit code of a run whose stage failed: 2 when memory ran out (a size the user can lower), else 1."""
    return EXIT_BAD_INPUT if tr.failure is not None and is_out_of_memory(tr.failure) else EXIT_FAILED


def describe_run(tr: Trace, path: Path) -> str:
    return safe_text(f"{path.name} · {tr.config.source} · {tr.encoder.weights_source} · grid {tr.grid_thw.tolist()}")
