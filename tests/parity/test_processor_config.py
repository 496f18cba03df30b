"""preprocessor_config.json as transformers writes it, read back and used: same pixels as its processor.

A Qwen2-VL-style folder (patch 14, CLIP normalization, min/max_pixels keys) is the realistic
"other" processor; the encoder built for patch 16 must refuse its inputs in one line, before any
stage runs, instead of failing inside patch_embed with a matmul error.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402

from qwen3vl_inspect import InputError, ProcessorConfig, VisionConfig, VisionEncoder, preprocess, trace  # noqa: E402
from qwen3vl_inspect.errors import CheckpointError  # noqa: E402
from qwen3vl_inspect.session import load_inputs  # noqa: E402

CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def gradient(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 7) % 256, (y * 5) % 256, (x + y) % 256) for y in range(height) for x in range(width)])
    return image


def saved_processor(folder, **kwargs) -> Qwen2VLImageProcessorPil:
    processor = Qwen2VLImageProcessorPil(**kwargs)
    processor.save_pretrained(folder)
    return processor


@pytest.mark.parametrize("kwargs", [
    dict(patch_size=14, merge_size=2, temporal_patch_size=2, image_mean=CLIP_MEAN, image_std=CLIP_STD,
         size={"shortest_edge": 3136, "longest_edge": 200_704}),  # Qwen2-VL's settings
    dict(patch_size=16, merge_size=2, temporal_patch_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3,
         size={"shortest_edge": 65536, "longest_edge": 300_000}),  # Qwen3-VL's, a smaller max
])
def test_a_saved_processor_config_preprocesses_like_transformers(tmp_path, kwargs):
    processor = saved_processor(tmp_path, **kwargs)
    config = ProcessorConfig.from_pretrained(tmp_path)
    assert (config.patch_size, config.min_pixels, config.max_pixels) == (
        kwargs["patch_size"], kwargs["size"]["shortest_edge"], kwargs["size"]["longest_edge"])
    image = gradient(333, 207)
    ours = preprocess([image], config)
    theirs = processor(images=[image], return_tensors="pt")
    assert ours.grid_thw.tolist() == theirs["image_grid_thw"].tolist()
    assert torch.equal(ours.pixel_values, theirs["pixel_values"])


def test_the_older_min_max_pixels_keys_are_read(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"patch_size": 14, "merge_size": 2, "temporal_patch_size": 2, "min_pixels": 3136, "max_pixels": 12845056,
         "image_mean": CLIP_MEAN, "image_std": CLIP_STD}))
    config = ProcessorConfig.from_json(tmp_path / "preprocessor_config.json")
    assert (config.patch_size, config.min_pixels, config.max_pixels) == (14, 3136, 12845056)
    assert config.image_mean == tuple(CLIP_MEAN)


@pytest.mark.parametrize("bad, named", [
    ({"patch_size": 0}, "patch_size 0 must be at least 1"),
    ({"patch_size": "16"}, r"patch_size is str '16'; it must be a whole number \(write 16, without quotes\)"),
    ({"image_std": [0.5, 0, 0.5]}, "image_std"),
    ({"image_mean": [0.5]}, "image_mean"),
])
def test_bad_processor_configs_are_named(tmp_path, bad, named):
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(CheckpointError, match=named):
        ProcessorConfig.from_json(path)
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable JSON file"):
        ProcessorConfig.from_json(path)


def test_a_folder_without_the_file_uses_the_encoders_sizes(tmp_path):
    encoder = VisionEncoder(replace(VisionConfig.preset("tiny"), patch_size=8))
    encoder.save_pretrained(tmp_path)
    assert ProcessorConfig.from_pretrained(tmp_path).patch_size == 8
    inputs = load_inputs(gradient(64, 64), model=str(tmp_path), min_pixels=1024)
    assert inputs.patch_size == 8 and inputs.pixel_values.shape[1] == encoder.config.patch_dim
    trace(encoder, inputs).run()  # the encoder takes what its folder told us to cut


def test_inputs_cut_for_another_encoder_are_refused_before_any_stage(tmp_path):
    encoder = VisionEncoder(VisionConfig.preset("tiny"))  # patch 16
    saved_processor(tmp_path, patch_size=14, merge_size=2, temporal_patch_size=2, image_mean=CLIP_MEAN,
                    image_std=CLIP_STD)
    inputs = preprocess([gradient(120, 90)], ProcessorConfig.from_pretrained(tmp_path))
    with pytest.raises(InputError, match=r"preprocessed for another encoder: patch_size 14 \(encoder: 16\), "
                                         r"row_width 1176 \(encoder: 1536\)"):
        trace(encoder, inputs)
    assert len(trace(encoder, preprocess([gradient(120, 90)], encoder.config)).run().stages) > 0


def test_config_must_be_a_config():
    with pytest.raises(TypeError, match="min_pixels=/max_pixels="):
        preprocess([gradient(64, 64)], 4096)  # the old positional min_pixels
