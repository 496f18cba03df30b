"""`qwen3vl-inspect compare`: exit 0 within tolerance, 4 on divergence, 2 on bad input; --json and -o."""

import copy
import json

import pytest
import torch

from qwen3vl_inspect import VisionEncoder
from qwen3vl_inspect.cli import main
from qwen3vl_inspect.errors import EXIT_DIVERGED

SMALL = ["--min-pixels", "4096", "--max-pixels", "65536"]


@pytest.fixture(scope="module")
def modified_checkpoint(tmp_path_factory):
    """The tiny preset with one MLP weight changed, saved as a checkpoint folder."""
    encoder = copy.deepcopy(VisionEncoder.from_pretrained("tiny"))
    with torch.no_grad():
        encoder.blocks[2].mlp.linear_fc2.weight.mul_(1.5)
    return encoder.save_pretrained(tmp_path_factory.mktemp("modified") / "tiny-modified")


def test_same_model_exits_0(capsys):
    assert main(["compare", "--model", "tiny", "--against", "tiny", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "within tolerance" in out and "merger" in out


def test_bfloat16_against_float32_exits_0(capsys):
    assert main(["compare", "--model", "tiny", "--against", "tiny", "--dtype-b", "bfloat16", *SMALL]) == 0
    assert "precision floor" in capsys.readouterr().out


def test_divergence_exits_4_with_json_and_heatmap(modified_checkpoint, tmp_path, capsys):
    png = tmp_path / "error.png"
    code = main(["compare", "--model", "tiny", "--against", str(modified_checkpoint), "--json", "-o", str(png), *SMALL])
    assert code == EXIT_DIVERGED == 4
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["first_divergence"] == "blocks.2.mlp"
    assert data["findings"][0].startswith("first divergence: blocks.2.mlp (introduced here")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_divergence_table_names_the_stage(modified_checkpoint, capsys):
    assert main(["compare", "--model", "tiny", "--against", str(modified_checkpoint), *SMALL]) == 4
    out = capsys.readouterr().out
    assert "DIVERGED at blocks.2.mlp (introduced there)" in out


@pytest.mark.parametrize("argv, message", [
    (["--against", "no-such-model"], "no-such-model"),
    (["--against", "missing.onnx"], "missing.onnx: no such file"),
    (["--against", "tiny", "-o", "out.jpg"], "must name a .png"),
    (["--against", "tiny", "--stage", "blocks.99", "-o", "{tmp}/e.png"], "--stage 'blocks.99'"),
])
def test_bad_input_exits_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["compare", "--model", "tiny", *SMALL, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
