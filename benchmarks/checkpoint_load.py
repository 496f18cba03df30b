"""What reading weights into owned memory costs against zero-copy mmap views: qwen3-vl-2b-sized tower.

    python benchmarks/checkpoint_load.py [--dtype bfloat16]

Each mode runs in a fresh subprocess (cold allocator, own peak RSS): "views" is the old zero-copy
load (tensors stay views of the mmap: a shard truncated later kills the process with SIGBUS),
"read" is `load_vision_state_dict` as it is now (plain reads into owned memory). Both touch every weight once after loading,
so the
lazy page-ins of the zero-copy path are counted too. The file is in the page cache for both (a warm-up
read first), so this compares memory copies, not disk speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

MB = 2**20
ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, time
from pathlib import Path
import torch
from safetensors import safe_open
sys.path.insert(0, sys.argv[3])
from _common import reset_peak_rss, rss_bytes
from qwen3vl_inspect.model.checkpoint import load_vision_state_dict

folder, mode = Path(sys.argv[1]), sys.argv[2]
(folder / "model.safetensors").read_bytes()  # page cache warm for both modes
base = rss_bytes()
reset_peak_rss()
start = time.perf_counter()
if mode == "views":
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        state = {k: handle.get_tensor(k) for k in handle.keys()}
else:
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        shapes = {k: handle.get_slice(k).get_shape() for k in handle.keys()}
    state = load_vision_state_dict(folder, shapes)
loaded = time.perf_counter() - start
checksum = sum(float(t.float().sum()) for t in state.values())  # touch every weight
touched = time.perf_counter() - start
print(json.dumps({"load_s": loaded, "load_touch_s": touched, "peak": max(rss_bytes("VmHWM"), rss_bytes()) - base,
                  "retained": rss_bytes() - base, "checksum": checksum}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from qwen3vl_inspect import VisionEncoder

    with tempfile.TemporaryDirectory() as tmp:
        encoder = VisionEncoder.from_pretrained("qwen3-vl-2b", dtype=getattr(torch, args.dtype))
        folder = encoder.save_pretrained(Path(tmp) / "ck")
        size = (folder / "model.safetensors").stat().st_size
        del encoder
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        table = Table(title=f"Loading a qwen3-vl-2b vision tower ({size / MB:.0f} MiB, {args.dtype}), best of {args.repeats}")
        for column in ("mode", "load s", "load + touch all s", "peak RSS growth MiB", "retained MiB"):
            table.add_column(column, justify="right")
        results = {}
        for mode in ("views", "read"):
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, "-c", PROBE, str(folder), mode, str(ROOT / "benchmarks")],
                                     capture_output=True, text=True, env=env, check=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            best = min(runs, key=lambda r: r["load_touch_s"])
            results[mode] = best
            table.add_row(mode, f"{best['load_s']:.2f}", f"{best['load_touch_s']:.2f}",
                          f"{best['peak'] / MB:.0f}", f"{best['retained'] / MB:.0f}")
        assert results["views"]["checksum"] == results["read"]["checksum"]
    Console().print(table)
    ratio = results["read"]["load_touch_s"] / results["views"]["load_touch_s"]
    Console().print(f"read / views, load + touch: {ratio:.2f}x")


if __name__ == "__main__":
    main()
