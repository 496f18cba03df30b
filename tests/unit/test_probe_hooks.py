"""ForwardHookManager: glob matching, captured shapes, and hooks that never outlive their scope."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from rich.console import Console
from torch import nn

from qwen3vl_inspect import VisionConfig, VisionEncoder, preprocess
from qwen3vl_inspect.probe import ForwardHookManager, capture


def assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks, f"forward hook left on {name!r}"
        assert not module._forward_pre_hooks, f"pre-hook left on {name!r}"


@pytest.fixture(scope="module")
def encoder() -> VisionEncoder:
    return VisionEncoder(VisionConfig.preset("tiny")).eval()


@pytest.fixture(scope="module")
def inputs():
    return preprocess([Image.new("RGB", (64, 64), (200, 30, 30))])  # upscaled to 256×256: 16×16 patches


def test_glob_patterns_match_modules(encoder: VisionEncoder):
    manager = ForwardHookManager()
    try:
        assert manager.register_module_hooks(encoder, ["blocks.*.attn"]) == [f"blocks.{i}.attn" for i in range(4)]
        assert manager.register_module_hooks(encoder, "blocks.?.mlp") == [f"blocks.{i}.mlp" for i in range(4)]
        assert manager.register_module_hooks(encoder, ["merger", "patch_embed"]) == ["patch_embed", "merger"]
        # `*` stays inside one dotted component; `**` crosses them
        assert manager.register_module_hooks(encoder, "blocks.*") == [f"blocks.{i}" for i in range(4)]
        assert "blocks.2.attn.qkv" in manager.register_module_hooks(encoder, "blocks.**")
        assert manager.register_module_hooks(encoder, "blocks.[13].norm?") == [
            "blocks.1.norm1", "blocks.1.norm2", "blocks.3.norm1", "blocks.3.norm2"
        ]
    finally:
        manager.remove_hooks()
    assert_no_hooks(encoder)


def test_unknown_name_raises_with_close_matches(encoder: VisionEncoder):
    manager = ForwardHookManager()
    with pytest.raises(ValueError, match=r"blocks\.0\.attn"):
        manager.register_module_hooks(encoder, ["blocks.0.atn"])
    with pytest.raises(ValueError, match="no module matches"):
        manager.register_module_hooks(encoder, ["decoder.*.xyz"])
    with pytest.raises(ValueError):  # a bad name among good ones registers nothing
        with manager.capture(encoder, ["merger", "mergr"]):
            pass
    assert_no_hooks(encoder)


def test_captured_shapes_and_stats(encoder: VisionEncoder, inputs):
    with capture(encoder, ["patch_embed", "blocks.*.attn", "merger", "deepstack_merger_list.*"]) as hooks:
        encoder(inputs.pixel_values, inputs.grid_thw)
    assert_no_hooks(encoder)
    names = [r.module_name for r in hooks.records]
    assert names[0] == "patch_embed" and names[-1] == "merger"
    assert hooks.records_for("patch_embed")[0].inputs[0].shape == (256, 1536)
    assert hooks.records_for("patch_embed")[0].outputs[0].shape == (256, 64)
    attn = hooks.records_for("blocks.*.attn")
    assert len(attn) == 4 and all(r.output_shapes == [(256, 64)] for r in attn)
    assert attn[0].inputs[0].name == "input[0]" and attn[0].module_type == "Attention"
    assert hooks.records_for("merger")[0].outputs[0].shape == (64, 96)
    assert len(hooks.records_for("deepstack_merger_list.*")) == 2
    assert all(r.outputs[0].is_finite and r.input_tensors == {} for r in hooks.records)


def test_keep_tensors_and_call_index(encoder: VisionEncoder, inputs):
    manager = ForwardHookManager()
    with manager.capture(encoder, "merger", keep_tensors=True):
        out1 = encoder(inputs.pixel_values, inputs.grid_thw)
        encoder(inputs.pixel_values, inputs.grid_thw)
    records = manager.records_for("merger")
    assert [r.call_index for r in records] == [0, 1]
    kept = records[0].output
    assert kept is not None and kept.device.type == "cpu" and not kept.requires_grad
    assert torch.equal(kept, out1.pooler_output)
    manager.clear()
    assert manager.records == []


def test_hooks_removed_when_the_forward_raises(encoder: VisionEncoder, inputs):
    with pytest.raises(RuntimeError):
        with capture(encoder, ["blocks.*", "merger"]):
            encoder(inputs.pixel_values[:, :100], inputs.grid_thw)  # wrong patch width
    assert_no_hooks(encoder)
    with pytest.raises(KeyError):
        with ForwardHookManager().capture(encoder, "blocks.*.mlp.*"):
            raise KeyError("user code failed inside the block")
    assert_no_hooks(encoder)


def test_seed_style_register_summary_remove(encoder: VisionEncoder, inputs):
    hooks = ForwardHookManager()
    hooks.register_module_hooks(encoder, ["blocks.0", "merger"])
    encoder(inputs.pixel_values, inputs.grid_thw)
    console = Console(record=True, width=160, color_system=None)
    hooks.print_summary(console=console)
    text = console.export_text()
    assert "blocks.0" in text and "merger" in text and "[64, 96]" in text
    assert "<table>" in hooks._repr_html_()
    hooks.remove_hooks()
    assert_no_hooks(encoder)


# ---- transformers' model: names nest under `model.`, outputs are ModelOutputs ---------------------


def hf_model_and_inputs():
    pytest.importorskip("transformers")
    from helpers_hf import tiny_hf_model_with_image_inputs

    return tiny_hf_model_with_image_inputs()


def test_hf_model_globs_and_model_outputs():
    model, kwargs = hf_model_and_inputs()
    with torch.no_grad(), capture(model, ["model.visual.blocks.*.attn", "model.visual", "lm_head"]) as hooks:
        model(**kwargs)
    assert_no_hooks(model)
    attn = hooks.records_for("model.visual.blocks.*.attn")
    assert len(attn) == 4 and all(r.outputs[0].shape == (16, 64) for r in attn)
    visual = hooks.records_for("model.visual")[0]
    labels = [s.name for s in visual.outputs]
    assert "output.last_hidden_state" in labels and "output.pooler_output" in labels
    assert hooks.records_for("lm_head")[0].outputs[0].shape == (1, 10, 1000)
    # seed scripts name the tower `visual.…`; a dotted-suffix match finds it under `model.`
    manager = ForwardHookManager()
    assert manager.register_module_hooks(model, ["visual.blocks.0"]) == ["model.visual.blocks.0"]
    manager.remove_hooks()
    assert_no_hooks(model)
