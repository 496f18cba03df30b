"""Bad config.json values are one InputError listing every problem, raised before any tensor exists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _write(folder: Path, **vision: object) -> Path:
    data = VisionConfig.preset("tiny").to_dict()
    data.update(vision)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3_vl", "vision_config": data}))
    return folder / "config.json"


def _refusal(path: Path) -> str:
    with pytest.raises(InputError) as info:
        VisionConfig.from_json(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"num_heads": 0}, "num_heads 0 is outside 1..1024"),
        ({"hidden_act": "swishy"}, "hidden_act 'swishy' is not supported; use one of gelu_pytorch_tanh"),
        ({"depth": "4"}, "depth is str '4'; it must be a whole number (write 4, without quotes)"),
        ({"hidden_size": None}, "hidden_size is null"),
        ({"intermediate_size": -5}, "intermediate_size -5 is outside"),
        ({"hidden_size": 64.0}, "hidden_size is float 64.0"),
        ({"depth": 10**7}, "depth 10000000 is outside 1..512"),
        ({"depth": True}, "depth is bool True"),
        ({"hidden_size": 62}, "hidden_size 62 is not divisible by num_heads 4"),
        ({"hidden_size": 72, "num_heads": 4, "intermediate_size": 128}, "head_dim 18"),
        ({"num_position_embeddings": 250}, "not a square number"),
        ({"deepstack_visual_indexes": [0, 9]}, "deepstack_visual_indexes [9] are outside 0..3"),
        ({"deepstack_visual_indexes": "0,2"}, "must be a list of block numbers"),
        ({"deepstack_visual_indexes": [0, "2"]}, "non-integers ['2']"),
        ({"patch_size": [0, 0]}, "patch_size 0 is outside"),
        ({"rope_parameters": {"rope_theta": "big"}}, "rope_theta 'big' must be a positive number"),
    ],
)
def test_each_bad_value_is_named(tmp_path: Path, values: dict, fragment: str) -> None:
    path = _write(tmp_path, **values)
    message = _refusal(path)
    assert fragment in message, message
    assert message.startswith(f"invalid vision config ({path}): ") and "\n" not in message
    assert message.endswith("fix config.json")


def test_several_problems_are_listed_one_per_line(tmp_path: Path) -> None:
    path = _write(tmp_path, num_heads=0, hidden_act="nope", depth="4", out_hidden_size=None)
    lines = _refusal(path).splitlines()
    assert lines[0] == f"invalid vision config ({path}), 4 problems; fix config.json:"
    assert [line.split()[1] for line in lines[1:]] == ["depth", "num_heads", "out_hidden_size", "hidden_act"]
    assert all(line.startswith("  - ") for line in lines[1:])


def test_rope_parameters_that_are_not_an_object_fall_back(tmp_path: Path) -> None:
    assert VisionConfig.from_json(_write(tmp_path, rope_parameters=[1, 2])).rope_theta == 10000.0


def test_cli_refuses_a_huge_depth_at_once(tmp_path: Path) -> None:
    """depth 10**7 used to build blocks for minutes; now `info` stops with exit 2 before building anything."""
    folder = _write(tmp_path / "ck", depth=10**7, num_heads=0).parent
    result = subprocess.run([sys.executable, "-m", "qwen3vl_inspect", "info", "--model", str(folder)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "depth 10000000 is outside 1..512" in result.stderr and "num_heads 0" in result.stderr


def test_valid_values_still_convert(tmp_path: Path) -> None:
    config = VisionConfig.from_json(_write(tmp_path, patch_size=[16, 16], deepstack_visual_indexes=[1, 3]))
    assert config.patch_size == 16 and config.deepstack_visual_indexes == (1, 3)
    assert isinstance(config.rope_theta, float)
