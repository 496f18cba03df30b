"""`qwen3vl-inspect IMAGE --against B`: after the run, the stage list is coloured by the comparison."""

from __future__ import annotations

import asyncio

import pytest
import torch
from tui_helpers import run_done, until

from qwen3vl_inspect import VisionEncoder
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.stage_overlays import ERROR, NORMS
from qwen3vl_inspect.tui.widgets.stage_list import StageList

SIZE = (120, 40)


@pytest.fixture(scope="module")
def modified(tmp_path_factory):
    encoder = VisionEncoder.from_pretrained("tiny")
    with torch.no_grad():
        encoder.blocks[2].mlp.linear_fc1.weight.mul_(1.3)
    return str(encoder.save_pretrained(tmp_path_factory.mktemp("b") / "tiny-modified"))


def test_against_colours_the_stage_list(make_app, modified):
    async def scenario():
        app = make_app(against=modified, dtype_b=None)
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            await until(pilot, lambda: "DIVERGED" in ins.run.activity, what="the comparison's verdict")
            assert ins.against.comparison.first_divergence.name == "blocks.2.mlp"
            assert "DIVERGED at blocks.2.mlp" in ins.run.activity
            stages = app.screen.query_one(StageList)
            label = stages.label_for(ins, "blocks.2.mlp", None)
            assert label.plain.endswith(" ≠") and "red" in str(label.spans[-1].style)
            assert stages.label_for(ins, "blocks.3", None).plain.endswith(" ~")  # inherited
            assert stages.label_for(ins, "blocks.2.residual2", None).plain.endswith(" ≠")  # the block output
            assert "≠" not in stages.label_for(ins, "blocks.1", None).plain
            # the selected stage shows its per-patch error against B; x goes back to its own view
            stages.go_to("merger")
            await until(pilot, lambda: ins.selected == "merger", what="merger selected")
            spec = ins.view_spec()
            assert spec.kind == ERROR
            shown = ins.cached_overlay(spec)
            assert shown.values.shape == (ins.grid_h, ins.grid_w) and shown.values.max() > 0
            assert "against" in shown.what and "inherited" in shown.what
            await pilot.press("x")
            assert ins.view_spec().kind == NORMS

    asyncio.run(scenario())


def test_against_a_missing_file_is_refused_before_the_app(make_app):
    with pytest.raises(InputError, match="no such file"):
        make_app(against="missing.onnx")
