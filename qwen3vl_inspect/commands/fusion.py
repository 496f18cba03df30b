"""`qwen3vl-inspect fusion`: how the image's merged tokens enter the language model.

The token sequence (each image's pads collapsed into one run with its count), the MRoPE position
table, the rotary frequency split and the DeepStack plan; `--json` gives the same as data, and
`--decoder` runs the checkpoint's first text layers to measure each DeepStack addition.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from qwen3vl_inspect.commands.common import fail_code, image_path, run_trace
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.memory_errors import guard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qwen3vl_inspect.fusion.fuse import DEFAULT_TEXT

    parser.add_argument("--text", default=DEFAULT_TEXT, help=f"the user's text after the image (default {DEFAULT_TEXT!r})")
    parser.add_argument("--json", action="store_true", help="print the fusion as JSON")
    parser.add_argument("--decoder", action="store_true",
                        help="run the checkpoint's first text layers (transformers) to measure the DeepStack additions")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from qwen3vl_inspect.fusion import fuse_trace

    if args.decoder and not Path(args.model).expanduser().is_dir():
        raise InputError(f"--decoder needs --model to be a checkpoint folder with the language model, not "
                         f"'{safe_text(args.model)}'")
    tr = run_trace(args, err)
    if tr.failure is not None:
        return fail_code(tr)
    with err.status("fusing …"), guard("fusing the image tokens into the text"):
        result = fuse_trace(tr, text=args.text, checkpoint=args.model)
        if args.decoder:
            from qwen3vl_inspect.fusion.decoder import measure_injections

            result = measure_injections(result)
    if args.json:
        data = result.to_dict()
        data["image"] = str(image_path(args))
        out.print(json.dumps(data), markup=False, highlight=False, soft_wrap=True)  # compact: input_ids are long
    else:
        out.print(safe_text(f"{image_path(args).name} · {tr.encoder.weights_source}"), markup=False, highlight=False)
        out.print(result)
    return 0
