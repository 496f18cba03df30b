"""Memory a full Trace keeps above the weights: 2B preset, 2304 patches, fp32, default keep policy.

    python benchmarks/trace_memory.py [--patches 2304]

Target: ≤ 1 GB above the weights. Prints peak and retained RSS growth for a plain forward and for
the trace, measured in this process with /proc (peak reset before each).
"""

from __future__ import annotations

import argparse
import gc

import torch
from _common import image_with_patches, reset_peak_rss, rss_bytes
from rich.console import Console
from rich.table import Table

from qwen3vl_inspect import VisionEncoder, preprocess
from qwen3vl_inspect.tracing import trace

MB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=2304)
    args = parser.parse_args()
    encoder = VisionEncoder.from_pretrained("qwen3-vl-2b")
    weights = sum(p.numel() * p.element_size() for p in encoder.parameters())
    inputs = preprocess([image_with_patches(args.patches)])
    with torch.inference_mode():
        encoder(inputs.pixel_values, inputs.grid_thw)  # warm-up: allocator pools, kernels
    gc.collect()
    table = Table(title=f"RSS above the weights ({weights / MB:.0f} MiB), qwen3-vl-2b, {args.patches} patches, fp32")
    for column in ("run", "peak growth MiB", "retained MiB", "estimate MiB"):
        table.add_column(column, justify="right")

    base = rss_bytes()
    reset_peak_rss()
    with torch.inference_mode():
        out = encoder(inputs.pixel_values, inputs.grid_thw)
    table.add_row("plain forward", f"{(rss_bytes('VmHWM') - base) / MB:.0f}", f"{(rss_bytes() - base) / MB:.0f}", "")
    del out
    gc.collect()

    base = rss_bytes()
    reset_peak_rss()
    tr = trace(encoder, inputs).run()
    table.add_row("full trace (keep=blocks)", f"{(rss_bytes('VmHWM') - base) / MB:.0f}",
                  f"{(rss_bytes() - base) / MB:.0f}", f"{tr.estimated_bytes() / MB:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
