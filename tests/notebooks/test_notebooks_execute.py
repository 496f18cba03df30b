"""The teaching notebooks run top to bottom (as CI runs them, with nbclient) and are kept without outputs.

They run on `$QWEN3VL_INSPECT_MODEL` when it is set (e.g. `QWEN3VL_INSPECT_MODEL=qwen3-vl-2b` for the
random-weight 2B tower, or a checkpoint folder), else on the embedded default (the small trained `demo` preset):
the notebooks read the model through `qwen3vl_inspect.notebook.default_model()` and are written for any
depth, head count and width.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qwen3vl_inspect.session import DEFAULT_MODEL

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_pipeline_tour", "02_attention_maps", "03_hooks_and_nan_debugging", "04_vision_to_text_fusion"]


def test_the_four_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} hold outputs; clear them before committing"
    assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}, "no widget state or other run metadata"
    assert all(not cell.get("metadata") for cell in notebook["cells"]), "no per-cell run metadata"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel", reason="the notebooks' python3 kernel comes from ipykernel")
    monkeypatch.setenv("QWEN3VL_INSPECT_MODEL", os.environ.get("QWEN3VL_INSPECT_MODEL", DEFAULT_MODEL))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = {key for o in outputs for key in o.get("data", {})}
    assert "text/html" in kinds or "image/png" in kinds, "the notebook showed no tables or pictures"
