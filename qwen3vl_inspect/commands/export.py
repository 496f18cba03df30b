"""`qwen3vl-inspect export`: write the encoder as ONNX and verify it; `--check` a file for missing outputs.

    qwen3vl-inspect export OUT.onnx [--model X] [--dtype float32] [--opset N] [--no-intermediates]
    qwen3vl-inspect export --check FILE.onnx

Writing verifies the file on the demo image against our encoder (every output's max abs error).
Exit codes: 0 done / complete; 1 the export differs from the encoder, or `--check` cannot tell;
2 bad input (missing folder, not an ONNX file); 4 `--check` found pooled or DeepStack outputs missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from qwen3vl_inspect.commands.output_path import check_output, write_failed
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.memory_errors import ADVICE, guard

EXPORT_DTYPES = ("float32", "float16")  # onnxruntime's CPU provider has no bfloat16 Gemm, so bf16 can't be verified
# Allowed max abs error: ATOL + RTOL · max|reference| (fp32 should agree to ~1e-6 on these sizes).
TOLERANCE = {"float32": (1e-4, 1e-5), "float16": (5e-2, 1e-2)}


def add_parser(commands: argparse._SubParsersAction) -> None:
    from qwen3vl_inspect.export.onnx_export import DEFAULT_OPSET

    parser = commands.add_parser("export", help="write the encoder as ONNX (pooled + every DeepStack output), "
                                                "or --check an ONNX file for missing outputs")
    parser.add_argument("path", help="the .onnx file to write (or, with --check, to read)")
    parser.add_argument("--check", action="store_true", help="only check PATH: exit 4 if DeepStack/pooled outputs are missing")
    from qwen3vl_inspect.session import DEFAULT_MODEL, MODEL_HELP

    parser.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    parser.add_argument("--dtype", default="float32", choices=EXPORT_DTYPES)
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--no-intermediates", action="store_true",
                        help="only merger + DeepStack outputs (default also patch_embed, pos_embed, rotary, blocks.i)")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.check:
        from qwen3vl_inspect.export.onnx_check import check_onnx

        report = check_onnx(args.path)
        out.print(report)
        return report.exit_code
    path = check_output(args.path, (".onnx",), flag="export")
    from qwen3vl_inspect.inputs.image import load_image, preprocess
    from qwen3vl_inspect.model.encoder import VisionEncoder
    from qwen3vl_inspect.session import demo_image_path

    _require_extra()
    inputs = preprocess([load_image(demo_image_path())])
    with err.status(f"loading {safe_text(args.model)} …"), guard(f"loading the model {safe_text(args.model)}",
                                                                 ADVICE["load"]):
        encoder = VisionEncoder.from_pretrained(args.model, dtype=getattr(torch, args.dtype), device="cpu")
    from qwen3vl_inspect.export.onnx_export import export_onnx

    with err.status(f"exporting to {safe_text(path)} (opset {args.opset}) …"), \
            guard("exporting to ONNX", ADVICE["load"]):
        started = time.perf_counter()
        try:
            export_onnx(encoder, path, opset=args.opset, intermediates=not args.no_intermediates)
        except OSError as exc:
            raise write_failed(path, exc, "the ONNX graph") from None
        seconds = time.perf_counter() - started
    data = path.with_name(path.name + ".data")  # weights over 2 GB go beside the file
    size = path.stat().st_size + (data.stat().st_size if data.is_file() else 0)
    out.print(f"wrote {safe_text(path)} ({size / 2**20:.1f} MiB) in {seconds:.1f} s · "
              f"{safe_text(encoder.config.source)} · "
              f"{safe_text(encoder.weights_source)}", markup=False, highlight=False)
    with err.status("verifying on the demo image …"):
        table, ok = verify(encoder, path, inputs, args.dtype)
    out.print(table)
    if not ok:
        err.print(f"error: {safe_text(path)} differs from the encoder beyond the tolerance (see the table)",
                  style="bold red",
                  markup=False)
        return 1
    return 0


def verify(encoder, path: Path, inputs, dtype: str) -> tuple[Table, bool]:
    """Run the file with onnxruntime and the encoder (a Trace) on `inputs`; max abs error per output."""
    from qwen3vl_inspect.export.onnx_run import onnx_stage_outputs
    from qwen3vl_inspect.tracing import trace

    started = time.perf_counter()
    outputs = onnx_stage_outputs(path, inputs)
    onnx_seconds = time.perf_counter() - started
    tr = trace(encoder, inputs).run()
    atol, rtol = TOLERANCE[dtype]
    grid = inputs.grid_thw.tolist()
    table = Table(title=f"onnxruntime vs our encoder, demo image {grid}", title_justify="left",
                  caption=f"onnxruntime run: {onnx_seconds:.2f} s", caption_justify="left")
    for column in ("output", "shape", "max |ref|", "max abs error", "allowed", ""):
        table.add_column(column, justify="left" if column in ("output", "shape", "") else "right")
    ok = True
    for name, value in outputs.items():
        reference = tr.tensor(name).float()
        error = float((value - reference).abs().max())
        scale = float(reference.abs().max())
        allowed = atol + rtol * scale
        ok &= error <= allowed
        table.add_row(name, str(list(value.shape)), f"{scale:.3g}", f"{error:.2e}", f"{allowed:.1e}",
                      "ok" if error <= allowed else "[bold red]DIFFERS[/]")
    return table, ok


def _require_extra() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"export needs {', '.join(missing)}; install the extra: pip install 'qwen3vl_inspect[onnx]'")
