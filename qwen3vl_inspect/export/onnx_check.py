"""Check an ONNX file for the outputs a Qwen3-VL vision tower must have: pooled + every DeepStack output.

A file can look fine and still be wrong: seed 002's export traced a modeling file that skipped
DeepStack while tracing, so the ONNX had only the pooled output and the language model silently lost
its DeepStack features. `check_onnx` says so. How many DeepStack outputs a file owes is read from
(1) the VisionConfig our exporter stores in the metadata; else (2) the tower's depth and width found
in its weights' names, matched against the published sizes; else (3) DeepStack merger weights in the
file. If none of these applies the report says it cannot tell, rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.config import PRESETS, SHIPPED_WEIGHTS, VisionConfig
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.export.onnx_export import config_from_metadata
from qwen3vl_inspect.export.onnx_run import require_onnx_file

EXIT_COMPLETE, EXIT_UNKNOWN, EXIT_MISSING = 0, 1, 4
POOLED_NAMES = ("merger", "pooler_output", "pooled_embeds", "pooled", "image_embeds", "vision_embeds")
_BLOCK = re.compile(r"(?:^|[./])blocks\.(\d+)\.")
# Where the tower's width can be read, as (name pattern, which dimension): exporters deduplicate equal
# tensors (fresh LayerNorm weights are all ones) and rename transposed ones, so several are tried.
_WIDTH_SOURCES = ((re.compile(r"blocks\.\d+\.norm[12]\.(weight|bias)$"), 0),
                  (re.compile(r"blocks\.\d+\.attn\.proj\.bias$"), 0),
                  (re.compile(r"pos_embed\.weight$"), -1),
                  (re.compile(r"patch_embed\.proj\.weight$"), 0))
_DEEPSTACK_WEIGHT = re.compile(r"deepstack_merger_list\.(\d+)\.")


@dataclass
class OnnxCheck:
    """What `check_onnx` found; `exit_code` is 0 complete, 4 outputs missing, 1 can't tell."""

    path: Path
    outputs: list[tuple[str, str]]  # (name, shape) in graph order
    has_metadata: bool
    expected_from: str | None  # how the expected DeepStack count was decided; None: could not tell
    expected_deepstack: int | None
    deepstack: list[str]  # outputs counted as DeepStack features
    pooled: str | None
    patch_axis: str | None  # the first input's leading dimension: a name (dynamic) or a number (fixed)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def patch_axis_dynamic(self) -> bool | None:
        return None if self.patch_axis is None else not self.patch_axis.isdigit()

    @property
    def exit_code(self) -> int:
        if self.missing:
            return EXIT_MISSING
        return EXIT_COMPLETE if self.expected_deepstack is not None else EXIT_UNKNOWN

    @property
    def verdict(self) -> str:
        if self.missing:
            return f"{', '.join(self.missing)} missing"
        if self.expected_deepstack is None:
            return "cannot tell whether DeepStack outputs are missing: " + (self.notes[0] if self.notes else "unknown model")
        return f"complete: pooled output {self.pooled} and {self.expected_deepstack} DeepStack output(s)"

    def __rich__(self) -> Group:
        table = Table(title=f"{self.path.name}: outputs", title_justify="left")
        table.add_column("output")
        table.add_column("shape")
        table.add_column("role")
        for name, shape in self.outputs:
            role = "pooled" if name == self.pooled else "DeepStack" if name in self.deepstack else ""
            table.add_row(Text(name), Text(shape), role)  # Text: "[patches, 64]" is not markup
        lines = [Text(f"expected DeepStack outputs: {self.expected_deepstack} ({self.expected_from})"
                      if self.expected_deepstack is not None else "expected DeepStack outputs: unknown")]
        if self.patch_axis is not None:
            kind = "dynamic" if self.patch_axis_dynamic else "FIXED: the file accepts one image size only"
            lines.append(Text(f"patch axis: {self.patch_axis} ({kind})"))
        lines += [Text(f"note: {note}") for note in self.notes]
        style = "bold red" if self.missing else "bold yellow" if self.exit_code else "bold green"
        lines.append(Text(self.verdict, style=style))
        return Group(table, *lines)


def name_range(prefix: str, indices: list[int]) -> str:
    """[0, 1, 2] → "deepstack.0–2"; [1] → "deepstack.1"; gaps are listed."""
    if len(indices) > 1 and indices == list(range(indices[0], indices[-1] + 1)):
        return f"{prefix}.{indices[0]}–{indices[-1]}"
    return ", ".join(f"{prefix}.{i}" for i in indices)


def check_onnx(path: str | Path) -> OnnxCheck:
    """Read `path` (graph only; external weight data is not loaded) and report its outputs."""
    path = require_onnx_file(path)
    model = _load(path)
    outputs = [(o.name, _shape(o)) for o in model.graph.output]
    metadata = {p.key: p.value for p in model.metadata_props}
    config = config_from_metadata(metadata)
    first_input = next(iter(model.graph.input), None)
    patch_axis = _leading_dim(first_input) if first_input is not None else None
    if config is not None:
        return _check_ours(path, outputs, config, patch_axis)
    return _check_foreign(path, model, outputs, patch_axis)


def _load(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise InputError("onnx is not installed; install the extra: pip install 'qwen3vl_inspect[onnx]'") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: not an ONNX file
        raise InputError(f"{path}: not an ONNX model ({type(exc).__name__}); give a file written by an ONNX exporter") from None
    if model.ir_version == 0 or not model.HasField("graph"):  # e.g. an empty file parses as an empty message
        raise InputError(f"{path}: not an ONNX model (no graph); give a file written by an ONNX exporter")
    return model


def _shape(value: Any) -> str:
    dims = value.type.tensor_type.shape.dim
    return "[" + ", ".join(d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in dims) + "]"


def _leading_dim(value: Any) -> str | None:
    dims = value.type.tensor_type.shape.dim
    if not dims:
        return None
    return dims[0].dim_param or (str(dims[0].dim_value) if dims[0].HasField("dim_value") else "?")


def _check_ours(path: Path, outputs: list[tuple[str, str]], config: VisionConfig, patch_axis: str | None) -> OnnxCheck:
    names = [name for name, _ in outputs]
    expected = len(config.deepstack_visual_indexes)
    missing_taps = [k for k in range(expected) if f"deepstack.{k}" not in names]
    missing = ([name_range("deepstack", missing_taps)] if missing_taps else [])
    if "merger" not in names:
        missing.insert(0, "pooled output merger")
    taps = list(config.deepstack_visual_indexes)
    return OnnxCheck(path, outputs, True, f"config in the file's metadata, taps at blocks {taps}",
                     expected, [n for n in names if n.startswith("deepstack.")], "merger" if "merger" in names else None,
                     patch_axis, missing)


def _known_sizes() -> dict[tuple[int, int], tuple[str, int]]:
    """(depth, hidden) → (model names, DeepStack count) for every published size and the shipped demo."""
    configs = {name: VisionConfig.preset(name) for name in [*SHIPPED_WEIGHTS, *PRESETS]}
    sizes: dict[tuple[int, int], tuple[str, int]] = {}
    for name, config in configs.items():
        key = (config.depth, config.hidden_size)
        names = f"{sizes[key][0]}, {name}" if key in sizes else name
        sizes[key] = (names, len(config.deepstack_visual_indexes))
    return sizes


def _check_foreign(path: Path, model: Any, outputs: list[tuple[str, str]], patch_axis: str | None) -> OnnxCheck:
    """A file without our metadata: identify the tower from its weights, count DeepStack outputs by name or shape."""
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    layers = {int(m.group(1)) for name in weights if (m := _BLOCK.search(name))}
    taps = {int(m.group(1)) for name in weights if (m := _DEEPSTACK_WEIGHT.search(name))}
    notes = ["no qwen3vl_inspect metadata (not written by `qwen3vl-inspect export`)"]
    expected, expected_from = None, None
    if layers:
        depth, hidden = max(layers) + 1, _width(weights)
        known = _known_sizes().get((depth, hidden))
        if known is not None:
            expected, expected_from = known[1], f"depth {depth} and width {hidden} are those of {known[0]}"
        elif taps:
            expected, expected_from = len(taps), f"{len(taps)} DeepStack merger weight sets in the file"
        else:
            notes.insert(0, f"a vision tower of depth {depth}, width {hidden} matches no published Qwen3-VL size")
    elif taps:
        expected, expected_from = len(taps), f"{len(taps)} DeepStack merger weight sets in the file"
    else:
        notes.insert(0, "no Qwen3-VL vision-tower weights (blocks.N.…) found by name")
    pooled, deepstack = _roles(outputs, notes)
    missing = [] if pooled is not None else ["pooled output"]
    if expected is not None and len(deepstack) < expected:
        missing.append(name_range("deepstack", list(range(len(deepstack), expected))))
    return OnnxCheck(path, outputs, False, expected_from, expected, deepstack, pooled, patch_axis, missing, notes)


def _width(weights: dict[str, list[int]]) -> int | None:
    for pattern, axis in _WIDTH_SOURCES:
        for name, dims in weights.items():
            if dims and pattern.search(name):
                return dims[axis]
    return None


def _roles(outputs: list[tuple[str, str]], notes: list[str]) -> tuple[str | None, list[str]]:
    """Which output is pooled and which are DeepStack: by name, else by shape (DeepStack features have the pooled shape)."""
    names = [name for name, _ in outputs]
    deepstack = [n for n in names if "deepstack" in n.lower()]
    rest = [n for n in names if n not in deepstack]
    pooled = next((n for n in rest if n.lower() in POOLED_NAMES), None) or next((n for n in rest if "pool" in n.lower()), None)
    pooled = pooled or (rest[0] if rest else None)
    if not deepstack and pooled is not None:
        shape = dict(outputs)[pooled]
        deepstack = [n for n in rest if n != pooled and dict(outputs)[n] == shape]
        if deepstack:
            notes.append(f"outputs {', '.join(deepstack)} counted as DeepStack because they have the pooled output's shape")
    return pooled, deepstack
