"""`compare`: injected faults must be named exactly, with the right introduced/inherited verdict.

Every case uses the tiny preset (depth 4, DeepStack taps at blocks 0 and 2) on a small noise image,
so the whole file runs in seconds.
"""

import copy
import dataclasses
import json

import pytest
import torch
from PIL import Image

from qwen3vl_inspect import Comparison, VisionEncoder, compare, preprocess
from qwen3vl_inspect.comparison.result import DIVERGED, EQUAL, INHERITED, INTRODUCED, MISSING_B, SHAPE_MISMATCH, WITHIN
from qwen3vl_inspect.inputs.layout import merge_order_to_raster_index


@pytest.fixture(scope="module")
def inputs():
    pixels = torch.randint(0, 256, (160, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    return preprocess([Image.fromarray(pixels.numpy())], min_pixels=64 * 64, max_pixels=256 * 256)


@pytest.fixture(scope="module")
def golden():
    return VisionEncoder.from_pretrained("tiny")


def perturbed(encoder: VisionEncoder, parameter: str, scale: float = 0.05) -> VisionEncoder:
    """A copy with one parameter nudged by seeded noise: the 'modified modeling file / bad weight'."""
    twin = copy.deepcopy(encoder)
    weight = twin.get_parameter(parameter)
    with torch.no_grad():
        weight.add_(scale * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    return twin


class SkipsDeepStack(VisionEncoder):
    """Seed 002: a modified forward that never runs the DeepStack mergers."""

    def deepstack_merge(self, layer, hidden):
        return None


def test_same_weights_match_at_every_stage(golden, inputs):
    result = compare(golden, copy.deepcopy(golden), inputs)
    assert result.ok and result.first_divergence is None
    # a copy's weights sit at other addresses, and CPU matmul kernels may split work by alignment: the
    # last bit can differ in a rare run, so "within" is accepted, but only at rounding level
    assert {row.status for row in result} <= {EQUAL, WITHIN}
    assert max(row.max_abs for row in result if row.max_abs is not None) < 1e-5
    assert result["position_ids"].status == result["cu_seqlens"].status == EQUAL  # integers: exact
    names = [row.name for row in result]
    assert names[:5] == ["position_ids", "cu_seqlens", "patch_embed", "pos_embed", "rotary"]
    assert names[5:11] == ["blocks.0.norm1", "blocks.0.attn", "blocks.0.residual1", "blocks.0.norm2", "blocks.0.mlp", "blocks.0"]
    assert names.index("deepstack.0") == names.index("blocks.0") + 1 and names[-1] == "merger"
    assert "within tolerance" in result.verdict


@pytest.mark.parametrize("parameter, stage", [
    ("blocks.2.mlp.linear_fc1.weight", "blocks.2.mlp"),
    ("blocks.1.attn.qkv.weight", "blocks.1.attn"),
    ("blocks.3.norm2.weight", "blocks.3.norm2"),
    ("patch_embed.proj.weight", "patch_embed"),
    ("pos_embed.weight", "pos_embed"),
])
def test_perturbed_weight_is_named_and_introduced_there(golden, inputs, parameter, stage):
    result = compare(golden, perturbed(golden, parameter), inputs)
    first = result.first_divergence
    assert first is not None and first.name == stage
    assert first.status == DIVERGED and first.origin == INTRODUCED and first.origin_how == "replay"
    names = [row.name for row in result]
    assert all(row.status == EQUAL for row in result.stages[: names.index(stage)])
    # every later stage on the main path carries the error in, none makes it
    later = result.stages[names.index(stage) + 1:]
    introduced = [r.name for r in later if r.origin == INTRODUCED]
    block = first.stage.top if first.stage.in_block else None
    assert introduced in ([], [str(block)])  # the block around the step replays as introduced too
    assert result["merger"].status == DIVERGED and result["merger"].origin == INHERITED
    assert f"first divergence: {stage} (introduced here" in "\n".join(result.findings())


def test_perturbed_deepstack_merger_only_touches_its_output(golden, inputs):
    result = compare(golden, perturbed(golden, "deepstack_merger_list.1.linear_fc2.weight"), inputs)
    assert result.first_divergence.name == "deepstack.1"
    assert result.first_divergence.origin == INTRODUCED
    assert [row.name for row in result.diverged] == ["deepstack.1"]  # a side branch: merger stays equal
    assert result["merger"].status == EQUAL


def test_skipped_deepstack_is_a_finding(golden, inputs):
    b = SkipsDeepStack(golden.config)
    b.load_state_dict(golden.state_dict())
    result = compare(golden, b.eval(), inputs)
    assert result.first_divergence.name == "deepstack.0"
    assert [(r.name, r.status) for r in result.diverged] == [("deepstack.0", MISSING_B), ("deepstack.1", MISSING_B)]
    assert "deepstack.0–1 missing in b: the language model would get no DeepStack features" in result.findings()
    assert result["merger"].status == EQUAL
    assert "DIVERGED at deepstack.0 (missing in b)" in result.verdict


def test_wrong_rotary_theta_is_named_and_blocks_inherit_it(golden, inputs):
    b = VisionEncoder(dataclasses.replace(golden.config, rope_theta=1000.0))
    b.load_state_dict(golden.state_dict())
    result = compare(golden, b.eval(), inputs)
    assert result.first_divergence.name == "rotary" and result.first_divergence.origin == INTRODUCED
    assert result["position_ids"].status == EQUAL and result["pos_embed"].status == EQUAL
    assert result["blocks.0.norm1"].status == EQUAL
    attention = result["blocks.0.attn"]
    assert attention.status == DIVERGED and attention.origin == INHERITED  # b's attention on a's rotary is fine
    assert [r.name for r in result.stages if r.origin == INTRODUCED] == ["rotary"]


def test_float32_vs_bfloat16_is_within_the_measured_floor(golden, inputs):
    result = compare(golden, copy.deepcopy(golden).to(torch.bfloat16), inputs)
    assert result.ok, result.verdict
    assert "precision floor" in result.tolerance_note and "precision floor" in result.seconds
    assert result["merger"].status == WITHIN and result["merger"].max_abs > 1e-4
    # a fixed fp32-sized tolerance would call the same run diverged: the floor is what makes it "within"
    assert not compare(golden, copy.deepcopy(golden).to(torch.bfloat16), inputs, atol=1e-5).ok


def test_bfloat16_fault_still_stands_out_of_the_floor(golden, inputs):
    b = perturbed(golden, "blocks.1.mlp.linear_fc2.weight", scale=0.2).to(torch.bfloat16)
    result = compare(golden, b, inputs)
    assert result.first_divergence.name == "blocks.1.mlp"
    assert result.first_divergence.origin == INTRODUCED


def test_worst_patch_is_located_in_raster_order(golden, inputs):
    """An error planted on one row (merge order) is reported at that patch's (t, h, w) and pixel box."""
    b = copy.deepcopy(golden)
    row = 6  # merge order: the third patch of the second 2×2 block
    b.patch_embed.register_forward_hook(lambda _m, _i, out: out.index_add(0, torch.tensor([row]), torch.ones(1, out.shape[1])))
    result = compare(golden, b, inputs)
    first = result.first_divergence
    assert first.name == "patch_embed" and first.diff.row == row
    _, h, w = inputs.grid_thw[0].tolist()
    raster = int(merge_order_to_raster_index(h, w, 2)[row])
    assert first.patch == (0, raster // w, raster % w) == (0, 1, 2)
    box = first.location
    assert (box.left, box.top, box.right, box.bottom) == (32, 16, 48, 32)
    grid = result.error_grid("patch_embed")
    assert grid.shape == (h, w) and tuple(divmod(int(grid.argmax()), w)) == (1, 2)


def test_nan_in_b_is_counted_and_named(golden, inputs):
    b = copy.deepcopy(golden)
    with torch.no_grad():
        b.blocks[1].mlp.linear_fc2.bias[3] = float("nan")
    result = compare(golden, b, inputs)
    first = result.first_divergence
    assert first.name == "blocks.1.mlp" and first.diff.nonfinite_b.nan > 0 and first.diff.nonfinite_a.nan == 0
    assert "b has NaN/Inf from blocks.1.mlp on" in result.findings()


def test_shape_mismatch(golden, inputs):
    b = VisionEncoder(dataclasses.replace(golden.config, out_hidden_size=48)).eval()
    result = compare(golden, b, inputs, substages=False)
    assert result["merger"].status == SHAPE_MISMATCH and result["merger"].shape_b == (result["merger"].shape_a[0], 48)


def test_displays(golden, inputs):
    result = compare(golden, perturbed(golden, "blocks.2.mlp.linear_fc1.weight"), inputs)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["first_divergence"] == "blocks.2.mlp" and data["ok"] is False
    assert data["stages"][-1]["name"] == "merger" and data["stages"][-1]["worst"]["merged"] is True
    html = result._repr_html_()
    assert "<table>" in html and "diverged, introduced" in html and "DIVERGED at blocks.2.mlp" in html
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(result)
    assert "blocks.2.mlp" in console.export_text()
    figure = result.plot_error_growth()
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()][-1] == "merger"
    assert isinstance(result, Comparison)


def test_b_that_raises_keeps_what_ran_before(golden, inputs):
    """A broken modified copy: the stages before the failure are compared, the rest are missing in b."""
    b = copy.deepcopy(golden)

    def broken(_module, _args, output):
        raise RuntimeError("shape mismatch in my edit")

    b.blocks[2].attn.register_forward_hook(broken)
    result = compare(golden, b, inputs)
    assert result["blocks.1"].status == EQUAL and result["blocks.2.norm1"].status == EQUAL
    assert result.first_divergence.name == "blocks.2.attn" and result.first_divergence.status == MISSING_B
    assert result.findings()[0] == "b's forward raised RuntimeError: shape mismatch in my edit (after blocks.2.norm1)"


def test_dropped_residual_is_named_at_the_residual(golden, inputs):
    """A modified block forward that forgets `x +` before the attention: norm1 and attention still match,
    the first residual (what norm2 receives) does not."""
    from qwen3vl_inspect.model.layers import Block

    class NoResidual(Block):
        def forward(self, x, cu_seqlens, rotary):
            x = self.attn(self.norm1(x), cu_seqlens, rotary)
            return x + self.mlp(self.norm2(x))

    b = copy.deepcopy(golden)
    broken = NoResidual(golden.config)
    broken.load_state_dict(b.blocks[1].state_dict())
    b.blocks[1] = broken.eval()
    result = compare(golden, b, inputs)
    assert result["blocks.1.attn"].status == EQUAL
    first = result.first_divergence
    assert first.name == "blocks.1.residual1" and first.origin == INTRODUCED and first.origin_how == "upstream"
    assert result["blocks.1"].origin == INTRODUCED  # the block replayed on a's input is off too


def test_blocks_only_names_the_block(golden, inputs):
    result = compare(golden, perturbed(golden, "blocks.2.mlp.linear_fc1.weight"), inputs, substages=False)
    assert not any(row.name.count(".") == 2 for row in result)  # no block steps recorded or listed
    assert result.first_divergence.name == "blocks.2" and result.first_divergence.origin == INTRODUCED
