"""Checkpoints written by transformers' own `save_pretrained` load 1:1, and the loaded encoder matches HF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")

from helpers_hf import tiny_hf_model, tiny_hf_vision_model  # noqa: E402

from qwen3vl_inspect.model.checkpoint import describe_checkpoint, load_vision_state_dict  # noqa: E402

GRID_THW = torch.tensor([[1, 4, 6], [1, 2, 2]])  # two images packed: 24 + 4 patches


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The tiny full model saved in several shards, as a real Hub download is laid out."""
    model, _config = tiny_hf_model(seed=0)
    folder = tmp_path_factory.mktemp("hf") / "tiny-qwen3-vl"
    model.save_pretrained(folder, max_shard_size="200KB")
    return model, folder


def _pixel_values(seed: int = 1) -> torch.Tensor:
    patches = int(GRID_THW.prod(-1).sum())
    return torch.randn(patches, 3 * 2 * 16 * 16, generator=torch.Generator().manual_seed(seed))


def test_save_pretrained_layout(sharded: tuple[Any, Path]) -> None:
    _model, folder = sharded
    weight_map = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    assert len(set(weight_map.values())) > 2, "expected several shards"
    vision_keys = [k for k in weight_map if k.startswith("model.visual.")]
    assert vision_keys and not any(k.startswith("visual.") for k in weight_map)
    info = describe_checkpoint(folder)
    assert info["prefix"] == "model.visual."
    assert info["vision_tensors"] == len(vision_keys)
    assert len(info["vision_shards"]) < info["total_shards"], "LM-only shards should not be listed"


def test_loads_exactly_the_visual_state_dict(sharded: tuple[Any, Path]) -> None:
    model, folder = sharded
    reference = model.model.visual.state_dict()
    loaded = load_vision_state_dict(folder, {k: v.shape for k, v in reference.items()})
    assert list(loaded) == list(reference)
    for name, tensor in reference.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor), name


def test_vision_only_save_loads_with_bare_names(tmp_path: Path) -> None:
    vision = tiny_hf_vision_model(seed=3)
    vision.save_pretrained(tmp_path)
    assert describe_checkpoint(tmp_path)["prefix"] == ""
    reference = vision.state_dict()
    loaded = load_vision_state_dict(tmp_path, reference, dtype=torch.float16)
    for name, tensor in reference.items():
        assert torch.equal(loaded[name], tensor.to(torch.float16)), name


def test_encoder_from_pretrained_matches_transformers(sharded: tuple[Any, Path]) -> None:
    try:
        from qwen3vl_inspect.model.encoder import VisionEncoder
    except ImportError as exc:
        pytest.skip(f"qwen3vl_inspect.model.encoder.VisionEncoder not available yet ({exc})")
    model, folder = sharded
    encoder = VisionEncoder.from_pretrained(folder)
    pixel_values = _pixel_values()
    with torch.no_grad():
        ours = encoder(pixel_values, GRID_THW)
        theirs = model.model.visual(pixel_values, grid_thw=GRID_THW)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.pooler_output, theirs.pooler_output, atol=1e-5, rtol=1e-5)
    assert len(ours.deepstack_features) == len(theirs.deepstack_features) == 2
    for mine, ref in zip(ours.deepstack_features, theirs.deepstack_features):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-5)
