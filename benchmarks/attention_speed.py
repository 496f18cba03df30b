"""Time of one attention map on demand: Trace.attention(layer, head), 2B preset, 2304 patches.

    python benchmarks/attention_speed.py [--patches 2304] [--repeats 7]

Target: ≤ 100 ms per (layer, head) map on this machine. Also times the full-heads map and, for
scale, transformers' whole-block forward on the same weights (which computes but discards it).
"""

from __future__ import annotations

import argparse

import torch
from _common import image_with_patches, median_seconds
from rich.console import Console
from rich.table import Table

from qwen3vl_inspect import VisionEncoder, preprocess
from qwen3vl_inspect.tracing import trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=2304)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layer", type=int, default=12)
    args = parser.parse_args()
    console = Console()
    encoder = VisionEncoder.from_pretrained("qwen3-vl-2b")
    tr = trace(encoder, preprocess([image_with_patches(args.patches)]))
    with console.status("running the trace to the chosen block …"):
        tr.run_to(f"blocks.{args.layer}")

    def one_head() -> None:
        tr._attention_cache.clear()
        tr.attention(args.layer, head=3)

    def all_heads() -> None:
        tr._attention_cache.clear()
        tr.attention(args.layer)

    block = encoder.blocks[args.layer]
    hidden = tr.block_input(args.layer)
    with torch.inference_mode():
        block_forward = median_seconds(lambda: block(hidden, tr._positions.cu_seqlens, tr._rotary), args.repeats)
    rows = [("one (layer, head) map", median_seconds(one_head, args.repeats)),
            (f"all {encoder.config.num_heads} heads of a layer", median_seconds(all_heads, max(3, args.repeats // 2))),
            ("for scale: one block's forward (SDPA)", block_forward)]
    table = Table(title=f"Attention on demand, qwen3-vl-2b preset, {args.patches} patches, fp32, block {args.layer}")
    table.add_column("request")
    table.add_column("median ms", justify="right")
    for name, seconds in rows:
        table.add_row(name, f"{seconds * 1000:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
