"""Run an exported ONNX file with onnxruntime (CPU) and read its outputs by canonical stage name.

    outputs = onnx_stage_outputs("vision.onnx", preprocess([image]))   # {"merger": …, "deepstack.0": …, "blocks.3": …}

The grid-dependent inputs (position taps, rotary ids, segment ids) are computed from
`inputs.grid_thw` by the same position code the encoder uses, with the config stored in the file's
metadata at export, so the file is all a caller needs. Output names are already canonical
Trace stage names (`merger`, `deepstack.k`, `blocks.i`, …), so the dict compares 1:1 with a Trace.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.export.graph import INPUT_NAMES, graph_inputs
from qwen3vl_inspect.export.onnx_export import config_from_metadata
from qwen3vl_inspect.inputs.image import VisionInputs


def require_onnx_file(path: str | Path) -> Path:
    """The path, or one clear InputError if it is missing or a folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; give the path of an .onnx file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the path of an .onnx file")
    return path


def open_session(path: str | Path) -> Any:
    """An onnxruntime CPU session for `path` (cached while the file is unchanged)."""
    path = require_onnx_file(path)
    stat = path.stat()
    return _session(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _session(path: str, _mtime: int, _size: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("onnxruntime is not installed; install the extra: pip install 'qwen3vl_inspect[onnx]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no optimizer chatter on stderr
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, …)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not an ONNX model onnxruntime can load ({reason})") from None


def session_metadata(session: Any) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def onnx_output_names(path: str | Path) -> list[str]:
    """The file's output names in graph order (canonical stage names for our exports)."""
    return [output.name for output in open_session(path).get_outputs()]


def onnx_stage_outputs(path: str | Path, inputs: VisionInputs, config: VisionConfig | None = None) -> dict[str, torch.Tensor]:
    """Run the ONNX file on `inputs`; every output as a float32 CPU tensor, keyed by its stage name.

    `config` defaults to the one stored in the file; a file without our metadata needs it given.
    """
    session = open_session(path)
    config = config or config_from_metadata(session_metadata(session))
    if config is None:
        raise InputError(f"{path}: no qwen3vl_inspect metadata (not written by `qwen3vl-inspect export`); "
                         "pass the VisionConfig it was exported from")
    expected = [i.name for i in session.get_inputs()]
    if sorted(expected) != sorted(INPUT_NAMES):
        raise InputError(f"{path}: inputs {expected} are not the ones `qwen3vl-inspect export` writes "
                         f"({', '.join(INPUT_NAMES)}); re-export the model with `qwen3vl-inspect export`")
    if inputs.pixel_values.shape[-1] != config.patch_dim:
        raise InputError(f"pixel_values rows have {inputs.pixel_values.shape[-1]} values but {path} expects "
                         f"{config.patch_dim} (C·T·P·P); preprocess with patch_size {config.patch_size}")
    feeds = graph_inputs(config, inputs.pixel_values, inputs.grid_thw)
    results = session.run(None, {name: feeds[name].numpy() for name in expected})
    names = [output.name for output in session.get_outputs()]
    return {name: torch.from_numpy(value).float() for name, value in zip(names, results)}
