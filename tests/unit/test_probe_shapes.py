"""ShapeTracer on the 2B-size tower reproduces the seed guide's shape summary; architecture view.

The 2B preset (random weights) takes a few seconds to build and run on CPU, so one module-scoped
fixture builds it and traces one 400×300 image (→ 18×24 patches = 432, merged to 108 tokens).
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from rich.console import Console
from torch import nn

from qwen3vl_inspect import VisionConfig, VisionEncoder, preprocess
from qwen3vl_inspect.probe import ModelArchitectureInspector, ShapeTracer


def render(obj: object, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(obj)
    return console.export_text()


def assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, f"hook left on {name!r}"


@pytest.fixture(scope="module")
def encoder_2b() -> VisionEncoder:
    return VisionEncoder.from_pretrained("qwen3-vl-2b")


@pytest.fixture(scope="module")
def traced(encoder_2b: VisionEncoder) -> ShapeTracer:
    inputs = preprocess([Image.new("RGB", (400, 300))])
    return ShapeTracer().trace(encoder_2b, inputs.pixel_values, inputs.grid_thw)


def test_seed_shape_summary(traced: ShapeTracer, encoder_2b: VisionEncoder):
    rows = {row.name: row for row in traced.summary()}
    assert rows["(model)"].inputs[0].shape == (432, 1536)  # pixel_values
    assert rows["(model)"].inputs[1].shape == (1, 3)  # grid_thw
    assert rows["patch_embed"].outputs[0].shape == (432, 1024)
    blocks = rows["blocks.*"]
    assert blocks.calls == 24 and not blocks.shapes_vary
    assert blocks.inputs[0].shape == (432, 1024) and blocks.outputs[0].shape == (432, 1024)
    assert rows["merger"].outputs[0].shape == (108, 2048)
    deepstack = rows["deepstack_merger_list.*"]
    assert deepstack.calls == 3 and deepstack.outputs[0].shape == (108, 2048) and not deepstack.shapes_vary
    assert list(rows)[:4] == ["(model)", "patch_embed", "pos_embed", "blocks.*"]
    assert_no_hooks(encoder_2b)
    assert traced.output.pooler_output.shape == (108, 2048)  # the forward's result is kept


def test_records_in_call_start_order_with_depth(traced: ShapeTracer):
    records = traced.records
    assert records[0].name == "" and records[0].depth == 0
    assert [r.index for r in records] == list(range(len(records)))
    by_name = {r.name: r for r in records}
    block, attn, qkv = by_name["blocks.0"], by_name["blocks.0.attn"], by_name["blocks.0.attn.qkv"]
    assert (block.depth, attn.depth, qkv.depth) == (1, 2, 3)
    assert block.index < attn.index < qkv.index  # parents open before their children
    assert qkv.outputs[0].shape == (432, 3072) and qkv.outputs[0].dtype == "float32"
    assert by_name["deepstack_merger_list.0"].index > by_name[f"blocks.{5}"].index  # taps follow their block


def test_json_round_trip(traced: ShapeTracer):
    data = json.loads(traced.to_json())
    assert data["model"] == "VisionEncoder" and len(data["records"]) == len(traced.records)
    merger = next(r for r in data["records"] if r["name"] == "merger")
    assert merger["outputs"][0]["shape"] == [108, 2048] and merger["module_type"] == "PatchMerger"
    assert data == json.loads(json.dumps(traced.to_dict()))


def test_table_tree_and_summary_render(traced: ShapeTracer):
    tree = render(traced.tree(max_depth=1))
    assert "blocks.0–5 ×6 Block" in tree and "merger PatchMerger" in tree and "norm1" not in tree
    assert "norm1" in render(traced.tree(max_depth=2))
    console = Console(record=True, width=200, color_system=None)
    traced.print_table(max_depth=1, console=console)
    traced.print_summary(console=console)
    text = console.export_text()
    assert "deepstack_merger_list.2" in text and "[108, 2048]" in text and "blocks.*" in text
    assert "blocks.*" in traced._repr_html_()


def test_capture_records_own_calls_and_cleans_up():
    encoder = VisionEncoder(VisionConfig.preset("tiny")).eval()
    inputs = preprocess([Image.new("RGB", (64, 64))])
    with pytest.raises(RuntimeError):
        with ShapeTracer().capture(encoder) as tracer:
            with torch.no_grad():
                encoder(inputs.pixel_values, inputs.grid_thw)
                encoder(inputs.pixel_values[:, :7], inputs.grid_thw)
    assert_no_hooks(encoder)
    roots = [r for r in tracer.records if r.name == ""]
    assert [r.call_index for r in roots] == [0, 1]
    assert roots[0].outputs and roots[1].outputs == []  # the failed call never finished


def test_architecture_collapses_identical_blocks(encoder_2b: VisionEncoder):
    text = render(ModelArchitectureInspector.architecture_tree(encoder_2b, max_depth=2))
    assert "blocks.0–23 ×24 Block" in text
    assert "deepstack_merger_list.0–2 ×3 PatchMerger" in text
    assert "qkv" not in text  # depth 3 is cut
    count = ModelArchitectureInspector.count_parameters(encoder_2b)
    assert count.total == sum(p.numel() for p in encoder_2b.parameters()) == count.trainable
    assert sum(count.by_child.values()) == count.total
    assert count.bytes_by_dtype == {"float32": 4 * count.total}
    assert "blocks" in render(count)
