"""What `--against B` means, for the command line and the TUI alike: a model, transformers, or an ONNX file.

Checked before anything slow runs (a bad folder or a missing file is one InputError), then built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwen3vl_inspect import session
from qwen3vl_inspect.model.encoder import VisionEncoder

TRANSFORMERS, ONNX, MODEL = "transformers", "onnx", "model"


def against_kind(text: str) -> str:
    """"transformers", "onnx" or "model"; raises InputError for a missing file or unknown model."""
    if text == TRANSFORMERS:
        return TRANSFORMERS
    path = Path(text).expanduser()
    if text.lower().endswith(".onnx") or path.is_file():
        from qwen3vl_inspect.export.onnx_run import require_onnx_file

        require_onnx_file(path)
        return ONNX
    session.check_model(text)  # a bad folder or unknown preset fails before anything runs
    return MODEL


def build_against(text: str, a: VisionEncoder, dtype: str | None, device: str = "cpu") -> Any:
    """The b side: transformers' module on a's weights, an ONNX path, or another encoder."""
    kind = against_kind(text)
    if kind == TRANSFORMERS:
        from qwen3vl_inspect.comparison.transformers_twin import transformers_twin

        return transformers_twin(a, session.parse_dtype(dtype))
    if kind == ONNX:
        return Path(text).expanduser()
    return session.load_encoder(text, dtype, device)
