"""`qwen3vl-inspect fusion`: the table view, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from qwen3vl_inspect.cli import main


def test_fusion_table_collapses_pads_and_shows_positions_and_deepstack(capsys):
    assert main(["fusion", "--model", "tiny", "--text", "What is this?"]) == 0
    out = capsys.readouterr().out
    assert "<|image_pad|>×108" in out  # 400×300 demo → 18×24 patches → 9×12 merged tokens, one run
    assert "4…111" in out and "4…12" in out and "4…15" in out  # the run's sequence span and its h / w ranges
    assert "random stand-in" in out and "preset tiny" in out
    assert "deepstack.1" in out and "THWTHWTHWTHW" in out


def test_fusion_json(capsys):
    assert main(["fusion", "--model", "tiny", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_ids"][:4] == [151644, 872, 198, 151652] and data["input_ids"].count(151655) == 108
    run = next(r for r in data["runs"] if r["kind"] == "image")
    assert (run["start"], run["count"], run["token_id"]) == (4, 108, 151655)
    assert len(data["position_ids"]) == 3 and data["rope_delta"] == -96
    assert [i["vision_layer"] for i in data["deepstack"]["injections"]] == [0, 2]
    assert data["image"].endswith("demo.png")


@pytest.mark.parametrize("argv, message", [
    (["fusion", "--model", "tiny", "--text", "two <|image_pad|>"], "the prompt holds 2 <|image_pad|>"),
    (["fusion", "--model", "tiny", "--decoder"], "--decoder needs --model to be a checkpoint folder"),
])
def test_fusion_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
