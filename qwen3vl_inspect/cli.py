"""`qwen3vl-inspect`: the command line.

    qwen3vl-inspect [IMAGE]                 the stage-by-stage shape walk-through (default: the demo image)
    qwen3vl-inspect shapes [IMAGE] [...]    the same, explicitly
    qwen3vl-inspect info [--model ...]      architecture, parameter count, where the weights come from

A user mistake is one line on stderr and exit code 2; nothing else prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qwen3vl_inspect.errors import InputError

DEFAULT_MODEL = "qwen3-vl-2b"
DTYPES = ("float32", "bfloat16", "float16")
COMMANDS = ("shapes", "info")


def demo_image_path() -> Path:
    return Path(str(resources.files("qwen3vl_inspect") / "assets" / "demo.png"))


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"checkpoint folder or preset (default {DEFAULT_MODEL}, random weights)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="image file (default: the embedded demo image)")
    parser.add_argument("--min-pixels", type=int, default=None, help="lower bound on resized pixels (default 65536)")
    parser.add_argument("--max-pixels", type=int, default=None, help="upper bound on resized pixels (default 16777216)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwen3vl-inspect", description="Look inside the Qwen3-VL vision encoder.")
    commands = parser.add_subparsers(dest="command", required=True)
    shapes = commands.add_parser("shapes", help="run the encoder stage by stage and print every shape")
    _image_options(shapes)
    _model_options(shapes)
    info = commands.add_parser("info", help="architecture and parameter counts")
    _model_options(info)
    return parser


def load_encoder(args: argparse.Namespace, console: Console):
    import torch

    from qwen3vl_inspect.model.encoder import VisionEncoder

    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise InputError(f"--device {args.device!r} is not a torch device; use cpu, cuda, cuda:1, mps") from None
    with console.status(f"loading {args.model} …"):
        return VisionEncoder.from_pretrained(args.model, dtype=getattr(torch, args.dtype), device=device)


def run_shapes(args: argparse.Namespace, out: Console, err: Console) -> int:
    from qwen3vl_inspect.inputs.image import load_image, preprocess
    from qwen3vl_inspect.stage_shapes import stage_shapes

    image_path = Path(args.image) if args.image else demo_image_path()
    image = load_image(image_path)  # fails before the (slow) model load
    encoder = load_encoder(args, err)
    inputs = preprocess([image], min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    with err.status("running the encoder …") as status:
        rows = stage_shapes(encoder, inputs, on_stage=lambda name: status.update(f"computed {name}"))
    table = Table(title=f"{image_path.name} through the vision encoder — {encoder.config.source}, {encoder.weights_source}")
    for column in ("stage", "input", "output", "dtype", "ms"):
        table.add_column(column, justify="right" if column == "ms" else "left", no_wrap=True)
    table.add_column("note")
    for row in rows:
        table.add_row(row.name, row.inputs, row.output, row.dtype, f"{row.seconds * 1000:.0f}", row.note)
    out.print(table)
    return 0


def run_info(args: argparse.Namespace, out: Console, err: Console) -> int:
    encoder = load_encoder(args, err)
    config = encoder.config
    table = Table(title=f"Vision encoder: {config.source}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("weights", encoder.weights_source)
    for name in ("depth", "hidden_size", "num_heads", "head_dim", "intermediate_size", "hidden_act", "patch_size",
                 "temporal_patch_size", "spatial_merge_size", "out_hidden_size", "num_position_embeddings",
                 "deepstack_visual_indexes", "rope_theta"):
        table.add_row(name, str(getattr(config, name)))
    total = sum(p.numel() for p in encoder.parameters())
    table.add_row("parameters", f"{total:,}")
    table.add_row("dtype / device", f"{next(encoder.parameters()).dtype} / {next(encoder.parameters()).device}")
    out.print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "shapes")  # `qwen3vl-inspect IMAGE`: the walk-through
    args = build_parser().parse_args(argv)
    out, err = Console(), Console(stderr=True)
    try:
        return {"shapes": run_shapes, "info": run_info}[args.command](args, out, err)
    except InputError as exc:
        err.print(f"error: {exc}", style="bold red", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
