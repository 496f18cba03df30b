"""MRoPE position ids worked out by hand, and the t/h/w split of the rotary frequencies."""

from __future__ import annotations

import pytest
import torch

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion.mrope import mrope_layout, rope_index

I, V, S, E = 151655, 151656, 151652, 151653  # image pad, video pad, vision start, vision end


def positions(ids, grid, media):
    pos, delta = rope_index(torch.tensor([ids]), grid, media, I, V, 2)
    return pos[:, 0].tolist(), delta


def test_text_advances_all_three_axes_together():
    (t, h, w), delta = positions([1, 2, 3], [], [])
    assert t == h == w == [0, 1, 2] and delta == 0


def test_image_gets_row_col_offsets_and_text_resumes_after_its_largest_side():
    # 2 text, a 2×3 merged image (grid 1×4×6), 1 text
    (t, h, w), delta = positions([1, S] + [I] * 6 + [E], [[1, 4, 6]], ["image"])
    assert t == [0, 1, 2, 2, 2, 2, 2, 2, 5]
    assert h == [0, 1, 2, 2, 2, 3, 3, 3, 5]
    assert w == [0, 1, 2, 3, 4, 2, 3, 4, 5]
    assert delta == 6 - 9  # max position 5, plus 1, minus 9 tokens


def test_two_images_each_start_at_the_running_position():
    ids = [S] + [I] * 4 + [E, S] + [I] * 2 + [E]  # 2×2 merged, then 1×2 merged (grid 1×2×4)
    (t, h, w), _ = positions(ids, [[1, 4, 4], [1, 2, 4]], ["image", "image"])
    assert h[1:5] == [1, 1, 2, 2] and w[1:5] == [1, 2, 1, 2]
    assert t[5] == 3 and t[6] == 4  # vision_end at 1 + max(2, 2), then vision_start
    assert (t[7:9], h[7:9], w[7:9]) == ([5, 5], [5, 5], [5, 6])


def test_video_frames_are_separate_runs_with_their_own_origin():
    frame = [S] + [V] * 4 + [E]
    ids = [S, 9] + frame + [9] + frame + [E]  # outer start, "timestamp", frame 0, "timestamp", frame 1, outer end
    (t, h, w), _ = positions(ids, [[2, 4, 4]], ["video"])
    assert t[3:7] == [3, 3, 3, 3] and h[3:7] == [3, 3, 4, 4] and w[3:7] == [3, 4, 3, 4]
    assert t[7] == 5  # frame 0's end marker: origin 3 + max(2, 2)
    assert t[10:14] == [8, 8, 8, 8] and h[10:14] == [8, 8, 9, 9]


def test_more_pad_runs_than_images_is_an_error():
    with pytest.raises(InputError, match="more runs of image pads"):
        rope_index(torch.tensor([[I, 1, I]]), [[1, 2, 2]], ["image"], I, V, 2)


def test_qwen3_vl_split_is_interleaved_thw_then_t():
    layout = mrope_layout(128, (24, 20, 20))
    assert "".join(layout.axis[:6]) == "thwthw" and "".join(layout.axis[58:]) == "hwtttt"
    assert layout.counts() == {"t": 24, "h": 20, "w": 20}
    assert layout.inv_freq[0] == 1.0 and layout.inv_freq.shape == (64,)


def test_angles_follow_each_frequencys_axis():
    layout = mrope_layout(24, (4, 4, 4), rope_theta=10000.0)
    pos = torch.tensor([[[0, 7]], [[0, 2]], [[0, 5]]])  # token 1 at t=7, h=2, w=5
    angles = layout.angles(pos)
    assert angles.shape == (2, 12) and angles[0].abs().max() == 0
    expected = {"t": 7, "h": 2, "w": 5}
    for j, axis in enumerate(layout.axis):
        assert angles[1, j].item() == pytest.approx(expected[axis] * layout.inv_freq[j].item(), rel=1e-6)


def test_blocked_split_and_bad_sections():
    assert "".join(mrope_layout(12, (2, 2, 2), interleaved=False).axis) == "tthhww"
    with pytest.raises(InputError, match="summing to head_dim/2 = 64"):
        mrope_layout(128, (16, 24, 20))


def test_matches_transformers_rotary_recomposition():
    pytest.importorskip("transformers")
    from transformers import Qwen3VLTextConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding

    config = Qwen3VLTextConfig(hidden_size=96, num_attention_heads=4, head_dim=24, num_hidden_layers=1,
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                "mrope_section": [4, 4, 4], "mrope_interleaved": True})
    pos = torch.tensor([[[0, 3, 9, 4]], [[0, 3, 5, 6]], [[0, 3, 1, 8]]])
    cos, _ = Qwen3VLTextRotaryEmbedding(config)(torch.zeros(1, dtype=torch.float32), pos)
    ours = mrope_layout(24, (4, 4, 4), rope_theta=10000.0).angles(pos).cos()
    torch.testing.assert_close(cos[0, :, :12], ours, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(("head_dim", "section"), [(16, (2, 3, 3)), (16, (1, 3, 4)), (12, (2, 2, 2))])
def test_overrunning_interleave_is_clipped_like_transformers(head_dim, section):
    """head_dim 16, section [2, 3, 3]: w's slots 2, 5, 8 overrun the 8 frequencies; transformers clips them."""
    layout = mrope_layout(head_dim, section, rope_theta=10000.0)
    assert len(layout.axis) == head_dim // 2
    pytest.importorskip("transformers")
    from transformers import Qwen3VLTextConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding

    config = Qwen3VLTextConfig(hidden_size=head_dim * 2, num_attention_heads=2, head_dim=head_dim, num_hidden_layers=1,
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                "mrope_section": list(section), "mrope_interleaved": True})
    pos = torch.tensor([[[0, 3, 9, 4]], [[0, 11, 5, 6]], [[0, 2, 1, 17]]])
    cos, sin = Qwen3VLTextRotaryEmbedding(config)(torch.zeros(1, dtype=torch.float32), pos)
    angles = layout.angles(pos)
    torch.testing.assert_close(cos[0, :, : head_dim // 2], angles.cos(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(sin[0, :, : head_dim // 2], angles.sin(), atol=1e-6, rtol=1e-6)


def _full_config(folder, **text):
    import json

    from qwen3vl_inspect.config import VisionConfig

    folder.mkdir(parents=True, exist_ok=True)
    data = {"model_type": "qwen3_vl", "vision_config": VisionConfig.preset("tiny").to_dict(), "text_config": text}
    (folder / "config.json").write_text(json.dumps(data))
    return folder


def test_overrunning_section_from_a_checkpoint_config_gives_a_layout(tmp_path):
    from qwen3vl_inspect.fusion.text_config import text_side_for

    folder = _full_config(tmp_path / "ck", hidden_size=32, num_hidden_layers=1, num_attention_heads=2, head_dim=16,
                          rope_parameters={"rope_theta": 10000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True})
    side = text_side_for(folder)
    layout = mrope_layout(side.head_dim, side.mrope_section, side.rope_theta, side.mrope_interleaved)
    assert "".join(layout.axis) == "thwthwth" and layout.counts() == {"t": 3, "h": 3, "w": 2}


@pytest.mark.parametrize("text", [{"num_hidden_layers": 1}, {"hidden_size": "wide", "num_hidden_layers": 1},
                                  {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 0}])
def test_broken_text_config_is_one_input_error(tmp_path, text):
    from qwen3vl_inspect.fusion.text_config import text_side_for

    folder = _full_config(tmp_path / "ck", **text)
    with pytest.raises(InputError, match=r"config.json: not a valid Qwen3-VL text/vision config for fusion \(") as info:
        text_side_for(folder)
    assert "\n" not in str(info.value)
