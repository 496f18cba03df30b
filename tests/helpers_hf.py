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


def tiny_hf_model_with_image_inputs():
    """A tiny Qwen3VLForConditionalGeneration (fp32, eval) whose special-token ids fit its 1000-token
    vocabulary, and forward kwargs with one 4×4-patch image (4 merged tokens → 4 pad tokens)."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    config = tiny_hf_config()
    # the real ids (151655…) lie outside the tiny 1000-token vocabulary
    config.image_token_id, config.video_token_id = 900, 901
    config.vision_start_token_id, config.vision_end_token_id = 902, 903
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32).eval()
    grid = torch.tensor([[1, 4, 4]])
    n_pad = int(grid.prod()) // config.vision_config.spatial_merge_size**2  # grid_t·grid_h·grid_w / 4
    ids = torch.tensor([[1, 2, config.vision_start_token_id] + [config.image_token_id] * n_pad
                        + [config.vision_end_token_id, 5, 6]])
    patch_dim = 3 * config.vision_config.temporal_patch_size * config.vision_config.patch_size**2
    kwargs = dict(
        input_ids=ids,
        pixel_values=torch.randn(int(grid.prod()), patch_dim, generator=torch.Generator().manual_seed(0)),
        image_grid_thw=grid,
        mm_token_type_ids=(ids == config.image_token_id).long(),  # transformers 5 needs it for M-RoPE
    )
    return model, kwargs
