"""Our VisionEncoder against transformers' Qwen3VLVisionModel (the oracle), same weights."""

from __future__ import annotations

import pytest
import torch

from qwen3vl_inspect import VisionConfig, VisionEncoder

transformers = pytest.importorskip("transformers")
from transformers import Qwen3VLVisionConfig  # noqa: E402
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel  # noqa: E402

# A config with the real 48×48 learned position grid and the real head_dim (64), but few layers.
SMALL = VisionConfig(depth=3, hidden_size=256, intermediate_size=512, num_heads=4, out_hidden_size=192,
                     deepstack_visual_indexes=(0, 2), source="small")

GRIDS = {
    "square": [[1, 8, 8]],
    "non_square": [[1, 6, 14]],
    "three_images_packed": [[1, 6, 8], [1, 4, 4], [1, 10, 6]],
    "video_4_frames": [[2, 6, 8]],
}


def oracle_for(encoder: VisionEncoder) -> Qwen3VLVisionModel:
    fields = encoder.config.to_dict()
    fields.pop("model_type")
    model = Qwen3VLVisionModel(Qwen3VLVisionConfig(**fields)).eval()
    model.load_state_dict(encoder.state_dict(), strict=True)
    return model


def inputs_for(config: VisionConfig, grid: list[list[int]], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    grid_thw = torch.tensor(grid)
    n = int(grid_thw.prod(-1).sum())
    return torch.randn(n, config.patch_dim, generator=torch.Generator().manual_seed(seed)), grid_thw


def max_diffs(ours, theirs) -> dict[str, float]:
    diffs = {
        "last_hidden_state": (ours.last_hidden_state.float() - theirs.last_hidden_state.float()).abs().max().item(),
        "pooler_output": (ours.pooler_output.float() - theirs.pooler_output.float()).abs().max().item(),
    }
    assert len(ours.deepstack_features) == len(theirs.deepstack_features)
    for k, (a, b) in enumerate(zip(ours.deepstack_features, theirs.deepstack_features)):
        diffs[f"deepstack_{k}"] = (a.float() - b.float()).abs().max().item()
    return diffs


@pytest.fixture(scope="module", params=["tiny", "small"])
def pair(request):
    config = VisionConfig.preset("tiny") if request.param == "tiny" else SMALL
    encoder = VisionEncoder(config, seed=1).eval()
    return encoder, oracle_for(encoder)


@pytest.mark.parametrize("case", sorted(GRIDS))
@pytest.mark.parametrize("attention", ["sdpa", "explicit"])
def test_fp32_matches_transformers(pair, case, attention):
    encoder, oracle = pair
    encoder.set_attention_implementation(attention)
    pixels, grid_thw = inputs_for(encoder.config, GRIDS[case])
    with torch.no_grad():
        ours, theirs = encoder(pixels, grid_thw), oracle(pixels, grid_thw)
    assert ours.last_hidden_state.shape == theirs.last_hidden_state.shape
    assert ours.pooler_output.shape == (pixels.shape[0] // 4, encoder.config.out_hidden_size)
    diffs = max_diffs(ours, theirs)
    assert max(diffs.values()) <= 1e-5, diffs
    encoder.set_attention_implementation("sdpa")


@pytest.mark.parametrize("case", ["non_square", "three_images_packed"])
def test_bf16_matches_transformers_within_bf16_tolerance(pair, case):
    encoder, oracle = pair
    encoder_bf16 = VisionEncoder(encoder.config, seed=1).to(torch.bfloat16).eval()
    oracle_bf16 = oracle_for(encoder).to(torch.bfloat16)
    pixels, grid_thw = inputs_for(encoder.config, GRIDS[case])
    with torch.no_grad():
        ours, theirs = encoder_bf16(pixels, grid_thw), oracle_bf16(pixels, grid_thw)
        reference = encoder(pixels, grid_thw)
    assert ours.pooler_output.dtype == torch.bfloat16
    for name, diff in max_diffs(ours, theirs).items():
        scale = getattr(reference, name, None)
        scale = reference.deepstack_features[int(name[-1])] if scale is None else scale
        # bf16 keeps 8 bits of mantissa: allow a few ulps of the output's magnitude
        assert diff <= 0.03 * scale.abs().max().item() + 1e-3, (name, diff)


def test_wrong_weights_are_detected():
    """The parity check is not vacuous: a perturbed weight breaks it."""
    encoder = VisionEncoder(VisionConfig.preset("tiny")).eval()
    oracle = oracle_for(encoder)
    with torch.no_grad():
        encoder.blocks[1].mlp.linear_fc1.weight[0, 0] += 0.5
        pixels, grid_thw = inputs_for(encoder.config, GRIDS["square"])
        assert max(max_diffs(encoder(pixels, grid_thw), oracle(pixels, grid_thw)).values()) > 1e-4
