"""Pixel arithmetic of Qwen3-VL's image processor: target size, rescale/normalize, patch layout.

Every step mirrors transformers' PIL backend (`Qwen2VLImageProcessorPil`, which Qwen3-VL uses)
operation for operation, so that `pixel_values` come out bitwise identical: float rounding
depends on the order and precision of each step, not only on the formula. Only numpy is used
here; torch tensors are made by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from qwen3vl_inspect.errors import InputError

MAX_ASPECT_RATIO = 200  # transformers refuses anything longer/thinner than this


def smart_resize(
    height: int,
    width: int,
    factor: int = 32,
    min_pixels: int = 65536,
    max_pixels: int = 16777216,
) -> tuple[int, int]:
    """Size (h, w) the processor resizes an image to: multiples of `factor`, area within bounds.

    Same arithmetic as transformers' `smart_resize` (Python's banker's `round` included), so the
    grids agree; inputs transformers would turn into nonsense (or a bare `assert`) raise
    `InputError` with the numbers instead.
    """
    if height <= 0 or width <= 0:
        raise InputError(f"image size {height}x{width} (h x w) has a side <= 0; every side must be at least 1 pixel")
    if factor <= 0:
        raise InputError(f"factor={factor} must be positive (patch_size * merge_size)")
    if min_pixels < 1:
        raise InputError(f"min_pixels={min_pixels} must be at least 1")
    if min_pixels > max_pixels:
        raise InputError(f"min_pixels={min_pixels} is larger than max_pixels={max_pixels}; swap or fix them")
    if max_pixels < factor * factor:
        raise InputError(
            f"max_pixels={max_pixels} is below one {factor}x{factor} block ({factor * factor} pixels); raise it"
        )
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT_RATIO:
        raise InputError(
            f"image size {height}x{width} (h x w) has aspect ratio {ratio:.1f} > {MAX_ASPECT_RATIO}; "
            "crop or pad it to a less extreme shape"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def rescale_and_normalize(
    chw_uint8: np.ndarray, image_mean: Sequence[float], image_std: Sequence[float]
) -> np.ndarray:
    """uint8 (C, H, W) to normalized float32 (C, H, W), rounding exactly where transformers does.

    transformers rescales in float64 (`x.astype(float64) * (1/255)`), casts to float32, and only
    then subtracts the float32 mean and divides by the float32 std. Fusing these steps, or doing
    them in another precision, changes the last bit of some values.
    """
    channels = chw_uint8.shape[0]
    if len(image_mean) != channels or len(image_std) != channels:
        raise InputError(
            f"image_mean/image_std need {channels} values (one per channel), got {len(image_mean)}/{len(image_std)}"
        )
    scaled = (chw_uint8.astype(np.float64) * (1 / 255)).astype(np.float32)  # (C, H, W)
    mean = np.asarray(image_mean, dtype=np.float32)[:, None, None]  # (C, 1, 1)
    std = np.asarray(image_std, dtype=np.float32)[:, None, None]  # (C, 1, 1)
    return (scaled - mean) / std  # (C, H, W) float32


def patchify(
    frames: np.ndarray, patch_size: int = 16, merge_size: int = 2, temporal_patch_size: int = 2
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Cut frames into flat patches listed in 2×2-merge-block order; returns (patches, (t, h, w)).

    `frames` is (F, C, H, W), or (C, H, W) for a still image, which counts as `temporal_patch_size`
    copies of itself (what transformers does for images). F must be a multiple of
    `temporal_patch_size`; H and W multiples of `patch_size * merge_size`. Rows come out in merge
    order (block by block) because the merger fuses each block's rows with a plain reshape.
    """
    if frames.ndim == 3:
        frames = np.broadcast_to(frames[None], (temporal_patch_size, *frames.shape))  # (T, C, H, W)
    num_frames, channels, height, width = frames.shape
    block = patch_size * merge_size
    if num_frames % temporal_patch_size or height % block or width % block:
        raise InputError(
            f"frames of shape {tuple(frames.shape)} don't tile: need frames % {temporal_patch_size} == 0 "
            f"and height, width multiples of {block}"
        )
    grid_t, grid_h, grid_w = num_frames // temporal_patch_size, height // patch_size, width // patch_size
    patches = frames.reshape(
        grid_t, temporal_patch_size, channels,
        grid_h // merge_size, merge_size, patch_size,
        grid_w // merge_size, merge_size, patch_size,
    )  # (gt, T, C, gh/m, m, P, gw/m, m, P)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (gt, gh/m, gw/m, m, m, C, T, P, P)
    flat = patches.reshape(
        grid_t * grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size
    )  # (gt·gh·gw, C·T·P·P)
    return np.ascontiguousarray(flat, dtype=np.float32), (grid_t, grid_h, grid_w)


def unpatchify_frames(
    pixel_values: np.ndarray,
    grid_thw: Sequence[int],
    patch_size: int = 16,
    merge_size: int = 2,
    temporal_patch_size: int = 2,
    channels: int = 3,
) -> np.ndarray:
    """Inverse of `patchify` for one image/video: rows back to normalized (t·T, C, H, W) frames.

    Lets a view show exactly what the encoder was fed (after resize and normalization), and lets
    tests check that no pixel was moved to the wrong place.
    """
    grid_t, grid_h, grid_w = (int(v) for v in grid_thw)
    pixel_values = np.asarray(pixel_values, dtype=np.float32)
    expected = (grid_t * grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)
    if pixel_values.shape != expected:
        raise InputError(
            f"pixel_values of shape {tuple(pixel_values.shape)} don't match grid_thw {[grid_t, grid_h, grid_w]}: "
            f"expected {expected}"
        )
    patches = pixel_values.reshape(
        grid_t, grid_h // merge_size, grid_w // merge_size, merge_size, merge_size,
        channels, temporal_patch_size, patch_size, patch_size,
    )  # (gt, gh/m, gw/m, m, m, C, T, P, P)
    frames = patches.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8)  # (gt, T, C, gh/m, m, P, gw/m, m, P)
    return np.ascontiguousarray(
        frames.reshape(grid_t * temporal_patch_size, channels, grid_h * patch_size, grid_w * patch_size)
    )  # (gt·T, C, H, W)


def unpatchify(
    pixel_values: np.ndarray,
    grid_thw: Sequence[int],
    patch_size: int = 16,
    merge_size: int = 2,
    temporal_patch_size: int = 2,
    channels: int = 3,
) -> np.ndarray:
    """Normalized (C, H, W) float32 image back from one image's `pixel_values` rows.

    For a still image every temporal slot holds the same frame, so the first one is the image.
    For a video this is its first frame; use `unpatchify_frames` for all of them.
    """
    return unpatchify_frames(pixel_values, grid_thw, patch_size, merge_size, temporal_patch_size, channels)[0]
