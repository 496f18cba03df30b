"""`qwen3vl-inspect compare`: run two versions of the vision tower on one image and name the first divergence.

    qwen3vl-inspect compare IMAGE --model A --against B|transformers|FILE.onnx [--dtype-b bfloat16]
                            [--json] [-o error.png] [--rtol R] [--atol A]

Exit codes: 0 every stage equal or within tolerance; 4 a stage diverged, is missing or changed shape;
2 bad input (missing image, unknown model, not an ONNX file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from qwen3vl_inspect.commands.common import image_path, load_encoder, load_inputs
from qwen3vl_inspect.comparison.sides import ONNX, against_kind, build_against
from qwen3vl_inspect.errors import EXIT_DIVERGED, EXIT_OK, InputError
from qwen3vl_inspect.session import DTYPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--against", required=True, metavar="B",
                        help="what to compare with: a checkpoint folder or preset, 'transformers' (its "
                             "Qwen3VLVisionModel on the same weights) or an .onnx file")
    parser.add_argument("--dtype-b", default=None, choices=DTYPES, help="dtype of B (default: --dtype)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("-o", "--output", default=None, help="PNG: the per-patch error over the image")
    parser.add_argument("--stage", default=None, help="stage drawn by -o (default: the first divergence, else merger)")
    parser.add_argument("--rtol", type=float, default=None, help="fixed tolerance atol + rtol·max|a| (default: measured)")
    parser.add_argument("--atol", type=float, default=None, help="see --rtol")
    parser.add_argument("--blocks-only", action="store_true",
                        help="compare only top-level stages (blocks, not their norm/attention/MLP steps): faster")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from qwen3vl_inspect.comparison import compare

    output = _output_path(args.output)
    inputs = load_inputs(args)
    b_dtype = args.dtype_b or args.dtype
    against = against_kind(args.against)
    a = load_encoder(args, err)
    with err.status(f"preparing {args.against} …"):
        b = build_against(args.against, a, b_dtype, args.device)
    with err.status("running both and comparing …"):
        result = compare(a, b, inputs, rtol=args.rtol, atol=args.atol, substages=not args.blocks_only)
    if args.json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        out.print(f"{image_path(args).name}: a = {args.model} ({args.dtype}), b = {args.against} "
                  f"({'file' if against == ONNX else b_dtype})", markup=False, highlight=False)
        out.print(result)
    if output is not None:
        from qwen3vl_inspect.comparison.plots import error_overlay_figure

        if args.stage is not None and args.stage not in [row.name for row in result.stages]:
            raise InputError(f"--stage {args.stage!r} is not a compared stage; try merger, blocks.3 or deepstack.0")
        error_overlay_figure(result, args.stage).savefig(output, bbox_inches="tight")
        err.print(f"wrote {output}", markup=False, highlight=False)
    return EXIT_OK if result.ok else EXIT_DIVERGED


def _output_path(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: -o must name a .png file")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: folder does not exist; create it or choose another -o path")
    return path
