"""Cost of recording a Trace (default keep policy, stats on every stage) vs the plain forward, same run.

    python benchmarks/trace_overhead.py [--patches 432] [--repeats 5]

Target: ≤ 1.10× the plain forward (2B preset, 432 patches, fp32).
"""

from __future__ import annotations

import argparse

import torch
from _common import image_with_patches, interleaved_medians
from rich.console import Console
from rich.table import Table

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

    plain_s, traced_s = interleaved_medians(plain, lambda: trace(encoder, inputs).run(), args.repeats)
    table = Table(title=f"Trace overhead, qwen3-vl-2b preset, {args.patches} patches, fp32 "
                        f"(median of {args.repeats}, interleaved)")
    for column in ("plain forward s", "trace (keep=blocks) s", "ratio"):
        table.add_column(column, justify="right")
    table.add_row(f"{plain_s:.3f}", f"{traced_s:.3f}", f"{traced_s / plain_s:.3f}×")
    Console().print(table)


if __name__ == "__main__":
    main()
