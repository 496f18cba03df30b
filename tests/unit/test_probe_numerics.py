"""The NaN/Inf finder names the module that made them, on our encoder and on transformers' model;
`inject_nonfinite` always undoes itself."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from rich.console import Console
from torch import nn

from qwen3vl_inspect import VisionConfig, VisionEncoder, preprocess
from qwen3vl_inspect.probe import NonFiniteReport, find_first_nonfinite, inject_nonfinite


def assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, f"hook left on {name!r}"


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), f"{key} changed"


@pytest.fixture(scope="module")
def encoder() -> VisionEncoder:
    return VisionEncoder(VisionConfig.preset("tiny")).eval()


@pytest.fixture(scope="module")
def inputs():
    return preprocess([Image.new("RGB", (64, 64), (10, 120, 240))])


def test_clean_model_gives_none(encoder: VisionEncoder, inputs):
    assert find_first_nonfinite(encoder, inputs.pixel_values, inputs.grid_thw) is None
    assert_no_hooks(encoder)


@pytest.mark.parametrize(
    ("target", "where", "expected", "weight"),
    [
        ("blocks.1.mlp.linear_fc1", "output", "blocks.1.mlp.linear_fc1", None),
        ("blocks.2.attn.qkv", "weight", "blocks.2.attn.qkv", "blocks.2.attn.qkv.weight"),
        # PatchEmbed multiplies by proj.weight itself (proj's forward never runs): the culprit is
        # patch_embed, and the weight scan points at the parameter
        ("patch_embed.proj", "weight", "patch_embed", "patch_embed.proj.weight"),
        ("merger.linear_fc2", "output", "merger.linear_fc2", None),
        ("blocks.0.norm2", "output", "blocks.0.norm2", None),
        ("deepstack_merger_list.1.norm", "weight", "deepstack_merger_list.1.norm", "deepstack_merger_list.1.norm.weight"),
    ],
)
def test_finder_names_the_injected_module(encoder: VisionEncoder, inputs, target, where, expected, weight):
    before = snapshot(encoder)
    with inject_nonfinite(encoder, target, where=where, index=5):
        report = find_first_nonfinite(encoder, inputs.pixel_values, inputs.grid_thw)
    assert isinstance(report, NonFiniteReport)
    assert report.module_name == expected and report.inputs_finite and report.call_index == 0
    assert all(s.is_finite for s in report.inputs)
    assert any(s.has_nan for s in report.outputs)
    if weight:
        assert [p.name for p in report.culprit_parameters] == [weight]
    else:
        assert report.nonfinite_parameters == []
    assert_same_weights(encoder, before)
    assert_no_hooks(encoder)
    assert find_first_nonfinite(encoder, inputs.pixel_values, inputs.grid_thw) is None  # fully undone


def test_inf_injection_and_report_rendering(encoder: VisionEncoder, inputs):
    with inject_nonfinite(encoder, "blocks.3.attn.proj", value=float("inf")):
        report = find_first_nonfinite(encoder, inputs.pixel_values, inputs.grid_thw)
    assert report is not None and report.module_name == "blocks.3.attn.proj"
    assert report.outputs[0].posinf_count == 1 and report.modules_with_nonfinite_output > 1
    console = Console(record=True, width=160, color_system=None)
    console.print(report)
    text = console.export_text()
    assert "blocks.3.attn.proj (Linear)" in text and "+Inf×1" in text
    assert "blocks.3.attn.proj" in report.describe() and "<table>" in report._repr_html_()


def test_nan_in_the_inputs_is_reported_as_such(encoder: VisionEncoder, inputs):
    pixels = inputs.pixel_values.clone()
    pixels[3, 7] = float("nan")
    report = find_first_nonfinite(encoder, pixels, inputs.grid_thw)
    assert report is not None and not report.inputs_finite
    assert report.module_name == "patch_embed" and report.inputs[0].nan_count == 1
    assert "entered with the inputs" in report.describe()


def test_weights_restored_when_the_block_raises(encoder: VisionEncoder):
    before = snapshot(encoder)
    with pytest.raises(RuntimeError, match="boom"):
        with inject_nonfinite(encoder, "blocks.0.attn.qkv", where="weight", index=-1):
            assert torch.isnan(encoder.blocks[0].attn.qkv.weight).sum() == 1
            raise RuntimeError("boom")
    assert_same_weights(encoder, before)
    with pytest.raises(RuntimeError, match="boom"):
        with inject_nonfinite(encoder, "merger", where="output"):
            raise RuntimeError("boom")
    assert_no_hooks(encoder)


def test_bad_injection_arguments(encoder: VisionEncoder):
    with pytest.raises(ValueError, match="blocks.0.attn"):
        with inject_nonfinite(encoder, "blocks.0.atn"):
            pass
    with pytest.raises(ValueError, match="where"):
        with inject_nonfinite(encoder, "merger", where="input"):  # type: ignore[arg-type]
            pass
    with pytest.raises(IndexError):
        with inject_nonfinite(encoder, "merger.linear_fc2", where="weight", index=10**9):
            pass


def test_hooks_removed_when_the_forward_fails(encoder: VisionEncoder, inputs):
    with pytest.raises(RuntimeError):
        find_first_nonfinite(encoder, inputs.pixel_values[:, :10], inputs.grid_thw)
    assert_no_hooks(encoder)


# ---- transformers' Qwen3VLForConditionalGeneration -----------------------------------------------


@pytest.fixture(scope="module")
def hf():
    """Tiny HF model with in-vocabulary special tokens, and inputs with one 4×4-patch image."""
    pytest.importorskip("transformers")
    from helpers_hf import tiny_hf_model_with_image_inputs

    return tiny_hf_model_with_image_inputs()


def test_hf_clean_model_gives_none(hf):
    model, kwargs = hf
    assert find_first_nonfinite(model, **kwargs) is None
    assert_no_hooks(model)


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("model.visual.blocks.1.mlp.linear_fc1", "output"),
        ("model.visual.blocks.2.attn.qkv", "weight"),
        ("model.visual.merger.linear_fc1", "output"),
        ("model.language_model.layers.0.self_attn.q_proj", "output"),
        ("model.language_model.layers.1.mlp.down_proj", "weight"),
    ],
)
def test_hf_finder_names_the_injected_module(hf, target, where):
    model, kwargs = hf
    before = snapshot(model)
    with inject_nonfinite(model, target, where=where):
        report = find_first_nonfinite(model, **kwargs)
    assert report is not None and report.module_name == target and report.inputs_finite
    if where == "weight":
        assert [p.name for p in report.culprit_parameters] == [f"{target}.weight"]
    assert_same_weights(model, before)
    assert_no_hooks(model)
