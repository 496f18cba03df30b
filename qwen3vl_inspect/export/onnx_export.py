"""Export the vision encoder to ONNX with the pooled output and every DeepStack output.

    export_onnx(encoder, "vision.onnx")      # merger + deepstack.0..K-1 (+ blocks.i, patch_embed, … by default)

Exporter: torch's dynamo exporter (`torch.onnx.export(..., dynamo=True)`, translation by onnxscript).
Both it and the legacy TorchScript exporter export `ExportedEncoder` and match the encoder to
~1e-7 on packed inputs of other sizes; dynamo is used because it is torch's supported path (the
TorchScript exporter is deprecated since torch 2.9) and it carries the patch axis as one symbol with
the merge constraint (N = 4·tokens) instead of one unrelated name per tensor.

The file carries the `VisionConfig` as JSON in its metadata (`metadata_props`), so `onnx_run` and
`onnx_check` need nothing but the file. Weights go into the file itself up to torch's 2 GB limit
and into `FILE.onnx.data` beside it above that.

Intermediates (`patch_embed`, `pos_embed`, `rotary`, every `blocks.i`) are on by default: this is an
inspection tool, and an exported file whose every stage can be compared with our encoder localises a
divergence to one block. They cost output memory at run time (depth × N × hidden floats), not file
size; `intermediates=False` gives the deployment shape (merger + DeepStack only).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.export.graph import INPUT_NAMES, ExportedEncoder, graph_inputs
from qwen3vl_inspect.model.encoder import VisionEncoder

DEFAULT_OPSET = 18
METADATA_CONFIG = "qwen3vl_inspect.vision_config"
METADATA_WEIGHTS = "qwen3vl_inspect.weights"
METADATA_INTERMEDIATES = "qwen3vl_inspect.intermediates"
METADATA_DTYPE = "qwen3vl_inspect.dtype"
PATCH_AXIS, TOKEN_AXIS = "patches", "tokens"
# A packed example (two images) so the traced graph never specialises on one segment.
EXAMPLE_GRID = torch.tensor([[1, 4, 6], [1, 2, 2]])


def config_metadata(config: VisionConfig) -> str:
    return json.dumps({**config.to_dict(), "source": config.source})


def config_from_metadata(metadata: dict[str, str]) -> VisionConfig | None:
    """The VisionConfig an export stored, or None for a file we did not write."""
    text = metadata.get(METADATA_CONFIG)
    if text is None:
        return None
    data = json.loads(text)
    return VisionConfig.from_dict(data, source=data.get("source", "onnx metadata"))


def export_onnx(encoder: VisionEncoder, path: str | Path, opset: int = DEFAULT_OPSET,
                intermediates: bool = True, optimize: bool = True) -> Path:
    """Write `encoder` as an ONNX file at `path` with a dynamic patch count; returns the path."""
    path = Path(path)
    config = encoder.config
    parameter = next(encoder.parameters())
    wrapper = ExportedEncoder(encoder, intermediates=intermediates).eval()
    pixels = torch.randn(int(EXAMPLE_GRID.prod(-1).sum()), config.patch_dim, generator=torch.Generator().manual_seed(0))
    feeds = graph_inputs(config, pixels, EXAMPLE_GRID)
    args = tuple(feeds[name].to(parameter.device) for name in INPUT_NAMES)
    tokens = torch.export.Dim(TOKEN_AXIS, min=1)
    patches = config.merge_unit * tokens  # the merger reshapes N patches into N/4 tokens
    dynamic = {name: {0: patches} for name in INPUT_NAMES}
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "torchvision is not installed" and similar: not about this model
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # exporter deprecation chatter; failures still raise
            program = torch.onnx.export(wrapper, args, dynamo=True, dynamic_shapes=dynamic,
                                        input_names=list(INPUT_NAMES), output_names=wrapper.names,
                                        opset_version=opset, verbose=False, optimize=optimize)
    finally:
        logger.setLevel(level)
    _name_axes(program.model, config)
    program.model.metadata_props.update({
        METADATA_CONFIG: config_metadata(config),
        METADATA_WEIGHTS: getattr(encoder, "weights_source", "unknown"),
        METADATA_INTERMEDIATES: str(intermediates).lower(),
        METADATA_DTYPE: str(parameter.dtype).removeprefix("torch."),
    })
    program.save(str(path))
    return path


def _name_axes(model, config: VisionConfig) -> None:
    """Call the dynamic axes `patches` (N) and `tokens` (N/4) in the file, not the exporter's `4*tokens`/`s93`."""
    import onnx_ir as ir

    for value in [*model.graph.inputs, *model.graph.outputs]:
        if value.shape is None or not isinstance(value.shape[0], ir.SymbolicDim):
            continue
        merged = value.name == "merger" or value.name.startswith("deepstack.")
        value.shape = ir.Shape([TOKEN_AXIS if merged else PATCH_AXIS, *value.shape[1:]])
