"""VisionConfig: presets, config.json reading, refusals."""

import dataclasses
import json

import pytest

from qwen3vl_inspect import InputError, VisionConfig
from qwen3vl_inspect.config import PRESETS


@pytest.mark.parametrize(
    "name, depth, hidden, out, taps",
    [
        ("qwen3-vl-2b", 24, 1024, 2048, (5, 11, 17)),
        ("qwen3-vl-4b", 24, 1024, 2560, (5, 11, 17)),
        ("qwen3-vl-8b", 27, 1152, 4096, (8, 16, 24)),
        ("qwen3-vl-32b", 27, 1152, 5120, (8, 16, 24)),
        ("qwen3-vl-30b-a3b", 27, 1152, 2048, (8, 16, 24)),
        ("qwen3-vl-235b-a22b", 27, 1152, 4096, (8, 16, 24)),
    ],
)
def test_published_presets(name, depth, hidden, out, taps):
    config = VisionConfig.preset(name)
    assert (config.depth, config.hidden_size, config.out_hidden_size) == (depth, hidden, out)
    assert config.deepstack_visual_indexes == taps
    assert (config.patch_size, config.temporal_patch_size, config.spatial_merge_size) == (16, 2, 2)
    assert config.num_position_embeddings == 2304 and config.num_grid_per_side == 48
    assert config.patch_dim == 1536 and config.head_dim == hidden // 16
    assert config.is_preset and config.source == name


def test_unknown_preset_lists_the_choices():
    with pytest.raises(InputError, match="qwen3-vl-2b"):
        VisionConfig.preset("qwen3-vl-3b")


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VisionConfig.preset("tiny").depth = 3  # type: ignore[misc]


def test_full_and_vision_only_config_json(tmp_path):
    vision = VisionConfig.preset("qwen3-vl-4b").to_dict()
    full = {"model_type": "qwen3_vl", "vision_config": {**vision, "model_type": "qwen3_vl"}, "text_config": {}}
    (tmp_path / "full.json").write_text(json.dumps(full))
    (tmp_path / "vision.json").write_text(json.dumps(vision))
    for name in ("full.json", "vision.json"):
        config = VisionConfig.from_json(tmp_path / name)
        assert config == VisionConfig.preset("qwen3-vl-4b")
        assert config.source.endswith(name)


def test_transformers_config_round_trip(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = transformers.Qwen3VLConfig(vision_config={"depth": 5, "deepstack_visual_indexes": [1, 3], "out_hidden_size": 64},
                                    text_config={"hidden_size": 64})
    hf.save_pretrained(tmp_path)
    config = VisionConfig.from_json(tmp_path)
    assert (config.depth, config.deepstack_visual_indexes, config.out_hidden_size) == (5, (1, 3), 64)
    assert config.hidden_act == hf.vision_config.hidden_act
    assert config.rope_theta == hf.vision_config.rope_parameters["rope_theta"]


def test_unknown_model_type_is_refused_without_running_auto_map(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    data = {"model_type": "evil_vl", "auto_map": {"AutoConfig": "evil.EvilConfig"}}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="'evil_vl' is not a Qwen3-VL model"):
        VisionConfig.from_json(tmp_path / "config.json")
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"model_type": "qwen3_vl"}', "no 'vision_config'")],
)
def test_malformed_config_json(tmp_path, content, message):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(InputError, match=message):
        VisionConfig.from_json(tmp_path / "config.json")


def test_missing_config_json(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        VisionConfig.from_json(tmp_path)


def test_inconsistent_fields_are_refused():
    with pytest.raises(InputError, match="not divisible by num_heads"):
        VisionConfig(hidden_size=100, num_heads=16)
    with pytest.raises(InputError, match="outside 0..3"):
        VisionConfig(depth=4, deepstack_visual_indexes=(1, 4))
    with pytest.raises(InputError, match="not a square"):
        VisionConfig(num_position_embeddings=2300)


def test_every_preset_is_listed():
    assert set(PRESETS) >= {"tiny", "qwen3-vl-2b", "qwen3-vl-4b", "qwen3-vl-8b", "qwen3-vl-32b",
                            "qwen3-vl-30b-a3b", "qwen3-vl-235b-a22b"}
