"""transformers' `Qwen3VLVisionModel` holding exactly our encoder's weights: the golden oracle as a side.

Built from the same tensors in memory (whether they came from a checkpoint folder or a preset), so a
difference is the code's, never the loading's. transformers is imported here only, lazily.
"""

from __future__ import annotations

import torch
from torch import nn

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.model.encoder import VisionEncoder


def transformers_twin(encoder: VisionEncoder, dtype: torch.dtype | None = None) -> nn.Module:
    """An eval-mode `Qwen3VLVisionModel` with `encoder`'s config and weights, at `dtype` (default: the encoder's)."""
    try:
        from transformers import Qwen3VLVisionConfig
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
    except ImportError:
        raise InputError("--against transformers needs transformers with Qwen3-VL (≥ 4.57): "
                         "pip install 'transformers>=4.57'") from None
    fields = encoder.config.to_dict()
    fields.pop("model_type", None)
    with torch.device("meta"):
        model = Qwen3VLVisionModel(Qwen3VLVisionConfig(**fields))
    state = {name: tensor.detach().clone() for name, tensor in encoder.state_dict().items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.rotary_pos_emb.inv_freq = _inverse_frequencies(model).to(state["pos_embed.weight"].device)
    model.rotary_pos_emb.original_inv_freq = model.rotary_pos_emb.inv_freq.clone()
    param = next(iter(state.values()))
    return model.to(dtype=dtype or param.dtype).eval()


def _inverse_frequencies(model: nn.Module) -> torch.Tensor:
    """Non-persistent buffers stay on the meta device after `load_state_dict`: recompute them."""
    rotary = model.rotary_pos_emb
    inv_freq, _ = rotary.compute_axial_rope_parameters(rotary.config, device="cpu")
    return inv_freq
