"""The command line on the embedded default: output and error exits."""

import subprocess
import sys

import pytest

from qwen3vl_inspect.cli import main


def test_shapes_on_demo_image_prints_every_stage(capsys):
    assert main(["shapes", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    for stage in ("patch embedding", "position embedding", "rotary embedding", "blocks.0", "blocks.3", "merger"):
        assert stage in out
    assert "[432, 1536]" in out and "[432, 64]" in out and "[108, 96]" in out  # 400×300 demo → 18×24 grid
    assert "random weights" in out


def test_bare_image_argument_runs_the_walkthrough(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (64, 96), (10, 200, 30)).save(tmp_path / "green.png")
    assert main([str(tmp_path / "green.png"), "--model", "tiny", "--min-pixels", "4096"]) == 0
    assert "[24, 1536]" in capsys.readouterr().out  # 64×96 stays 64×96 → 4×6 patches


@pytest.mark.parametrize(
    "argv, message",
    [
        (["shapes", "missing.jpg", "--model", "tiny"], "missing.jpg: file not found"),
        (["shapes", "--model", "no-such-model"], "no-such-model: no such checkpoint folder or preset"),
        (["info", "--model", "/"], "config file not found"),
        (["shapes", "--model", "tiny", "--max-pixels", "10"], "max_pixels"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
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
    assert "random weights" in out and "parameters" in out
