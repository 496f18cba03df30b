"""demo/demo_with_debugging.py runs the seed guide's steps end to end, finds the planted NaN, and stops
at a stage when QWEN3VL_INSPECT_BREAK asks (what the VS Code configuration "Demo: stop at …" does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "demo_with_debugging.py"

MARKER = '''
import sys

def hit(*args, **kwargs):
    frame = sys._getframe(1)
    local = frame.f_locals
    print(f"BREAK {local['name']} {tuple(local['output'].shape)} in {frame.f_code.co_name}", flush=True)
'''


def run_demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, str(DEMO), *args], capture_output=True, text=True, env=environment,
                          cwd=ROOT, timeout=300)


def test_demo_walks_the_guide_and_finds_the_nan(tmp_path):
    (tmp_path / "marker.py").write_text(MARKER)
    result = run_demo("--model", "tiny", "--nan-block", "2", env={
        "QWEN3VL_INSPECT_BREAK": "blocks.1.attn", "PYTHONBREAKPOINT": "marker.hit", "PYTHONPATH": str(tmp_path)})
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for step in ("1 · load", "2 · architecture", "3 · forward hooks", "4 · quick_inspect", "5 · the shape trace",
                 "6 · the Trace", "7 · vision features", "8 · plant a NaN"):
        assert step in out
    assert "pixel_values" in out and "[432, 1536]" in out
    assert "BREAK blocks.1.attn (432, 64) in stop_at_stage" in out
    assert "blocks.2.mlp.linear_fc1" in out and "first stage blocks.2" in out
    assert "weights restored: True" in out and "stage by stage == one forward call: True" in out


def test_demo_reads_the_matplotlib_photo_and_reports_bad_paths():
    import importlib.util

    from qwen3vl_inspect import load_image

    spec = importlib.util.spec_from_file_location("demo_with_debugging", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    photo = demo.image_source("grace_hopper")
    assert photo.name == "grace_hopper.jpg" and load_image(photo).size == (512, 600)
    bad = run_demo(str(ROOT / "no_such_image.png"), "--model", "tiny")
    assert bad.returncode == 2 and "file not found" in bad.stderr and "Traceback" not in bad.stderr
