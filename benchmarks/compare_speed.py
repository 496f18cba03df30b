"""Cost of `compare(a, b)` vs one plain forward of a, same run, at 2304 patches (a 768×768 image).

    python benchmarks/compare_speed.py [--model demo] [--patches 2304] [--repeats 3]

compare runs a and b once each with hooks, judges every stage (45 rows for the demo model; 15 with
substages=False, which records only the top-level stages), and when
the dtypes differ re-runs a at b's dtype (the precision floor). The ratio is given with and without
that floor pass. Target: ≤ 2.2× one forward.

This machine is shared, so each compare is timed right after a forward, and the ratio is given both for
the fastest of each (the least disturbed run) and for the medians.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from _common import image_with_patches
from rich.console import Console
from rich.table import Table

from qwen3vl_inspect import VisionEncoder, compare, preprocess
from qwen3vl_inspect.comparison.transformers_twin import transformers_twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--patches", type=int, default=2304)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    a = VisionEncoder.from_pretrained(args.model)
    inputs = preprocess([image_with_patches(args.patches)])
    twin = transformers_twin(a)
    cases = {  # name: (b, compare keyword arguments)
        "b = copy of a (fp32)": (copy.deepcopy(a), {}),
        "b = transformers (fp32)": (twin, {}),
        "b = transformers, blocks only (substages=False)": (twin, {"substages": False}),
        "b = a in bf16": (copy.deepcopy(a).to(torch.bfloat16), {}),
    }

    def forward() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            a(inputs.pixel_values, inputs.grid_thw)
        return time.perf_counter() - start

    forward()  # warm-up
    table = Table(title=f"compare vs one forward of a: {args.model}, {args.patches} patches, "
                        f"{args.repeats} alternating repeats")
    for column in ("case", "forward s (min / median)", "compare s (min / median)", "ratio of mins",
                   "ratio of medians", "floor pass s (min)", "ratio of mins without floor", "run a / run b / judge s (min)"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, (b, options) in cases.items():
        compare(a, b, inputs, **options)  # warm-up
        forwards, totals, floors, phases = [], [], [], []
        for _ in range(args.repeats):
            forwards.append(forward())
            start = time.perf_counter()
            result = compare(a, b, inputs, **options)
            totals.append(time.perf_counter() - start)
            floors.append(result.seconds.get("precision floor", 0.0))
            phases.append((result.seconds["run a"], result.seconds["run b"], result.seconds["compare"]))
        assert result.ok, result.verdict
        best = min(range(args.repeats), key=lambda i: totals[i])
        fwd, total = min(forwards), totals[best]
        table.add_row(name, f"{fwd:.3f} / {statistics.median(forwards):.3f}",
                      f"{total:.3f} / {statistics.median(totals):.3f}", f"{total / fwd:.2f}×",
                      f"{statistics.median(totals) / statistics.median(forwards):.2f}×", f"{floors[best]:.3f}",
                      f"{(total - floors[best]) / fwd:.2f}×", " / ".join(f"{v:.3f}" for v in phases[best]))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
