"""The notebook controllers and front ends without a browser: every choice a user can make gives the
numbers the Trace gives, clicks map to patches, NaN shows up red, widgets redraw when told to."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.notebook import (
    AttentionController,
    StatsController,
    StepperController,
    open_trace,
    stage_html,
    trace_html,
)
from qwen3vl_inspect.notebook import widget_picture
from qwen3vl_inspect.probe import inject_nonfinite
from qwen3vl_inspect import stage_overlays
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec

GRID = (18, 24)  # the demo image in patches


# ---- AttentionController -------------------------------------------------------------------------------


def test_attention_choices_give_the_traces_numbers(tiny_trace):
    c = AttentionController(tiny_trace, layer=1)
    row, col = c.query
    q = row * GRID[1] + col
    assert (c.layer, c.mode, c.query) == (1, "mean", (GRID[0] // 2, GRID[1] // 2))
    np.testing.assert_allclose(c.overlay().values, tiny_trace.attention(1).mean(0)[q].reshape(GRID), rtol=1e-5)
    c.set_head(2)
    assert c.mode == "head"
    np.testing.assert_allclose(c.overlay().values, tiny_trace.attention(1, 2)[q].reshape(GRID), rtol=1e-5)
    c.set_mode("rollout")
    np.testing.assert_allclose(c.overlay().values, tiny_trace.rollout(1)[q].reshape(GRID), rtol=1e-5)
    c.set_received(True)
    np.testing.assert_allclose(c.overlay().values, tiny_trace.rollout(1).mean(0).reshape(GRID), rtol=1e-5)
    assert "received" in c.caption()


def test_clicks_pick_the_patch_under_the_pointer(tiny_trace):
    c = AttentionController(tiny_trace)
    assert c.click(0.0, 0.0) == (0, 0)
    assert c.click(1.0, 1.0) == (GRID[0] - 1, GRID[1] - 1)
    assert c.click((7 + 0.5) / GRID[1], (3 + 0.5) / GRID[0]) == (3, 7)
    assert c.click(-0.2, 1.7) == (GRID[0] - 1, 0)  # outside the picture: clamped to the edge
    c.set_received(True)
    c.click(0.5, 0.5)
    assert not c.received, "a click asks where that patch looks"
    assert "(9,12)" in c.caption()


def test_attention_picture_changes_with_the_query_and_outlines_it(tiny_trace):
    c = AttentionController(tiny_trace, layer=0)
    first = c.png()
    c.set_query(2, 3)
    picture = c.picture()
    scale = picture.width // c.image.width
    assert c.png() != first
    cell = 16 * scale
    assert picture.getpixel((3 * cell, 2 * cell + cell // 2)) == widget_picture.QUERY_RGB  # left edge of patch (2, 3)


def test_bad_choices_are_refused_with_the_valid_range(tiny_trace):
    c = AttentionController(tiny_trace)
    with pytest.raises(InputError, match=r"0\.\.3"):
        c.set_layer(4)
    with pytest.raises(InputError, match="heads are numbered"):
        c.set_head(-1)
    with pytest.raises(InputError, match="rollout"):
        c.set_mode("max")


def test_nonfinite_cells_are_painted_red():
    from PIL import Image

    values = np.ones((2, 3))
    values[1, 2] = np.nan
    shown = Overlay(ViewSpec("blocks.0", stage_overlays.NORMS), "test", values=values)
    picture = widget_picture.render(Image.new("RGB", (48, 32), (0, 0, 0)), shown, scale=1)
    assert picture.getpixel((40, 24)) == widget_picture.NONFINITE_RGB
    assert picture.getpixel((8, 8)) != widget_picture.NONFINITE_RGB


# ---- StepperController ---------------------------------------------------------------------------------


def test_stepper_walks_stages_and_block_steps_computing_as_it_goes(tiny_trace):
    c = StepperController(tiny_trace)
    assert c.selected == "input" and len(tiny_trace.stages) == 1
    seen = [c.selected] + [c.step() for _ in range(11)]
    assert seen == ["input", "patchify", "patch_embed", "pos_embed", "rotary", "blocks.0", "blocks.0.norm1",
                    "blocks.0.attn", "blocks.0.residual1", "blocks.0.norm2", "blocks.0.mlp", "blocks.0.residual2"]
    assert len(tiny_trace.stages) == 6, "block steps come from the computed block, nothing more runs"
    assert c.step() == "deepstack.0"
    assert c.back() == "blocks.0.residual2"
    c.set_substages(False)
    assert c.selected == "blocks.0" and "blocks.0.attn" not in c.names()
    assert c.first() == "input"
    assert c.run_to_end() == "merger" and c.at_end
    assert c.step() == "merger"


def test_stepper_views_follow_the_stage_kind(tiny_trace):
    c = StepperController(tiny_trace)
    c.run_to("blocks.1.attn")
    assert c.view_spec().kind == stage_overlays.ATTENTION and c.view_spec().query is None
    c.select("patchify")
    assert c.view_spec().kind == stage_overlays.PATCHIFY and c.overlay().groups == 2
    c.run_to("merger")
    shown = c.overlay()
    assert shown.spec.kind == stage_overlays.NORMS
    assert shown.values.shape == (GRID[0] // 2, GRID[1] // 2)
    with pytest.raises(InputError):
        StepperController(open_trace(encoder=tiny_trace.encoder)).select("merger")


def test_a_failing_stage_is_shown_and_earlier_stages_stay(tiny_trace, monkeypatch):
    def broken(_hidden):
        raise RuntimeError("merger exploded")

    monkeypatch.setattr(tiny_trace.encoder, "merge", broken)
    c = StepperController(tiny_trace)
    c.run_to_end()
    assert "merger exploded" in c.error and "merger exploded" in c.progress()
    assert c.selected == "blocks.3.residual2"
    assert c.step() == "blocks.3.residual2"


# ---- StatsController and HTML --------------------------------------------------------------------------


def test_stats_rows_and_the_first_nonfinite_stage(tiny_encoder):
    with inject_nonfinite(tiny_encoder, "blocks.2.mlp.linear_fc1", where="weight"):
        bad = open_trace(encoder=tiny_encoder, keep="all")
        bad.run()
    c = StatsController(bad)
    assert [r.name for r in c.rows()] == bad.stage_names
    assert c.first_nonfinite().name == "blocks.2"
    c.substages = True
    assert len(c.rows()) == len(bad.stage_names) + 6 * bad.config.depth
    assert c.first_nonfinite().name == "blocks.2.mlp"
    c.only_nonfinite = True
    assert all(r.nonfinite for r in c.rows()) and c.rows()[0].name == "blocks.2"
    page = c.html()
    assert "NaN×" in page and "color:#d00" in page
    table = trace_html(bad)
    assert all(name in table for name in bad.stage_names)
    assert "first NaN/Inf: blocks.2" in table


def test_stage_and_trace_html(tiny_trace):
    tiny_trace.run_to("blocks.0")
    page = trace_html(tiny_trace)
    assert f"{len(tiny_trace.stages)} of {len(tiny_trace.stage_names)} stages computed" in page
    assert "not computed yet: deepstack.0" in page
    card = stage_html(tiny_trace["blocks.0.attn"])
    assert "Self-attention" in card and "[432, 64]" in card and "<script" not in card


def test_ipython_displays_traces_and_stages_as_html(tiny_trace):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        data, _ = shell.display_formatter.format(tiny_trace)
        assert "<b>Trace</b>" in data["text/html"]
        tiny_trace.step()
        data, _ = shell.display_formatter.format(tiny_trace["input"])
        assert "input &amp; resize" in data["text/html"]
    finally:
        InteractiveShell.clear_instance()


# ---- the ipywidgets front ends, without a browser -------------------------------------------------------


def test_attention_explorer_redraws_on_controls_and_clicks(tiny_trace):
    from qwen3vl_inspect.notebook import AttentionExplorer

    explorer = AttentionExplorer(tiny_trace, layer=0)
    version, picture = explorer.picture.version, explorer.picture.value
    explorer.picture._handle_custom_msg({"type": "click", "x": (5 + 0.5) / GRID[1], "y": (4 + 0.5) / GRID[0]}, [])
    assert explorer.controller.query == (4, 5)
    assert explorer.picture.version == version + 1 and explorer.picture.value != picture
    assert "where query (4,5) looks" in explorer.caption.value
    explorer.head.value = 3
    assert explorer.mode.value == "head" and "head 3" in explorer.caption.value
    explorer.block.value = 2
    explorer.target.value = "received"
    assert explorer.controller.state() == {"layer": 2, "head": 3, "mode": "head", "query": (4, 5), "received": True}
    explorer.picture._handle_custom_msg({"type": "other"}, [])  # unknown messages are ignored
    assert explorer.controller.received


def test_stage_stepper_and_stats_table_widgets(tiny_trace):
    from qwen3vl_inspect.notebook import StageStepper, StatsTable

    stepper = StageStepper(tiny_trace)
    assert stepper.back_button.disabled
    for _ in range(2):
        stepper.step_button.click()
    assert stepper.stages.value == "patch_embed" and "patch embedding" in stepper.panel.value
    assert stepper.picture.value[:4] == b"\x89PNG"
    stepper.stages.value = "patchify"
    assert stepper.controller.selected == "patchify"
    stepper.run_button.click()
    assert stepper.run_button.disabled and stepper.stages.value == "merger"
    table = StatsTable(tiny_trace)
    assert table.table.value.count("<tr") == len(tiny_trace.stage_names) + 1
    table.substages.value = True
    assert table.table.value.count("<tr") == len(tiny_trace.all_stages()) + 1


def test_front_end_code_is_inline_and_loads_nothing_from_the_network():
    from qwen3vl_inspect.notebook import ClickableImage

    esm = ClickableImage._esm
    assert "export default" in esm and "http" not in esm and "import " not in esm


def test_controllers_import_without_ipywidgets():
    code = ("import sys, qwen3vl_inspect.notebook as nb\n"
            "print(','.join(m for m in ('ipywidgets', 'anywidget') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
