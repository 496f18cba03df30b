"""Tiny transformers Qwen3-VL models for parity tests.

Real-layout checkpoints for tests come from `save_pretrained` of tiny transformers models (nothing is
downloaded), so the builder lives in one place and every parity test sees the same shapes.
Import this module only from tests that have already called `pytest.importorskip("transformers")`.
"""

from __future__ import annotations

from typing import Any

import torch

from qwen3vl_inspect.config import VisionConfig

# The text side only has to exist and be small; its hidden_size must equal the tiny tower's
# out_hidden_size (96) because merged vision tokens are scattered into the text embeddings.
TINY_TEXT_CONFIG: dict[str, Any] = dict(
    vocab_size=1000,
    hidden_size=96,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,
    max_position_embeddings=512,
    # mrope_section sums to head_dim / 2 (t, h, w shares of the rotary frequencies)
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 4, 4], "mrope_interleaved": True},
)


def tiny_vision_config_dict() -> dict[str, Any]:
    """The "tiny" preset as kwargs for `Qwen3VLVisionConfig` (model_type left to the class)."""
    data = VisionConfig.preset("tiny").to_dict()
    data.pop("model_type", None)
    return data


def tiny_hf_config() -> Any:
    """A full `Qwen3VLConfig` with the tiny vision tower and a two-layer text model."""
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(vision_config=tiny_vision_config_dict(), text_config=dict(TINY_TEXT_CONFIG))


def tiny_hf_model(seed: int = 0) -> tuple[Any, Any]:
    """A seeded, eval-mode, fp32 `Qwen3VLForConditionalGeneration`; returns (model, config)."""
    from transformers import Qwen3VLForConditionalGeneration

    config = tiny_hf_config()
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32).eval()
    return model, config


def tiny_hf_vision_model(seed: int = 0) -> Any:
    """A seeded, eval-mode `Qwen3VLVisionModel` with the tiny preset (for vision-only checkpoints)."""
    from transformers import Qwen3VLVisionConfig, Qwen3VLVisionModel

    torch.manual_seed(seed)
    return Qwen3VLVisionModel(Qwen3VLVisionConfig(**tiny_vision_config_dict())).to(torch.float32).eval()
