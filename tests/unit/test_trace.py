"""The Trace: lazy stepping, equality with forward, keep policy, failures, attention on demand."""

import pytest
import torch
from PIL import Image

from qwen3vl_inspect import InputError, VisionConfig, VisionEncoder, preprocess
from qwen3vl_inspect import attention_maps as attn_maps
from qwen3vl_inspect.inputs.layout import merge_order_to_raster_index, token_pixel_box
from qwen3vl_inspect.tracing import StageError, trace

CONFIG = VisionConfig.preset("tiny")


def scene(width, height, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(height, width, 3, generator=gen) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def encoder():
    return VisionEncoder(CONFIG).eval()


@pytest.fixture(scope="module")
def inputs():
    # two images packed: 128×96 → 8×6 patches, 64×64 → 4×4 patches
    return preprocess([scene(96, 128), scene(64, 64, 1)], min_pixels=32 * 32)


def test_trace_output_equals_forward(encoder, inputs):
    tr = trace(encoder, inputs).run()
    with torch.no_grad():
        reference = encoder(inputs.pixel_values, inputs.grid_thw)
    out = tr.output()
    assert torch.equal(out.last_hidden_state, reference.last_hidden_state)
    assert torch.equal(out.pooler_output, reference.pooler_output)
    assert all(torch.equal(a, b) for a, b in zip(out.deepstack_features, reference.deepstack_features))


def test_stages_are_ordered_and_lazy(encoder, inputs):
    tr = trace(encoder, inputs)
    assert tr.stages == []
    assert tr.stage_names[:6] == ["input", "patchify", "patch_embed", "pos_embed", "rotary", "blocks.0"]
    assert tr.stage_names[6] == "deepstack.0" and tr.stage_names[-1] == "merger"  # tiny taps block 0
    first = tr.step()
    assert first.name == "input" and len(tr.stages) == 1
    tr.run_to("blocks.2")
    assert tr.stages[-1].name == "blocks.2" and "merger" not in [s.name for s in tr.stages]
    block = tr["blocks.2"]
    assert [s.name for s in block.substages] == [f"blocks.2.{n}" for n in ("norm1", "attn", "residual1", "norm2", "mlp", "residual2")]
    assert block.output_shape == (inputs.num_patches, CONFIG.hidden_size)
    assert "attends" in block.explanation and tr["patchify"].explanation
    names = [stage.name for stage in tr]  # iterating computes the rest
    assert names == tr.stage_names and tr.done and tr.step() is None
    with pytest.raises(InputError, match="no stage"):
        tr.run_to("blocks.99")


def test_keep_policy_recomputes_substages(encoder, inputs):
    lean, full = trace(encoder, inputs).run(), trace(encoder, inputs, keep="all").run()
    assert "blocks.1.mlp" not in lean._tensors and "blocks.1.mlp" in full._tensors
    for name in ("blocks.1.norm1", "blocks.1.attn", "blocks.1.residual1", "blocks.1.mlp", "blocks.3.residual2"):
        assert torch.equal(lean.tensor(name), full.tensor(name))
    assert torch.equal(lean.tensor("blocks.1.residual2"), lean.tensor("blocks.1"))
    assert lean.estimated_bytes() < full.estimated_bytes()


def test_reading_stages_never_reruns_a_block(encoder, inputs):
    tr = trace(encoder, inputs).run()
    calls = []
    handle = encoder.blocks[1].register_forward_hook(lambda *_: calls.append(1))
    try:
        summary = tr.summary()  # what `trace --json` prints
        assert calls == [] and summary["stages"][5]["substages"][1]["stats"] is None
        assert tr["blocks.1.attn"].stats is None and not tr["blocks.1.attn"].nonfinite
        stats = tr.stats("blocks.1.attn")  # the explicit call runs the block once for all six steps
        assert calls == [1] and stats is tr["blocks.1.attn"].stats
        assert all(step.stats is not None for step in tr["blocks.1"].substages)
        tr.stats("blocks.1.mlp")
        assert calls == [1]
    finally:
        handle.remove()


def test_failure_keeps_earlier_stages(encoder, inputs, monkeypatch):
    tr = trace(encoder, inputs)

    def broken(_x):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(encoder.blocks[2].mlp, "forward", broken)
    with pytest.raises(StageError, match="stage blocks.2 failed: RuntimeError: simulated out of memory"):
        tr.run()
    assert tr.failure.stage == "blocks.2"
    assert [s.name for s in tr.stages][-1] == "blocks.1"
    assert tr["blocks.1"].stats is not None and tr.tensor("blocks.1").shape[0] == inputs.num_patches
    assert "blocks.2" in tr.summary()["failure"]


def test_nonfinite_stage_is_flagged(encoder, inputs):
    with torch.no_grad():
        saved = encoder.blocks[1].mlp.linear_fc2.bias.clone()
        encoder.blocks[1].mlp.linear_fc2.bias[0] = float("nan")
    try:
        tr = trace(encoder, inputs).run()
        # sub-stage stats are recomputed from the stored block input when asked: ask while the NaN is in
        for layer in range(CONFIG.depth):
            tr.compute_step_stats(layer)
        flagged = [s.name for s in tr.all_stages() if s.nonfinite]
    finally:
        with torch.no_grad():
            encoder.blocks[1].mlp.linear_fc2.bias.copy_(saved)
    bad = tr.first_nonfinite()
    assert bad.name == "blocks.1" and bad.module == "blocks.1"
    assert flagged[:3] == ["blocks.1", "blocks.1.mlp", "blocks.1.residual2"]


def _explicit_probs(encoder, inputs, layer):
    """The encoder's own explicit attention path, captured by a hook: merge order, per segment."""
    seen = []
    encoder.set_attention_implementation("explicit")
    handle = encoder.blocks[layer].attn.probs.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        with torch.no_grad():
            encoder(inputs.pixel_values, inputs.grid_thw)
    finally:
        handle.remove()
        encoder.set_attention_implementation("sdpa")
    return seen


@pytest.mark.parametrize("layer", [0, 3])
def test_attention_is_raster_ordered_softmax(encoder, inputs, layer):
    tr = trace(encoder, inputs)
    captured = _explicit_probs(encoder, inputs, layer)
    for image, (_, h, w) in enumerate(inputs.grid_thw.tolist()):
        maps = tr.attention(layer, image=image)
        assert maps.shape == (CONFIG.num_heads, h * w, h * w) and maps.dtype == torch.float32
        torch.testing.assert_close(maps.sum(-1), torch.ones(CONFIG.num_heads, h * w))
        raster = merge_order_to_raster_index(h, w, CONFIG.spatial_merge_size)
        expected = torch.empty_like(captured[image])
        expected[:, raster[:, None], raster[None, :]] = captured[image]  # merge order → raster, rows and columns
        torch.testing.assert_close(maps, expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(tr.attention(layer, head=2, image=image), expected[2], atol=1e-6, rtol=1e-5)


def test_patch_norms_follow_pixel_boxes(encoder, inputs):
    tr = trace(encoder, inputs)
    tr.run_to("patch_embed")
    grid = tr.patch_norms("patch_embed", image=1)
    embedded = tr.tensor("patch_embed")
    offset = 48  # image 0 has 8×6 patches
    for token in range(offset, offset + 16):
        box = token_pixel_box(token, inputs.grid_thw)
        assert box.image == 1
        assert grid[box.row, box.col] == embedded[token].float().norm()


def test_rollout_on_a_hand_made_example():
    a0 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    a1 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    m0 = 0.5 * a0 + 0.5 * torch.eye(2)  # rows already sum to 1
    m1 = 0.5 * a1 + 0.5 * torch.eye(2)
    torch.testing.assert_close(attn_maps.rollout([a0, a1]), m1 @ m0)
    assert torch.allclose(attn_maps.rollout([a0, a1]).sum(-1), torch.ones(2))


def test_rollout_and_head_summary_on_the_trace(encoder, inputs, monkeypatch):
    tr = trace(encoder, inputs)
    tr.attention_store.store_bytes = 3 * 48 * 48 * 4
    rolled = tr.rollout(layer=2)
    assert rolled.shape == (48, 48)
    torch.testing.assert_close(rolled.sum(-1), torch.ones(48))
    means = [tr.head_mean_attention(layer) for layer in range(3)]
    torch.testing.assert_close(rolled, attn_maps.rollout(means))  # layer by layer equals the product of all
    assert tr.attention_store.bytes_held <= 3 * 48 * 48 * 4  # bounded: never all layers × heads at once
    summary = tr.head_summary(1)
    assert len(summary["entropy"]) == CONFIG.num_heads
    assert all(0 <= e <= summary["uniform_entropy"] + 1e-5 for e in summary["entropy"])
    assert all(d >= 0 for d in summary["mean_distance"])


def test_uniform_attention_has_max_entropy_and_no_sinks():
    probs = torch.full((2, 12, 12), 1 / 12)
    entropy = attn_maps.head_entropy(probs)
    torch.testing.assert_close(entropy, torch.full((2,), float(torch.log(torch.tensor(12.0)))))
    assert attn_maps.attention_sinks(probs, grid_w=4) == []
    sink = torch.zeros(12, 12)
    sink[:, 5] = 1.0
    found = attn_maps.attention_sinks(sink, grid_w=4)
    assert [(s.row, s.col) for s in found] == [(1, 1)] and found[0].ratio == pytest.approx(12)


def test_mean_distance_counts_patches():
    probs = torch.zeros(1, 4, 4)  # 2×2 grid: everyone attends to patch (1, 1)
    probs[0, :, 3] = 1
    expected = (2**0.5 + 1 + 1 + 0) / 4
    assert attn_maps.mean_attention_distance(probs, 2, 2).item() == pytest.approx(expected)


def test_requests_over_budget_are_refused(encoder, inputs):
    tr = trace(encoder, inputs, attention_budget=20_000)
    with pytest.raises(InputError, match=r"ask for one head .*--max-pixels \d+"):
        tr.attention(0)  # peak (4 + 2) maps × 48² × 4 bytes = 55 kB
    assert tr.attention(0, head=0).shape == (48, 48)  # one head fits: 2 maps = 18 kB
    with pytest.raises(InputError, match=r"rollout .* re-run with --max-pixels \d+"):
        tr.rollout(1)  # 5 maps; one head would not help, so it is not suggested
    with pytest.raises(InputError, match=r"would keep .* --max-pixels \d+"):
        trace(encoder, inputs, memory_budget=100_000)


def test_bad_layer_head_image_are_input_errors(encoder, inputs):
    tr = trace(encoder, inputs)
    for kwargs, message in [(dict(layer=9), "layer 9"), (dict(layer=0, head=7), "head 7"), (dict(layer=0, image=5), "image 5")]:
        with pytest.raises(InputError, match=message):
            tr.attention(**kwargs)
