"""What every command does first: load the image (before the slow model), the encoder, run the trace."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.image import VisionInputs, load_image, preprocess
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.tracing import StageError, Trace, trace


def demo_image_path() -> Path:
    return Path(str(resources.files("qwen3vl_inspect") / "assets" / "demo.png"))


def image_path(args: argparse.Namespace) -> Path:
    return Path(args.image) if getattr(args, "image", None) else demo_image_path()


def load_inputs(args: argparse.Namespace) -> VisionInputs:
    """Read and preprocess the image: fails fast, before the model is built."""
    return preprocess([load_image(image_path(args))], min_pixels=args.min_pixels, max_pixels=args.max_pixels)


def parse_device(name: str) -> torch.device:
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name!r} is not a torch device; use cpu, cuda, cuda:1 or mps") from None


def load_encoder(args: argparse.Namespace, err: Console) -> VisionEncoder:
    device = parse_device(args.device)
    with err.status(f"loading {args.model} …"):
        return VisionEncoder.from_pretrained(args.model, dtype=getattr(torch, args.dtype), device=device)


def run_trace(args: argparse.Namespace, err: Console, until: str | None = None) -> Trace:
    """Build and run a Trace with a progress bar on stderr; a failing stage is reported, earlier ones kept."""
    inputs = load_inputs(args)
    encoder = load_encoder(args, err)
    tr = trace(encoder, inputs)
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
