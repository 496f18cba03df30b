"""ONNX export: export time, file size, and onnxruntime (CPU) vs our encoder on the same weights, same run.

    python benchmarks/onnx_speed.py [--preset demo] [--patches 432 2304] [--repeats 5] [--intermediates]

Prints the median wall time of each and the ratio (onnxruntime / ours; < 1 means onnxruntime is faster),
with the max abs difference of the pooled output and of every DeepStack output.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from _common import image_with_patches, interleaved_medians
from rich.console import Console
from rich.table import Table

from qwen3vl_inspect import VisionEncoder, preprocess
from qwen3vl_inspect.export.onnx_export import export_onnx
from qwen3vl_inspect.export.onnx_run import onnx_stage_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", help="demo (shipped weights) or a random-weight preset such as qwen3-vl-2b")
    parser.add_argument("--patches", type=int, nargs="+", default=[432, 2304], choices=[432, 1024, 2304])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--intermediates", action="store_true", help="export every block's output too")
    args = parser.parse_args()

    console = Console()
    encoder = VisionEncoder.from_pretrained(args.preset)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{args.preset}.onnx"
        started = time.perf_counter()
        export_onnx(encoder, path, intermediates=args.intermediates)
        export_seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in path.parent.iterdir())
        console.print(f"export {args.preset} (intermediates {args.intermediates}): {export_seconds:.1f} s, "
                      f"{size / 2**20:.1f} MiB on disk")
        table = Table(title=f"{args.preset}: onnxruntime CPU vs qwen3vl_inspect (median of {args.repeats})")
        for column in ("patches", "ours s", "onnxruntime s", "ratio", "max |diff| merger", "max |diff| deepstack"):
            table.add_column(column, justify="right")
        for patches in args.patches:
            inputs = preprocess([image_with_patches(patches)], min_pixels=256, max_pixels=patches * 256)
            assert inputs.num_patches == patches, inputs.grid_thw
            with torch.inference_mode():
                t_ours, t_onnx = interleaved_medians(lambda i=inputs: encoder(i.pixel_values, i.grid_thw),
                                                     lambda i=inputs: onnx_stage_outputs(path, i), args.repeats)
                ours = encoder(inputs.pixel_values, inputs.grid_thw)
            theirs = onnx_stage_outputs(path, inputs)
            merger = float((theirs["merger"] - ours.pooler_output).abs().max())
            deepstack = max(float((theirs[f"deepstack.{k}"] - f).abs().max()) for k, f in enumerate(ours.deepstack_features))
            table.add_row(str(patches), f"{t_ours:.3f}", f"{t_onnx:.3f}", f"{t_onnx / t_ours:.2f}×", f"{merger:.1e}",
                          f"{deepstack:.1e}")
        console.print(table)
    console.print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
                  f"{platform.python_implementation()} {platform.python_version()}")


if __name__ == "__main__":
    main()
