"""Videos, patch layout and `VisionInputs`, checked by hand (no transformers needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.image import VisionInputs, preprocess
from qwen3vl_inspect.inputs.preprocess import patchify, rescale_and_normalize, unpatchify, unpatchify_frames

P, M, T = 16, 2, 2


def frame(seed, height=64, width=96):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def normalized(pixels_hwc):
    """What one pixel value becomes, written out step by step (float64 rescale, float32 normalize)."""
    scaled = (pixels_hwc.astype(np.float64) * (1 / 255)).astype(np.float32)
    return (scaled - np.float32(0.5)) / np.float32(0.5)


def hand_patch(frames, group, block_row, block_col, inner_row, inner_col):
    """One pixel_values row built from the frames directly: channel, then time, then P×P pixels."""
    row, col = block_row * M + inner_row, block_col * M + inner_col
    values = []
    for channel in range(3):
        for t in range(T):
            crop = frames[group * T + t][row * P:(row + 1) * P, col * P:(col + 1) * P, channel]
            values.append(normalized(crop).reshape(-1))
    return np.concatenate(values)


def row_index(grid_h, grid_w, group, block_row, block_col, inner_row, inner_col):
    per_frame = grid_h * grid_w
    return group * per_frame + (block_row * (grid_w // M) + block_col) * M * M + inner_row * M + inner_col


@pytest.mark.parametrize("num_frames", [4, 3])
def test_video_rows_match_hand_computation(num_frames):
    frames = [frame(seed) for seed in range(num_frames)]
    out = preprocess([frames], min_pixels=1024)  # 64×96 is already a multiple of 32: no resize
    assert out.grid_thw.tolist() == [[2, 4, 6]]
    assert out.pixel_values.shape == (2 * 4 * 6, 3 * T * P * P)
    assert isinstance(out.images[0], list) and len(out.images[0]) == num_frames  # padding is not shown
    padded = frames + [frames[-1]] * (-num_frames % T)
    for where in [(0, 0, 0, 0, 0), (1, 1, 2, 1, 0), (1, 0, 1, 0, 1), (0, 1, 0, 1, 1)]:
        expected = hand_patch(padded, *where)
        assert np.array_equal(out.pixel_values[row_index(4, 6, *where)].numpy(), expected), where


def test_padded_video_repeats_last_frame():
    frames = [frame(seed) for seed in range(3)]
    rows = preprocess([frames], min_pixels=1024).pixel_values.reshape(2, 24, 3, T, P * P)  # (gt, hw, C, T, P·P)
    assert torch.equal(rows[1, :, :, 0], rows[1, :, :, 1])
    assert not torch.equal(rows[0, :, :, 0], rows[0, :, :, 1])


def test_video_frames_take_the_first_frames_size():
    frames = [Image.fromarray(frame(0, 100, 150)), Image.fromarray(frame(1, 90, 170))]
    out = preprocess([frames], min_pixels=1024)
    sizes = {im.size for im in out.images[0]}
    assert sizes == {(out.grid_thw[0, 2].item() * P, out.grid_thw[0, 1].item() * P)}
    assert out.original_sizes == [(100, 150)]


def test_single_frame_video_equals_the_image():
    image = Image.fromarray(frame(5))
    as_image, as_video = preprocess(image), preprocess([[image]])
    assert as_image.grid_thw.tolist() == as_video.grid_thw.tolist() == [[1, *as_image.grid_thw[0, 1:].tolist()]]
    assert torch.equal(as_image.pixel_values, as_video.pixel_values)


def test_images_and_videos_pack_together():
    image, video = Image.fromarray(frame(1)), [Image.fromarray(frame(s)) for s in range(4)]
    out = preprocess([image, video, image], min_pixels=1024)
    assert out.grid_thw.tolist() == [[1, 4, 6], [2, 4, 6], [1, 4, 6]]
    assert out.num_patches == 24 + 48 + 24
    assert out.num_merged_tokens == out.num_patches // 4
    assert torch.equal(out.pixel_values[:24], out.pixel_values[-24:])


@pytest.mark.parametrize("grid", [(1, 4, 6), (2, 2, 2), (3, 6, 4)])
def test_unpatchify_is_the_exact_inverse(grid):
    t, h, w = grid
    rng = np.random.default_rng(sum(grid))
    frames = rng.standard_normal((t * T, 3, h * P, w * P)).astype(np.float32)  # (F, C, H, W)
    patches, got_grid = patchify(frames, P, M, T)
    assert got_grid == grid
    assert np.array_equal(unpatchify_frames(patches, grid, P, M, T), frames)
    assert np.array_equal(patchify(unpatchify_frames(patches, grid), P, M, T)[0], patches)


def test_unpatchify_recovers_the_normalized_image():
    out = preprocess(Image.fromarray(frame(3, 70, 130)), min_pixels=1024)
    chw = unpatchify(out.pixel_values, out.grid_thw[0].tolist())
    expected = rescale_and_normalize(np.asarray(out.images[0]).transpose(2, 0, 1), (0.5,) * 3, (0.5,) * 3)
    assert chw.dtype == np.float32 and np.array_equal(chw, expected)


def test_patches_are_in_merge_block_order():
    """Row k of an image's pixel_values is the patch at merge-order position k (not raster)."""
    grid_h, grid_w = 4, 6
    ids = np.arange(grid_h * grid_w, dtype=np.float32).reshape(grid_h, grid_w)  # raster id per patch
    image = np.kron(ids, np.ones((P, P), dtype=np.float32))[None].repeat(3, axis=0)  # (C, H, W)
    patches, _ = patchify(image, P, M, T)
    first = patches[:, 0].astype(int).tolist()
    assert first[:8] == [0, 1, 6, 7, 2, 3, 8, 9]


def test_vision_inputs_fields():
    out = preprocess(Image.fromarray(frame(0, 30, 40)))
    assert isinstance(out, VisionInputs)
    assert out.pixel_values.dtype == torch.float32 and out.grid_thw.dtype == torch.int64
    assert (out.min_pixels, out.max_pixels) == (65536, 16777216)
    assert out.images[0].mode == "RGB"
    assert out.original_sizes == [(30, 40)]
    t, h, w = out.grid_thw[0].tolist()
    assert out.images[0].size == (w * P, h * P) and h * w * P * P >= 65536


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "no images"),
        ([[]], "empty list of frames"),
        (np.zeros((8, 8, 3), dtype=np.float32), "uint8"),
        (np.zeros((8, 8, 2), dtype=np.uint8), "C in 1, 3, 4"),
        (42, "got int"),
    ],
)
def test_bad_inputs(bad, match):
    with pytest.raises(InputError, match=match):
        preprocess(bad)
