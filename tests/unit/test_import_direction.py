"""`import qwen3vl_inspect` must stay light: no transformers, textual, ipywidgets or onnx."""

import subprocess
import sys

HEAVY = ("transformers", "textual", "ipywidgets", "onnx", "onnxruntime", "onnxscript")


def test_import_does_not_pull_heavy_frameworks():
    code = (
        "import sys, qwen3vl_inspect\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"import qwen3vl_inspect loaded: {result.stdout.strip()}"


def test_core_packages_do_not_import_views():
    """model/, inputs/ and probe/ import neither the trace nor any view package."""
    from pathlib import Path

    import qwen3vl_inspect

    root = Path(qwen3vl_inspect.__file__).parent
    forbidden = ("qwen3vl_inspect.tracing", "qwen3vl_inspect.attention", "qwen3vl_inspect.tui", "qwen3vl_inspect.notebook", "textual", "ipywidgets")
    offenders = []
    for package in ("model", "inputs", "probe"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text()
            offenders += [f"{path.name}: {name}" for name in forbidden if f"import {name}" in text or f"from {name}" in text]
    assert offenders == []
