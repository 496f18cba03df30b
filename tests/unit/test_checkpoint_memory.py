"""Loading the vision tower must not page in the language model.

tracemalloc can't see torch's allocations, so each load runs in a fresh subprocess that reports its
resident-set growth from /proc/self/status (peak via VmHWM after resetting it through clear_refs).
A control run that reads the whole file proves the measurement would catch a full read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

MB = 2**20
LM_NAME = "model.language_model.embed_tokens.weight"
LM_SHAPE = (50_000, 1_048)  # ~200 MB of float32
VISION_SHAPES = {f"model.visual.blocks.{i}.mlp.linear_fc1.weight": (512, 512) for i in range(20)}  # 20 MB

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read RSS")

PROBE = r"""
import gc, json, sys
from pathlib import Path
import torch, safetensors.torch
from qwen3vl_inspect.model.checkpoint import load_vision_state_dict

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

folder, mode, expected = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
gc.collect()
try:  # reset the peak so VmHWM measures the load alone
    Path("/proc/self/clear_refs").write_text("5")
    peak_reset = True
except OSError:
    peak_reset = False
base = status("VmRSS")
if mode == "read-all":  # the control: what a whole-file read costs
    blob = (folder / "model.safetensors").read_bytes()
    tensors = {k: v for k, v in safetensors.torch.load(blob).items() if k.startswith("model.visual.")}
else:
    tensors = load_vision_state_dict(folder, expected, dtype=torch.bfloat16 if mode == "cast" else None)
checksum = sum(float(t.float().sum()) for t in tensors.values())  # touch every byte that was loaded
rss = status("VmRSS")
peak = status("VmHWM") if peak_reset else rss
print(json.dumps({"growth": max(peak, rss) - base, "tensors": len(tensors), "checksum": checksum}))
"""


def _write_checkpoint(folder: Path) -> int:
    """A model.safetensors with a ~200 MB LM tensor (sparse on disk) before ~20 MB of vision; returns vision bytes."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    header: dict[str, dict] = {}
    offset = 0
    for name, shape in [(LM_NAME, LM_SHAPE), *VISION_SHAPES.items()]:
        size = shape[0] * shape[1] * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    lm_bytes = LM_SHAPE[0] * LM_SHAPE[1] * 4
    generator = torch.Generator().manual_seed(0)
    with open(folder / "model.safetensors", "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        handle.seek(lm_bytes, os.SEEK_CUR)  # a hole: cheap to write, still 200 MB for anyone who reads it
        for shape in VISION_SHAPES.values():
            handle.write(torch.randn(shape, generator=generator).numpy().tobytes())
    return offset - lm_bytes


def _measure(folder: Path, mode: str) -> dict:
    expected = json.dumps({name.removeprefix("model.visual."): shape for name, shape in VISION_SHAPES.items()})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), mode, expected], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensors"] == len(VISION_SHAPES)
    return report


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    folder = tmp_path_factory.mktemp("memory") / "ck"
    return folder, _write_checkpoint(folder)


def test_control_whole_file_read_is_detected(checkpoint: tuple[Path, int]) -> None:
    folder, _vision = checkpoint
    growth = _measure(folder, "read-all")["growth"]
    print(f"read-all control: RSS growth {growth / MB:.0f} MB")
    assert growth > 0.9 * LM_SHAPE[0] * LM_SHAPE[1] * 4, f"measurement blind to a full read: +{growth / MB:.0f} MB"


@pytest.mark.parametrize("mode", ["keep", "cast"])
def test_vision_load_stays_near_vision_size(checkpoint: tuple[Path, int], mode: str) -> None:
    folder, vision = checkpoint
    report = _measure(folder, mode)
    growth = report["growth"]
    slack = 6 * MB  # allocator arenas, Python objects, one source tensor being cast
    print(f"{mode}: RSS growth {growth / MB:.1f} MB for {vision / MB:.0f} MB of vision weights ({growth / vision:.2f}x)")
    assert growth < 1.3 * vision + slack, f"+{growth / MB:.0f} MB for {vision / MB:.0f} MB of vision weights"
    assert growth < LM_SHAPE[0] * LM_SHAPE[1] * 4 / 5
