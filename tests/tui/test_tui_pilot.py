"""The TUI's main flows, driven by keys and clicks through Textual's Pilot on the demo image (tiny preset)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import torch
from tui_helpers import DEBUGGER_CALLS, run_done, until, view_ready

from qwen3vl_inspect import VisionConfig, VisionEncoder
from qwen3vl_inspect.render.halfblock import HEAT_256
from qwen3vl_inspect.tui.controller import NONFINITE
from qwen3vl_inspect.tui.screens.help_screen import HelpScreen
from qwen3vl_inspect.tui.widgets.image_view import ImageView
from qwen3vl_inspect.tui.widgets.run_status import RunStatus
from qwen3vl_inspect.tui.widgets.stage_list import StageList
from qwen3vl_inspect.tui.widgets.too_small import TooSmall
from qwen3vl_inspect.tui.widgets.view_caption import ViewCaption

SIZE = (120, 40)


def text_of(widget) -> str:
    """What a Static shows, as plain text."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(widget.content)
    return console.export_text()


def test_step_through_every_stage(make_app):
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            seen = [ins.selected]
            for _ in range(len(ins.names) - 1):
                await pilot.press("n")
                await until(pilot, lambda: view_ready(app), what=f"the view after {seen[-1]}")
                seen.append(ins.selected)
            assert seen == ins.names == [*ins.trace.stage_names, "fusion"]  # the encoder's order, then the fusion
            assert ins.view_kind() == "fusion"
            await pilot.press("p")
            assert ins.selected == ins.names[-2] == "merger"
            await until(pilot, lambda: view_ready(app), what="the merger")
            assert ins.view_kind() == "norms" and "merged token" in text_of(app.screen.query_one(ViewCaption))
            assert "DONE" in text_of(app.screen.query_one(RunStatus))

    asyncio.run(scenario())


def test_block_steps_open_under_their_block(make_app):
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            while ins.selected != "blocks.1":
                await pilot.press("n")
            await pilot.press("enter")  # open block 1's steps
            for expected in ("blocks.1.norm1", "blocks.1.attn", "blocks.1.residual1", "blocks.1.norm2", "blocks.1.mlp"):
                await pilot.press("n")
                assert ins.selected == expected
                await until(pilot, lambda: view_ready(app), what=expected)
            assert ins.view_kind() == "norms"  # an MLP shows the norm of each patch
            assert ins.stage("blocks.1.mlp").stats is not None  # computed in the worker, shown in the panel

    asyncio.run(scenario())


def test_block_head_and_query_keys(make_app):
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            await pilot.press(*"nnnnn")  # input → … → block 0
            await until(pilot, lambda: view_ready(app), what="block 0 attention")
            assert ins.selected == "blocks.0" and ins.view_spec().kind == "attention"
            first = list(app.screen.query_one(ImageView)._strips)
            await pilot.press("right_square_bracket")
            assert ins.selected == "blocks.1"
            await pilot.press("left_square_bracket", "right_square_bracket", "right_square_bracket")
            assert ins.selected == "blocks.2" and ins.view_spec().layer == 2
            assert ins.view_spec().head is None  # mean of heads to start
            await pilot.press("full_stop")  # leaves the mean for the last head shown (0)
            assert ins.view_spec().head == 0
            await pilot.press("full_stop", "full_stop", "comma", "full_stop")
            assert ins.view_spec().head == 2
            row, col = ins.query
            await pilot.press("l", "l", "j", "k", "k", "k", "h")
            assert ins.query == (row - 2, col + 1)
            await until(pilot, lambda: view_ready(app), what="the new query's map")
            overlay = app.screen.query_one(ImageView).overlay
            assert overlay.query == (row - 2, col + 1) and overlay.spec.head == 2
            assert list(app.screen.query_one(ImageView)._strips) != first
            assert "head 2 of 4" in text_of(app.screen.query_one(ViewCaption))
            # arrows move the query once the image has the focus (in the list they move the cursor)
            app.screen.query_one(ImageView).focus()
            await pilot.press("down", "left")
            assert ins.query == (row - 1, col) and ins.selected == "blocks.2"

    asyncio.run(scenario())


def test_click_on_the_image_picks_the_query(make_app):
    async def scenario():
        app = make_app(colors="256")  # a 256-colour terminal: the heat ramp in palette colours
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            await pilot.press(*"nnnnn", "right_square_bracket")
            await until(pilot, lambda: view_ready(app), what="block 1 attention")
            image = app.screen.query_one(ImageView)
            fit = image._fit
            k = fit.patch_px
            assert k >= 1  # 18×24 patches fit whole cells at 120×40
            left = (image.content_size.width - fit.cols) // 2
            row, col = 5, 17
            y = (row * k + k // 2) // 2  # a cell holds two pixel rows; a click means its top one
            await pilot.click(ImageView, offset=(left + col * k + k // 2, y))
            assert ins.query == (2 * y // k, col)
            await until(pilot, lambda: view_ready(app), what="the clicked query's map")
            assert image.overlay.query == ins.query and app.screen.focused is image
            assert image._picture.palette and set(np.unique(image._picture.pixels)) <= {*HEAT_256, 51}

    asyncio.run(scenario())


def test_mean_rollout_and_received_toggles(make_app):
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            await pilot.press(*"nnnnn", "right_square_bracket", "right_square_bracket")
            await pilot.press("full_stop", "m")
            assert ins.view_spec().head is None
            await pilot.press("m")
            assert ins.view_spec().head == 0
            await pilot.press("r")
            await until(pilot, lambda: view_ready(app), what="rollout")
            spec = ins.view_spec()
            assert spec.rollout and spec.head is None
            assert "rollout of blocks 0–2" in text_of(app.screen.query_one(ViewCaption))
            await pilot.press("v")
            await until(pilot, lambda: view_ready(app), what="attention received")
            overlay = app.screen.query_one(ImageView).overlay
            assert overlay.spec.query is None and overlay.query is None
            assert "attention received" in overlay.what
            assert abs(float(overlay.values.sum()) - 1.0) < 1e-3  # column means of row-stochastic maps sum to 1
            await pilot.press("r", "v")
            assert not ins.view_spec().rollout and ins.view_spec().query == ins.query
            await pilot.press("a")  # the block's norms instead of its attention
            assert ins.view_kind() == "norms"

    asyncio.run(scenario())


def test_save_png_and_export_json(make_app, tmp_path):
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            await pilot.press(*"nnnnn", "full_stop")
            await until(pilot, lambda: view_ready(app), what="block 0")
            await pilot.press("s")
            await until(pilot, lambda: any(tmp_path.glob("*.png")), what="the PNG")
            await pilot.press("e")
            await until(pilot, lambda: any(tmp_path.glob("*.json")), what="the JSON")
            await until(pilot, lambda: "saved JSON" in app.inspector.run.activity, what="the path in the status line")
            assert str(tmp_path) in app.inspector.run.activity

    asyncio.run(scenario())
    png = next(tmp_path.glob("*.png"))
    assert png.name == "demo-blocks.0-h0-q9_12.png"
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.width > 300
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert data["computed"] == data["total"] == 12 and data["grid_thw"] == [[1, 18, 24]]


def test_step_mode_with_a_breakpoint(make_app):
    async def scenario():
        app = make_app(step=True)
        async with app.run_test(size=SIZE) as pilot:
            ins = app.inspector
            await until(pilot, lambda: ins.trace is not None, what="the model")
            await pilot.pause(0.2)
            assert ins.computed == 0  # step mode: nothing runs by itself
            for expected in (1, 2, 3):
                await pilot.press("space")
                await until(pilot, lambda n=expected: ins.computed == n, what=f"stage {expected}")
            assert ins.selected == "patch_embed"  # the cursor follows each step (input, patchify, patch_embed)
            assert "STEP" in text_of(app.screen.query_one(RunStatus))
            app.screen.query_one(StageList).go_to("blocks.1")
            await until(pilot, lambda: ins.selected == "blocks.1", what="the cursor on block 1")
            await pilot.press("b")
            assert ins.breakpoints == {"blocks.1"}
            await pilot.press("c")
            await until(pilot, lambda: ins.run.paused_at == "blocks.1", what="the breakpoint")
            assert ins.trace.stages[-1].name == "blocks.1" and ins.selected == "blocks.1"
            assert "PAUSED" in text_of(app.screen.query_one(RunStatus))
            await pilot.press("space")
            await until(pilot, lambda: ins.computed == 9, what="one more step")
            await pilot.press("c")
            await run_done(pilot)

    asyncio.run(scenario())


def test_help_screen_lists_every_key(make_app):
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            from textual.widgets import Static

            shown = "\n".join(text_of(w) for w in app.screen.query(Static))
            for key, what in (("n / p", "next stage"), ("[ / ]", "next block"), (", / .", "next head"),
                              ("m", "mean"), ("r", "rollout"), ("space", "step"), ("b", "breakpoint"),
                              ("c", "continue"), ("s", "PNG"), ("e", "JSON"), ("q", "quit"), ("h j k l", "query")):
                assert key in shown and what in shown, key
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

    asyncio.run(scenario())


def test_nan_run_flags_the_stage_and_names_the_module(make_app, tmp_path):
    encoder = VisionEncoder(VisionConfig.preset("tiny"))
    with torch.no_grad():
        encoder.blocks[2].mlp.linear_fc1.weight[3, 5] = float("nan")
    folder = encoder.save_pretrained(tmp_path / "broken")

    async def scenario():
        app = make_app(model=str(folder))
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)  # the run goes on past the NaN
            ins = app.inspector
            assert ins.nonfinite[:2] == ("blocks.2", "blocks.2.mlp.linear_fc1")
            assert ins.status("blocks.1") != NONFINITE and ins.status("blocks.2") == NONFINITE
            label = app.screen.query_one(StageList)._stage_labels["blocks.2"]
            assert "✗" in label.plain and any("red" in str(span.style) for span in label.spans)
            assert "blocks.2.mlp.linear_fc1" in text_of(app.screen.query_one(RunStatus))
            assert ins.weights == str(folder)

    asyncio.run(scenario())


def test_a_failing_stage_keeps_the_earlier_ones(make_app, monkeypatch):
    async def scenario():
        app = make_app(step=True)  # nothing runs before the fault is in place
        async with app.run_test(size=SIZE) as pilot:
            ins = app.inspector
            await until(pilot, lambda: ins.trace is not None, what="the model")
            real = ins.encoder.run_block

            def run_block(layer, *args, **kwargs):
                if layer == 2:
                    raise RuntimeError("CPU out of memory (simulated)")
                return real(layer, *args, **kwargs)

            monkeypatch.setattr(ins.encoder, "run_block", run_block)
            await pilot.press("c")
            await until(pilot, lambda: ins.failure is not None, what="the failure")
            assert ins.failure.stage == "blocks.2" and ins.computed == 8
            assert "FAILED" in text_of(app.screen.query_one(RunStatus))
            app.screen.query_one(StageList).go_to("blocks.1")  # earlier stages still open
            await until(pilot, lambda: ins.selected == "blocks.1" and view_ready(app), what="block 1")
            app.screen.query_one(StageList).go_to("blocks.2")
            await until(pilot, lambda: ins.selected == "blocks.2", what="block 2")
            assert ins.view_kind() == "failed"
            assert "out of memory" in text_of(app.screen.query_one(ViewCaption))
            await pilot.press("space")  # nothing to step: a message, no crash
            assert app.is_running

    asyncio.run(scenario())


def test_below_80x24_a_clear_message(make_app):
    async def scenario():
        app = make_app()
        async with app.run_test(size=(70, 20)) as pilot:
            await pilot.pause()
            message = app.screen.query_one(TooSmall)
            assert message.display and "at least 80×24" in text_of(message) and "70×20" in text_of(message)
            assert not app.screen.query_one("#body").display
            await pilot.resize_terminal(80, 24)
            await until(pilot, lambda: app.screen.query_one("#body").display, what="the normal layout")
            assert not app.screen.query_one(TooSmall).display

    asyncio.run(scenario())


def test_the_fusion_view(make_app, tmp_path):
    """The last entry: the prompt with the image's pads collapsed, position ids, DeepStack plan, and the
    selected merged token moved by keys and by a click, then saved as a PNG."""
    from qwen3vl_inspect.tui.widgets.stage_info import StageInfo

    async def scenario():
        app = make_app(text="What is in the picture?")
        async with app.run_test(size=SIZE) as pilot:
            await run_done(pilot)
            ins = app.inspector
            assert ins.names[-2:] == ["merger", "fusion"] and ins.computed == len(ins.names) == 13
            assert "13/13" in text_of(app.screen.query_one(RunStatus))
            await pilot.press("G")  # the last entry
            await until(pilot, lambda: view_ready(app), what="the fusion view")
            assert ins.selected == "fusion" and ins.view_kind() == "fusion"
            panel = text_of(app.screen.query_one(StageInfo))
            assert "<|vision_start|> <|image_pad|>×108 <|vision_end|> What is in the picture?" in panel
            assert "random stand-in" in panel and "random stand-in" in text_of(app.screen.query_one(ViewCaption))
            assert "4…111" in panel and "4…12" in panel and "4…15" in panel  # the image run: t, h range, w range
            assert "deepstack.0" in panel and "deepstack.1" in panel
            # the selected token: centre of the 9×12 merged grid, token 54 = sequence index 4 + 54
            assert ins.token == (4, 6)
            assert "sequence index 58" in panel and "(t, h, w) = (4, 8, 10)" in panel
            assert "seq 58 (t,h,w)=(4,8,10)" in text_of(app.screen.query_one(ViewCaption))
            overlay = app.screen.query_one(ImageView).overlay
            assert overlay.values.shape == (9, 12) and overlay.query == (8, 12) and overlay.query_span == 2
            await pilot.press("l", "l", "k")  # keys move by one merged token
            assert ins.token == (3, 8)
            await until(pilot, lambda: view_ready(app), what="the moved token")
            panel = text_of(app.screen.query_one(StageInfo))
            assert "sequence index 48" in panel and "(t, h, w) = (4, 7, 12)" in panel
            image = app.screen.query_one(ImageView)
            image.focus()
            await pilot.press("down", "left")  # arrows too, once the image has the focus
            assert ins.token == (4, 7) and ins.selected == "fusion"
            fit = image._fit
            k = fit.patch_px
            left = (image.content_size.width - fit.cols) // 2
            await pilot.click(ImageView, offset=(left + 23 * k, (17 * k) // 2))  # patch (17, 23): the last token
            assert ins.token == (8, 11)
            await until(pilot, lambda: view_ready(app), what="the clicked token")
            assert "sequence index 111" in text_of(app.screen.query_one(StageInfo))
            await pilot.press("s")
            await until(pilot, lambda: "saved PNG" in ins.run.activity, what="the PNG")

    asyncio.run(scenario())
    png = tmp_path / "demo-fusion-seq111.png"
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.width > 300


def test_break_variable_becomes_the_tuis_own_breakpoints(make_app, monkeypatch):
    """breakpoint() in the worker would hang the app for good: the TUI pauses at the stage instead."""
    monkeypatch.setenv("QWEN3VL_INSPECT_BREAK", "blocks.1.attn, nothing.here")
    monkeypatch.setenv("PYTHONBREAKPOINT", "tui_helpers.debugger_called")
    DEBUGGER_CALLS.clear()

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            ins = app.inspector
            assert ins.breakpoints == {"blocks.1"}  # a block step's pattern pauses after its block
            await until(pilot, lambda: ins.run.paused_at == "blocks.1", what="the breakpoint from the variable")
            assert ins.trace.stages[-1].name == "blocks.1" and ins.selected == "blocks.1"
            assert "PAUSED" in text_of(app.screen.query_one(RunStatus))
            notes = [n.message for n in app._notifications]
            assert any("'nothing.here' match no stage" in n and "pausing at blocks.1" in n for n in notes), notes
            await pilot.press("b")  # the usual key removes it
            assert ins.breakpoints == set()
            await pilot.press("c")
            await run_done(pilot)
        assert DEBUGGER_CALLS == []

    asyncio.run(scenario())


def test_break_variable_notice_when_every_pattern_matches(make_app, monkeypatch):
    monkeypatch.setenv("QWEN3VL_INSPECT_BREAK", "deepstack.*")
    app = make_app()
    assert app.inspector.breakpoints == {"deepstack.0", "deepstack.1"}
    [(severity, note)] = app.inspector.notes
    assert severity == "information"
    assert note.startswith("QWEN3VL_INSPECT_BREAK: the run pauses after deepstack.0, deepstack.1")


def test_a_hostile_file_name_is_shown_not_obeyed(make_app, tmp_path):
    import shutil

    from qwen3vl_inspect.session import demo_image_path
    from qwen3vl_inspect.tui.widgets.run_header import RunHeader

    path = tmp_path / "a\x1b]0;PWNED\x07\x1b[2J\u202egnp\nb.png"
    shutil.copy(demo_image_path(), path)

    async def scenario():
        app = make_app(image=str(path))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.inspector.trace is not None, what="the model")
            header = text_of(app.screen.query_one(RunHeader))
            assert "a\\x1b]0;PWNED\\x07\\x1b[2J\\u202egnp\\nb.png" in header
            assert not any(c in header for c in ("\x1b", "\x07", "\u202e"))

    asyncio.run(scenario())


def test_out_of_memory_drawing_attention_is_one_line_in_the_view(make_app, monkeypatch):
    from qwen3vl_inspect import attention_maps

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 746496 bytes.")

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            ins = app.inspector
            await run_done(pilot)
            monkeypatch.setattr(attention_maps, "layer_probabilities", no_memory)
            app.screen.query_one(StageList).go_to("blocks.3")
            await until(pilot, lambda: "could not draw" in text_of(app.screen.query_one(ViewCaption)),
                        what="the failure in the caption")
            caption = " ".join(text_of(app.screen.query_one(ViewCaption)).split())
            assert "out of memory while drawing this view; ask for one head" in caption, caption
            assert "DefaultCPUAllocator" not in caption and app.is_running and ins.done

    asyncio.run(scenario())


def test_an_animated_image_is_noted_inside_the_ui(make_app, tmp_path):
    """The warning would go to stderr under the TUI's screen, unseen: it is a notification instead."""
    from PIL import Image

    frames = [Image.new("RGB", (64, 48), color) for color in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)

    async def scenario():
        app = make_app(image=str(path))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            notes = [n.message for n in app._notifications]
            assert any("animated GIF with 2 frames; using frame 0 only" in n for n in notes), notes

    asyncio.run(scenario())
    assert make_app().inspector.notes == []  # a still image: nothing to say
