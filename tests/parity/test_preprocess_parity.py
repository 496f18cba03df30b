"""Our preprocessing against transformers' Qwen3-VL image processor (PIL backend): bit for bit.

The encoder's parity with transformers means little if its inputs differ, so equality here is
`torch.equal`, not `allclose`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (  # noqa: E402
    Qwen2VLImageProcessorPil,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (  # noqa: E402
    smart_resize as hf_smart_resize,
)

from qwen3vl_inspect.inputs.image import load_image, preprocess, smart_resize  # noqa: E402
from qwen3vl_inspect.inputs.preprocess import patchify, rescale_and_normalize  # noqa: E402

DEFAULT_MIN, DEFAULT_MAX = 65536, 16777216


def hf_process(images, min_pixels=DEFAULT_MIN, max_pixels=DEFAULT_MAX):
    proc = Qwen2VLImageProcessorPil(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
    )
    out = proc(images=images, return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


def noise(height, width, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def smooth(height, width, seed=0):
    """A gradient plus noise: bicubic overshoot and clipping get exercised, not only noise."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=-1)
    return np.clip(base + noise(height, width, seed=seed) // 8, 0, 255).astype(np.uint8)


def assert_same(ours, pixel_values, grid_thw):
    assert ours.grid_thw.dtype == torch.int64
    assert ours.grid_thw.tolist() == grid_thw.tolist()
    assert ours.pixel_values.dtype == pixel_values.dtype == torch.float32
    assert ours.pixel_values.shape == pixel_values.shape
    assert torch.equal(ours.pixel_values, pixel_values)


@pytest.mark.parametrize("size", [(37, 91), (300, 400), (401, 299), (64, 2000), (1000, 17), (256, 256), (33, 33)])
def test_odd_sizes_bitwise(size):
    image = Image.fromarray(smooth(*size, seed=sum(size)))
    assert_same(preprocess(image), *hf_process([image]))


@pytest.mark.parametrize(
    ("size", "min_pixels", "max_pixels"),
    [
        ((500, 700), 4096, 100_000),  # shrunk by max_pixels
        ((37, 91), 200_000, 1_000_000),  # grown by min_pixels
        ((1000, 17), 1024, 50_000),
        ((123, 456), 1024, 16777216),  # kept near its own size
    ],
)
def test_explicit_min_max_pixels_bitwise(size, min_pixels, max_pixels):
    image = Image.fromarray(noise(*size, seed=3))
    ours = preprocess(image, min_pixels=min_pixels, max_pixels=max_pixels)
    assert_same(ours, *hf_process([image], min_pixels, max_pixels))
    assert (ours.min_pixels, ours.max_pixels) == (min_pixels, max_pixels)


def test_image_over_default_max_pixels_with_lowered_max():
    height, width = 4200, 4100  # 17.2 M pixels > 16777216
    assert smart_resize(height, width) == hf_smart_resize(height, width, 32, DEFAULT_MIN, DEFAULT_MAX)
    assert np.prod(smart_resize(height, width)) <= DEFAULT_MAX
    tile = Image.fromarray(smooth(420, 410, seed=7))
    image = tile.resize((width, height), Image.Resampling.NEAREST)  # big but cheap to make
    ours = preprocess(image, max_pixels=300_000)
    assert_same(ours, *hf_process([image], DEFAULT_MIN, 300_000))
    assert ours.original_sizes == [(height, width)]


def test_smart_resize_matches_transformers_on_a_grid_of_sizes():
    sizes = [1, 2, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100, 223, 224, 479, 480, 1000, 1919, 4095, 5000]
    for min_pixels, max_pixels in [(DEFAULT_MIN, DEFAULT_MAX), (1024, 200_000), (3136, 12845056)]:
        for height in sizes:
            for width in sizes:
                if max(height, width) / min(height, width) > 200:
                    continue
                expected = hf_smart_resize(height, width, 32, min_pixels, max_pixels)
                assert smart_resize(height, width, 32, min_pixels, max_pixels) == expected, (height, width)


def test_several_images_packed_in_one_call():
    images = [Image.fromarray(smooth(h, w, seed=h)) for h, w in [(37, 91), (300, 400), (64, 2000)]]
    ours = preprocess(images)
    assert_same(ours, *hf_process(images))
    assert len(ours.images) == 3
    assert [im.size[::-1] for im in ours.images] == [(t[1] * 16, t[2] * 16) for t in ours.grid_thw.tolist()]
    assert ours.original_sizes == [(37, 91), (300, 400), (64, 2000)]


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_numpy_inputs_bitwise(channels):
    array = noise(45, 77, channels=channels, seed=channels)
    hf_input = array[..., None] if channels == 1 else array  # transformers wants a channel axis
    assert_same(preprocess(array), *hf_process([hf_input]))


def test_path_input_equals_pil_input(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(noise(50, 70)).save(path)
    assert_same(preprocess(str(path)), *hf_process([Image.open(path)]))
    assert_same(preprocess(path), *hf_process([Image.open(path)]))


def _mode_image(mode: str) -> tuple[Image.Image, str, dict]:
    """An image of `mode` with varied content, plus the format and save options to write it."""
    rgb = smooth(41, 67, seed=11)
    gray = rgb[..., 0]
    if mode == "L":
        return Image.fromarray(gray), "PNG", {}
    if mode == "LA":
        return Image.fromarray(np.stack([gray, rgb[..., 1]], axis=-1)), "PNG", {}
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, rgb[..., 2]])), "PNG", {}
    if mode in ("P", "P+transparency", "GIF P+transparency"):
        image = Image.fromarray(rgb).quantize(colors=64)
        if mode == "P":
            return image, "PNG", {}
        fmt = "GIF" if mode.startswith("GIF") else "PNG"
        return image, fmt, {"transparency": 5}
    if mode == "RGB+tRNS":
        color = tuple(int(v) for v in rgb[0, 0])
        return Image.fromarray(rgb), "PNG", {"transparency": color}
    if mode == "L+tRNS":
        return Image.fromarray(gray), "PNG", {"transparency": int(gray[3, 3])}
    if mode == "CMYK":
        return Image.fromarray(rgb).convert("CMYK"), "JPEG", {"quality": 95}
    if mode == "CMYK-TIFF":
        return Image.fromarray(rgb).convert("CMYK"), "TIFF", {}
    if mode == "I;16":
        values = (rgb[..., 0].astype(np.uint16) * 3)  # 0..765: some above 255
        return Image.frombytes("I;16", (values.shape[1], values.shape[0]), values.astype("<u2").tobytes()), "PNG", {}
    if mode == "1":
        return Image.fromarray(gray > 128), "PNG", {}
    raise AssertionError(mode)


MODES = ["L", "LA", "P", "P+transparency", "GIF P+transparency", "RGB+tRNS", "L+tRNS", "RGBA", "CMYK",
         "CMYK-TIFF", "I;16", "1"]


@pytest.mark.parametrize("mode", MODES)
def test_every_image_mode_bitwise(mode, tmp_path):
    image, fmt, options = _mode_image(mode)
    path = tmp_path / f"image.{fmt.lower()}"
    image.save(path, fmt, **options)
    raw = Image.open(path)  # what a user would hand transformers: the file as opened
    if mode != "CMYK-TIFF":
        assert raw.mode == mode.split("+")[0].split()[-1].replace("-TIFF", "")
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    assert loaded.info["original_mode"] == raw.mode
    assert_same(preprocess(loaded), *hf_process([raw]))
    # a non-RGB PIL image handed straight to preprocess is converted the same way
    assert_same(preprocess(Image.open(path)), *hf_process([Image.open(path)]))


def test_i16_is_clipped_not_scaled_like_transformers(tmp_path):
    """Pillow's I;16 -> RGB clips at 255 instead of scaling; transformers keeps that, so do we."""
    values = np.array([[0, 100, 255, 256, 1000, 65535]], dtype="<u2")
    path = tmp_path / "deep.png"
    Image.frombytes("I;16", (6, 1), values.tobytes()).save(path)
    assert np.asarray(load_image(path))[0, :, 0].tolist() == [0, 100, 255, 255, 255, 255]


def test_video_patch_layout_matches_transformers_video_processor():
    """Same normalized frames through transformers' Qwen3-VL video patchify and ours (layout only:
    its rescale/normalize runs in torch, so values are compared after a shared normalization)."""
    video_processing = pytest.importorskip("transformers.models.qwen3_vl.video_processing_qwen3_vl")
    frames = np.stack([rescale_and_normalize(noise(64, 96, seed=s).transpose(2, 0, 1), (0.5,) * 3, (0.5,) * 3)
                       for s in range(3)])  # (3, C, H, W)
    theirs, *grid = video_processing.Qwen3VLVideoProcessor.patchify(None, torch.from_numpy(frames)[None], 16, 2, 2)
    padded = np.concatenate([frames, frames[-1:]])  # (4, C, H, W): last frame repeated, as they pad
    ours, our_grid = patchify(padded, 16, 2, 2)
    assert list(our_grid) == grid == [2, 4, 6]
    assert torch.equal(theirs[0], torch.from_numpy(ours))
