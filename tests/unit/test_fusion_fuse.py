"""`fuse` without transformers: scatter, mask, stand-in and sliced embeddings, token descriptions, errors."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from rich.console import Console
from safetensors.torch import save_file

from qwen3vl_inspect import VisionEncoder, preprocess, trace
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion import fuse, fuse_trace
from qwen3vl_inspect.fusion.embeddings import read_embedding_rows, stand_in_rows
from qwen3vl_inspect.model.encoder import VisionOutput

IMAGE_PAD = 151655


@pytest.fixture(scope="module")
def tiny():
    """(encoder, inputs, output) for one 64×96 image: grid 1×4×6 → 6 merged tokens."""
    encoder = VisionEncoder.from_pretrained("tiny")
    inputs = preprocess([Image.new("RGB", (96, 64), (200, 30, 30))], min_pixels=4096)
    with torch.no_grad():
        return encoder, inputs, encoder(inputs.pixel_values, inputs.grid_thw)


def fake_output(grid: list[list[int]], hidden: int = 8, seed: int = 0) -> VisionOutput:
    n = sum(t * h * w for t, h, w in grid) // 4
    g = torch.Generator().manual_seed(seed)
    return VisionOutput(torch.zeros(n * 4, 4), torch.randn(n, hidden, generator=g),
                        [torch.randn(n, hidden, generator=g) for _ in range(2)], torch.tensor(grid))


def test_scatter_mask_and_stand_in_rows(tiny):
    _, inputs, out = tiny
    result = fuse(out, inputs.grid_thw, checkpoint="tiny")
    s = result.seq_len
    assert result.input_ids.shape == (1, s) and result.inputs_embeds.shape == (1, s, 96)
    assert result.position_ids.shape == (3, 1, s) and result.visual_pos_mask.shape == (1, s)
    mask = result.visual_pos_mask[0]
    assert mask.sum() == 6 and torch.equal(mask, result.input_ids[0] == IMAGE_PAD)
    assert torch.equal(result.inputs_embeds[0, mask], out.pooler_output)
    for ours, theirs in zip(result.deepstack_features, out.deepstack_features):
        assert torch.equal(ours, theirs)
    text_ids = result.input_ids[0, ~mask].tolist()
    rows = stand_in_rows(text_ids, 96)
    assert torch.equal(result.inputs_embeds[0, ~mask], torch.stack([rows[i] for i in text_ids]))
    assert result.random_embeddings and result.embeddings_source == "random stand-in (seed 0, preset tiny)"
    assert [i.vision_layer for i in result.deepstack.injections] == [0, 2]
    assert [i.text_layer for i in result.deepstack.injections] == [0, 1]


def test_stand_in_rows_depend_only_on_id_and_seed():
    a, b = stand_in_rows([5, 9], 16), stand_in_rows([9, 100], 16)
    assert torch.equal(a[9], b[9]) and not torch.equal(a[5], a[9])
    assert not torch.equal(stand_in_rows([9], 16, seed=1)[9], a[9])


def test_tokens_describe_text_pieces_and_image_cells(tiny):
    _, inputs, out = tiny
    result = fuse(out, inputs.grid_thw, text="Hi", checkpoint="tiny")
    visual = [t for t in result.tokens if t.is_visual]
    assert [(t.row, t.col) for t in visual] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert visual[4].box == (32, 32, 64, 64) and visual[4].media_token == 4
    assert visual[4].describe() == "image 0 token 4 (row 1, col 1)"
    assert visual[4].position == (4, 5, 5)  # origin 4 (after <|im_start|> user \n <|vision_start|>)
    text = [t.text for t in result.tokens if not t.is_visual]
    assert text == ["<|im_start|>", "user", "\n", "<|vision_start|>", "<|vision_end|>", "Hi", "<|im_end|>", "\n",
                    "<|im_start|>", "assistant", "\n"]
    assert result.tokens[0].kind == "special" and result.tokens[1].kind == "text"
    runs = result.runs()
    assert len(runs) == 12 and runs[4].count == 6 and runs[4].label == "<|image_pad|>"


def test_missing_pad_names_the_image_its_grid_and_both_counts():
    out = fake_output([[1, 4, 6], [1, 8, 4]])
    good = fuse(out, checkpoint=None).input_ids[0].tolist()
    last = max(i for i, t in enumerate(good) if t == IMAGE_PAD)
    with pytest.raises(InputError) as caught:
        fuse(out, input_ids=good[:last] + good[last + 1:])
    message = str(caught.value)
    assert message.startswith("Image features and image tokens do not match, tokens: 13, features: 14: ")
    assert "image 1 (grid t=1 h=8 w=4) needs 1·8·4/2² = 8 <|image_pad|> (id 151655), found 7 in its run" in message
    assert "expand each <|image_pad|> to t·h·w/merge² copies" in message


def test_merged_runs_and_stray_pads_are_reported():
    out = fake_output([[1, 4, 4], [1, 4, 4]])
    ids = fuse(out).input_ids[0].tolist()
    glued = [t for t in ids if t not in (151652, 151653)]  # no vision markers: the two runs become one
    with pytest.raises(InputError, match=r"1 run\(s\) of <\|image_pad\|> .* with \[8\] tokens, .* needs 2 image run\(s\) with \[4, 4\]"):
        fuse(out, input_ids=glued)
    with pytest.raises(InputError, match=r"input_ids hold 2 <\|video_pad\|> \(id 151656\) but grid_thw has no video"):
        fuse(out, input_ids=ids + [151656, 151656])


def test_video_frame_mismatch_names_the_frame():
    out = fake_output([[2, 4, 4]])
    ids = fuse(out, media=["video"]).input_ids[0].tolist()
    assert ids.count(151656) == 8
    second = [i for i, t in enumerate(ids) if t == 151656][-1]
    with pytest.raises(InputError, match=r"video 0 frame 1 \(grid t=2 h=4 w=4\) needs 4·4/2² = 4 <\|video_pad\|>"):
        fuse(out, media=["video"], input_ids=ids[:second] + ids[second + 1:])


def test_features_that_do_not_fit_the_grid_are_refused():
    with pytest.raises(InputError, match=r"has 4 merged tokens but grid_thw \[\[1, 4, 6\]\] describes 6"):
        fuse(fake_output([[1, 4, 4]]), grid_thw=[[1, 4, 6]])
    with pytest.raises(InputError, match="text hidden_size 2048"):
        fuse(fake_output([[1, 4, 4]], hidden=8), checkpoint="qwen3-vl-2b")
    with pytest.raises(InputError, match="'image' or 'video'"):
        fuse(fake_output([[1, 4, 4]]), media=["picture"])


def write_checkpoint(folder, table: torch.Tensor) -> None:
    config = {"model_type": "qwen3_vl", "image_token_id": 151655, "video_token_id": 151656,
              "vision_start_token_id": 151652, "vision_end_token_id": 151653,
              "text_config": {"hidden_size": table.shape[1], "num_hidden_layers": 3, "head_dim": 24,
                              "num_attention_heads": 4, "vocab_size": table.shape[0],
                              "rope_parameters": {"rope_theta": 1e4, "mrope_section": [4, 4, 4]}},
              "vision_config": {"deepstack_visual_indexes": [5, 11], "spatial_merge_size": 2, "patch_size": 16}}
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"model.language_model.embed_tokens.weight": table, "model.visual.merger.x": torch.zeros(1)},
              str(folder / "model.safetensors"))


def test_checkpoint_rows_are_sliced_and_keep_the_tables_dtype(tmp_path):
    table = torch.randn(151669, 8).to(torch.bfloat16)
    write_checkpoint(tmp_path / "ckpt", table)
    rows, source = read_embedding_rows(tmp_path / "ckpt", [9707, 1879, 1880, 9707])
    assert sorted(rows) == [1879, 1880, 9707] and torch.equal(rows[1880], table[1880])
    assert "model.language_model.embed_tokens.weight (3 of 151669 rows, BF16)" in source

    out = fake_output([[1, 4, 4]])
    result = fuse(out, checkpoint=tmp_path / "ckpt")
    mask = result.visual_pos_mask[0]
    assert result.inputs_embeds.dtype == torch.bfloat16  # as transformers: features cast to the table's dtype
    assert torch.equal(result.inputs_embeds[0, ~mask], table[result.input_ids[0, ~mask]])
    assert torch.equal(result.inputs_embeds[0, mask], out.pooler_output.to(torch.bfloat16))
    assert not result.random_embeddings and result.text_side.num_hidden_layers == 3
    assert [i.vision_layer for i in result.deepstack.injections] == [5, 11]
    with pytest.raises(InputError, match="outside the embedding table"):
        read_embedding_rows(tmp_path / "ckpt", [151669])


def test_vision_only_checkpoint_falls_back_to_a_labelled_stand_in(tmp_path, tiny):
    encoder, inputs, out = tiny
    encoder.save_pretrained(tmp_path / "vision")
    result = fuse(out, inputs.grid_thw, checkpoint=tmp_path / "vision")
    assert result.embeddings_source.startswith("random stand-in (seed 0, ") and "has no language model" in result.embeddings_source


def test_fuse_trace_reads_media_kinds_and_the_preset(tiny):
    encoder, _, _ = tiny
    frames = [Image.new("RGB", (64, 64), (i * 40, 0, 0)) for i in range(4)]
    inputs = preprocess([Image.new("RGB", (64, 64)), frames], min_pixels=4096)
    result = fuse_trace(trace(encoder, inputs), text="What changes?")
    assert result.media == ("image", "video") and result.text_side.source == "preset tiny"
    runs = [r for r in result.runs() if r.media is not None]
    assert [(r.kind, r.frame, r.count) for r in runs] == [("image", 0, 4), ("video", 0, 4), ("video", 1, 4)]
    assert "<|vision_start|><0.2 seconds><|vision_start|><|video_pad|>" in "".join(t.text for t in result.tokens)


def test_to_dict_and_rich_view(tiny):
    _, inputs, out = tiny
    result = fuse(out, inputs.grid_thw, checkpoint="tiny")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["random_embeddings"] is True and data["visual_tokens"] == 6
    pad_run = next(r for r in data["runs"] if r["kind"] == "image")
    assert pad_run["count"] == 6 and pad_run["position"] == {"t": [4, 4], "h": [4, 5], "w": [4, 6]}
    assert data["mrope"]["axis"] == "thwthwthwthw"
    console = Console(width=160, record=True)
    console.print(result)
    text = console.export_text()
    for needle in ("random stand-in", "<|image_pad|>×6", "<|image_pad|> ×6", "deepstack.1", "MRoPE"):
        assert needle in text, needle
