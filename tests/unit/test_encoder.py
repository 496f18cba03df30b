"""VisionEncoder behaviour that needs no oracle: stages, seeding, dtypes, the explicit attention path."""

import pytest
import torch

from qwen3vl_inspect import InputError, VisionConfig, VisionEncoder

CONFIG = VisionConfig.preset("tiny")
GRID = torch.tensor([[1, 4, 6], [1, 2, 2]])


def pixels(seed=0):
    return torch.randn(int(GRID.prod(-1).sum()), CONFIG.patch_dim, generator=torch.Generator().manual_seed(seed))


def test_stage_methods_compose_to_forward():
    encoder = VisionEncoder(CONFIG).eval()
    x = pixels()
    with torch.no_grad():
        out = encoder(x, GRID)
        positions = encoder.patch_positions(GRID)
        h = encoder.embed_patches(x)
        h = h + encoder.position_embedding(positions, h.dtype)
        rotary = encoder.rotary_embedding(positions)
        taps = []
        for i in range(CONFIG.depth):
            h = encoder.run_block(i, h, positions, rotary)
            if (tap := encoder.deepstack_merge(i, h)) is not None:
                taps.append(tap)
        merged = encoder.merge(h)
    assert torch.equal(h, out.last_hidden_state) and torch.equal(merged, out.pooler_output)
    assert len(taps) == len(CONFIG.deepstack_visual_indexes)
    assert all(torch.equal(a, b) for a, b in zip(taps, out.deepstack_features))


def test_random_init_is_seeded_and_labelled():
    a, b, c = VisionEncoder(CONFIG), VisionEncoder(CONFIG), VisionEncoder(CONFIG, seed=1)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.pos_embed.weight, c.pos_embed.weight)
    assert a.has_random_weights and "random weights" in repr(a)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_preset_runs_in_each_dtype(dtype):
    encoder = VisionEncoder.from_pretrained("tiny", dtype=dtype)
    with torch.no_grad():
        out = encoder(pixels(), GRID)
    assert out.pooler_output.dtype == dtype and out.pooler_output.shape == (7, CONFIG.out_hidden_size)
    assert torch.isfinite(out.pooler_output.float()).all()


def test_explicit_path_exposes_probabilities_per_segment():
    encoder = VisionEncoder(CONFIG, attn_implementation="explicit").eval()
    seen = []
    handle = encoder.blocks[1].attn.probs.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        with torch.no_grad():
            encoder(pixels(), GRID)
    finally:
        handle.remove()
    assert [p.shape for p in seen] == [(CONFIG.num_heads, 24, 24), (CONFIG.num_heads, 4, 4)]
    for probs in seen:
        assert probs.dtype == torch.float32
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))


def test_attention_paths_agree():
    encoder = VisionEncoder(CONFIG).eval()
    with torch.no_grad():
        fast = encoder(pixels(), GRID).pooler_output
        encoder.set_attention_implementation("explicit")
        explicit = encoder(pixels(), GRID).pooler_output
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="sdpa or explicit"):
        encoder.set_attention_implementation("flash")


def test_images_do_not_attend_to_each_other():
    """Packing a second image must not change the first image's outputs (block-diagonal attention)."""
    encoder = VisionEncoder(CONFIG).eval()
    x = pixels()
    with torch.no_grad():
        packed = encoder(x, GRID).last_hidden_state[:24]
        alone = encoder(x[:24], GRID[:1]).last_hidden_state
    torch.testing.assert_close(packed, alone, atol=1e-6, rtol=1e-6)


def test_from_pretrained_refuses_unknown_names_and_files(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint folder or preset"):
        VisionEncoder.from_pretrained(tmp_path / "nothing")
    (tmp_path / "file.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="not a folder"):
        VisionEncoder.from_pretrained(tmp_path / "file.safetensors")


def test_demo_preset_loads_the_shipped_weights_with_an_honest_label(tmp_path, monkeypatch):
    (tmp_path / "demo").mkdir()  # a folder named like the preset, without config.json, must not shadow it
    monkeypatch.chdir(tmp_path)
    encoder = VisionEncoder.from_pretrained("demo")
    assert encoder.weights_source == "demo weights trained on synthetic shapes — not Qwen's weights"
    assert not encoder.has_random_weights and encoder.config.source == "demo"
    assert next(encoder.parameters()).dtype == torch.float32  # shipped as fp16, run in fp32 by default
    assert VisionConfig.preset("demo") == encoder.config
