"""The command line on the embedded default image: output, files and error exits."""

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from qwen3vl_inspect import VisionConfig, VisionEncoder
from qwen3vl_inspect.cli import main


def test_trace_on_demo_image_prints_every_stage(capsys):
    assert main(["trace", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    for stage in ("patch_embed", "pos_embed", "rotary", "blocks.0", "blocks.3", "deepstack.1", "merger"):
        assert stage in out
    assert "[432, 1536]" in out and "[432, 64]" in out and "[108, 96]" in out  # 400×300 demo → 18×24 grid
    assert "random weights" in out


def test_trace_json_lists_substages(capsys):
    assert main(["trace", "--model", "tiny", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["grid_thw"] == [[1, 18, 24]] and data["computed"] == data["total"]
    block = next(s for s in data["stages"] if s["name"] == "blocks.1")
    assert [s["name"].split(".")[-1] for s in block["substages"]] == ["norm1", "attn", "residual1", "norm2", "mlp", "residual2"]
    assert block["stats"]["has_nan"] is False


def test_bare_image_argument_runs_the_walkthrough(tmp_path, capsys):
    Image.new("RGB", (64, 96), (10, 200, 30)).save(tmp_path / "green.png")
    assert main([str(tmp_path / "green.png"), "--model", "tiny", "--min-pixels", "4096"]) == 0
    assert "[24, 1536]" in capsys.readouterr().out  # 64×96 stays 64×96 → 4×6 patches


def test_stats_clean_run_exits_0(capsys):
    assert main(["stats", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "blocks.2.mlp" in out and "merger" in out


def test_stats_names_the_module_that_made_nan(tmp_path, capsys):
    encoder = VisionEncoder(VisionConfig.preset("tiny"))
    with torch.no_grad():
        encoder.blocks[2].mlp.linear_fc1.weight[3, 5] = float("nan")
    encoder.save_pretrained(tmp_path / "broken")
    assert main(["stats", "--model", str(tmp_path / "broken")]) == 3
    captured = capsys.readouterr()
    assert "stage blocks.2, produced by module blocks.2.mlp.linear_fc1" in captured.err
    assert "blocks.2.mlp.linear_fc1.weight" in captured.err


def test_attention_png(tmp_path, capsys):
    out_png = tmp_path / "map.png"
    assert main(["attention", "--model", "tiny", "--layer", "1", "--head", "2", "--query", "4,7", "-o", str(out_png)]) == 0
    assert "query patch (row 4, col 7)" in capsys.readouterr().out
    with Image.open(out_png) as png:
        assert png.format == "PNG" and png.width > 300
    assert main(["attention", "--model", "tiny", "--layer", "2", "--rollout", "-o", str(out_png)]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["trace", "missing.jpg", "--model", "tiny"], "missing.jpg: file not found"),
        (["trace", "--model", "no-such-model"], "no-such-model: no such checkpoint folder or preset"),
        (["info", "--model", "/"], "config file not found"),
        (["trace", "--model", "tiny", "--max-pixels", "10"], "max_pixels"),
        (["attention", "--model", "tiny", "--layer", "9", "-o", "x.png"], "layer 9 does not exist"),
        (["attention", "--model", "tiny", "--layer", "1", "--query", "40,1", "-o", "x.png"], "outside the 18×24 patch grid"),
        (["attention", "--model", "tiny", "--layer", "1", "--query", "a", "-o", "x.png"], "expected ROW,COL"),
        (["attention", "--model", "tiny", "--layer", "1", "-o", "/no/such/dir/x.png"], "folder does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "\n" not in err and "Traceback" not in err


def test_module_entry_point_exit_code_and_no_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = subprocess.run([sys.executable, "-m", "qwen3vl_inspect", str(tmp_path / "notes.txt"), "--model", "tiny"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "notes.txt" in result.stderr and "Traceback" not in result.stderr


def test_info_names_the_weights_source(capsys):
    assert main(["info", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "random weights" in out and "blocks" in out
