"""Cost of recording a Trace (default keep policy, stats on every stage) vs the plain forward, same run.

    python benchmarks/trace_overhead.py [--patches 432] [--repeats 5]

Target: ≤ 1.10× the plain forward (2B preset, 432 patches, fp32).
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from _common import image_with_patches, median_seconds
from qwen3vl_inspect import VisionEncoder, preprocess
from qwen3vl_inspect.tracing import trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=432)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    encoder = VisionEncoder.from_pretrained("qwen3-vl-2b")
    inputs = preprocess([image_with_patches(args.patches)])

    def plain() -> None:
        with torch.inference_mode():
            encoder(inputs.pixel_values, inputs.grid_thw)

    plain_s = median_seconds(plain, args.repeats)
    traced_s = median_seconds(lambda: trace(encoder, inputs).run(), args.repeats)
    plain_again = median_seconds(plain, args.repeats, warmup=0)  # interleave to expose drift
    table = Table(title=f"Trace overhead, qwen3-vl-2b preset, {args.patches} patches, fp32 (median of {args.repeats})")
    for column in ("plain forward s", "trace (keep=blocks) s", "ratio"):
        table.add_column(column, justify="right")
    reference = min(plain_s, plain_again)
    table.add_row(f"{plain_s:.3f} / {plain_again:.3f}", f"{traced_s:.3f}", f"{traced_s / reference:.3f}×")
    Console().print(table)


if __name__ == "__main__":
    main()
