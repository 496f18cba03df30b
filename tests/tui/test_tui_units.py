"""The TUI's pure parts, without a terminal: half-block drawing, fitting patches to cells, the
controller's navigation, and the checks that run before the UI starts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from tui_helpers import tui_args

from qwen3vl_inspect import VisionConfig, load_image, preprocess
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.render.halfblock import HEAT_16, HEAT_256, HalfBlock, heat_indices, luminance, palette_rgb, ramp_for
from qwen3vl_inspect.session import check_model, demo_image_path
from qwen3vl_inspect.tracing import stage_names_for
from qwen3vl_inspect.tui.cell_picture import compose, fit, patch_at
from qwen3vl_inspect.tui.controller import Inspector
from qwen3vl_inspect.tui.launch import build_app

# ---- half blocks --------------------------------------------------------------------------------------

def test_halfblock_puts_two_pixels_in_each_cell():
    pixels = np.zeros((3, 2, 3), dtype=np.uint8)  # 3 rows: the last cell has no lower pixel
    pixels[0, 0] = (255, 0, 0)
    pixels[1, 0] = (0, 0, 255)
    picture = HalfBlock(pixels)
    assert (picture.width, picture.height) == (2, 2)
    first = picture.lines[0][0]
    assert first.text == "▀"
    assert first.style.color.triplet == (255, 0, 0) and first.style.bgcolor.triplet == (0, 0, 255)
    assert picture.lines[1][0].style.bgcolor is None  # odd height: terminal background below
    console = Console(width=10, color_system="truecolor", force_terminal=True, record=True, file=open("/dev/null", "w"))
    console.print(picture)
    assert console.export_text().splitlines() == ["▀▀", "▀▀"]


def test_halfblock_joins_runs_and_caches_lines():
    picture = HalfBlock(np.full((4, 6, 3), 40, dtype=np.uint8))
    assert [len(line) for line in picture.lines] == [1, 1]  # one segment per uniform row
    assert picture.lines is picture.lines


def test_heat_ramp_for_256_colours_rises_in_brightness():
    brightness = [luminance(palette_rgb(i)) for i in HEAT_256]
    assert all(a < b for a, b in zip(brightness, brightness[1:]))
    ranks = heat_indices(np.array([[0.0, 0.5, 1.0, np.nan]]))
    assert ranks[0, 0] == HEAT_256[0] and ranks[0, 2] == HEAT_256[-1] and ranks[0, 3] == HEAT_256[0]
    picture = HalfBlock(ranks)
    assert picture.palette and picture.lines[0][0].style.color.number == HEAT_256[0]
    assert ramp_for("truecolor") is None and ramp_for("256") == HEAT_256 and ramp_for("standard") == HEAT_16


# ---- fitting the patch grid --------------------------------------------------------------------------

def test_patches_take_whole_cells_when_they_fit():
    where = fit(18, 24, 52, 35)  # 120×40 terminal: the centre column
    assert (where.patch_px, where.cols, where.px_rows, where.rows) == (2, 48, 36, 18)
    where = fit(18, 24, 26, 12)  # 80×24
    assert (where.patch_px, where.cols, where.rows) == (1, 24, 9)
    small = fit(64, 64, 40, 10)  # more patches than pixels: fractional, aspect kept
    assert small.patch_px == 0 and small.cols == small.px_rows == 20
    assert fit(18, 24, 1, 1) is None


def test_a_pixel_maps_back_to_its_patch():
    where = fit(18, 24, 52, 35)
    for row, col in ((0, 0), (17, 23), (5, 11)):
        assert patch_at(col * 2 + 1, row * 2 + 1, where, (18, 24)) == (row, col)
    assert patch_at(48, 0, where, (18, 24)) is None


def test_compose_outlines_the_query_patch():
    from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec

    image = Image.new("RGB", (384, 288), (128, 128, 128))
    values = np.arange(18 * 24, dtype=float).reshape(18, 24)
    overlay = Overlay(ViewSpec("blocks.0", "attention", 0, None, False, (4, 7)), "x", values=values, query=(4, 7))
    where = fit(18, 24, 72, 27)  # 3 pixels per patch: a ring
    picture = compose(image, overlay, where, (18, 24))
    patch = picture.pixels[12:15, 21:24]
    assert (patch[0, 0] == (0, 255, 255)).all() and not (patch[1, 1] == (0, 255, 255)).all()
    palette = compose(image, overlay, where, (18, 24), palette=HEAT_256)
    assert palette.palette and palette.pixels[12, 21] == 51
    assert set(np.unique(compose(image, overlay, where, (18, 24), palette=HEAT_16).pixels)) <= {*HEAT_16, 14}


# ---- controller ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inspector():
    inputs = preprocess([load_image(demo_image_path())])
    ins = Inspector(demo_image_path(), inputs, VisionConfig.preset("tiny"), "tiny")
    ins.load(lambda text: None)
    return ins


def test_planned_stages_match_the_trace(inspector):
    """The list is drawn from the config before the model exists: it must be the Trace's own plan."""
    assert stage_names_for(inspector.config) == inspector.trace.stage_names
    big = stage_names_for(VisionConfig.preset("qwen3-vl-2b"))
    assert big[5:12] == ["blocks.0", "blocks.1", "blocks.2", "blocks.3", "blocks.4", "blocks.5", "deepstack.0"]
    assert len(big) == 5 + 24 + 3 + 1


def test_navigation_at_the_edges(inspector):
    ins = inspector
    ins.select("blocks.0.mlp")
    assert ins.block_step(1) == "blocks.1.mlp" and ins.block_step(-1) == "blocks.0.mlp"
    assert ins.block_step(-1) is None  # no block before 0
    ins.select("blocks.3")
    assert ins.block_step(1) is None
    ins.select("rotary")
    assert ins.block_step(1) == "blocks.0"
    ins.head, ins.last_head = None, 0
    ins.head_step(-1)
    assert ins.head == 0  # from the mean: the last head shown
    ins.head_step(-1)
    assert ins.head == 3  # wraps
    ins.move_query(-100, 100)
    assert ins.query == (0, 23)
    ins.toggle_breakpoint("blocks.2.attn")
    assert ins.breakpoints == {"blocks.2"}  # steps are computed with their block


def test_breakpoint_pauses_after_its_stage(inspector):
    inputs = preprocess([load_image(demo_image_path())])
    ins = Inspector(demo_image_path(), inputs, VisionConfig.preset("tiny"), "tiny")
    ins.load(lambda text: None)
    ins.toggle_breakpoint("blocks.1")
    results = []
    while (result := ins.step()) is not None:
        results.append(result)
        if result.pause:
            break
    assert results[-1].stage.name == "blocks.1" and results[-1].pause == "blocks.1"
    assert ins.next_name() == "blocks.2"


def test_the_fusion_is_the_last_entry(inspector):
    """After the merger: the list's last entry, computed from the finished Trace; its token moves on the merged grid."""
    ins = inspector
    assert ins.names[-1] == "fusion" and ins.names[:-1] == ins.trace.stage_names
    assert ins.status("fusion") == "pending" and ins.title("fusion") == "vision-to-text fusion"
    ins.trace.run()
    assert not ins.finished and ins.computed == len(ins.names) - 1
    result = ins.fuse()
    assert ins.finished and ins.computed == len(ins.names) and ins.status("fusion") == "done"
    ins.select("fusion")
    ins.move_token(-100, 100)
    assert ins.token == (0, 11)  # clamped to the 9×12 merged grid
    spec = ins.view_spec()
    assert spec.kind == "fusion" and spec.query == (0, 22)
    overlay = ins.cached_overlay(spec)
    assert overlay.values.shape == (9, 12) and overlay.values[0, 0] == 4 and overlay.values[8, 11] == 111
    token = ins.selected_token()
    assert token.index == 15 and token.position == (4, 4, 15) and result.tokens[15] is token
    from qwen3vl_inspect.tui.cell_picture import compose, fit

    where = fit(18, 24, 72, 27)  # 3 pixels per patch: the token's 2×2 patches are 6×6 pixels, outlined
    picture = compose(ins.image, overlay, where, (18, 24))
    ring = (picture.pixels == (0, 255, 255)).all(-1)
    assert ring[0, 66:72].all() and ring[5, 66:72].all() and not ring[2:4, 68:70].any() and ring.sum() == 20


# ---- before the UI starts -------------------------------------------------------------------------------

def test_bad_image_fails_before_the_ui(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken.png"):
        build_app(tui_args(image=str(bad)))
    with pytest.raises(InputError, match="missing.jpg"):
        build_app(tui_args(image=str(tmp_path / "missing.jpg")))


def test_bad_model_fails_before_the_ui(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint folder or preset"):
        check_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        check_model(str(tmp_path / "empty"))
    assert check_model("tiny").depth == 4


def test_command_line_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    result = subprocess.run([sys.executable, "-m", "qwen3vl_inspect", str(bad), "--model", "tiny"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "broken.png" in lines[-1] and "Traceback" not in result.stderr


def test_the_tui_subcommand_parses_its_options():
    from qwen3vl_inspect.cli import build_parser

    args = build_parser().parse_args(["tui", "photo.jpg", "--model", "tiny", "--step", "--max-pixels", "200000"])
    assert (args.command, args.image, args.model, args.step, args.max_pixels) == ("tui", "photo.jpg", "tiny", True, 200000)
    assert args.text == "Describe this image."
    assert build_parser().parse_args(["tui", "--text", "Where is the cat?"]).text == "Where is the cat?"


def test_the_command_line_does_not_import_textual():
    code = "import sys, qwen3vl_inspect.cli, qwen3vl_inspect.tui.launch; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
