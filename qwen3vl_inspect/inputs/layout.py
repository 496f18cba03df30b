"""Where each token sits on the image: merge order versus raster order, and pixel boxes.

Qwen3-VL does not keep patches in raster (row-major) order. Within each frame it lists them
2×2 merge block by merge block: block (0,0)'s four patches [(0,0), (0,1), (1,0), (1,1)], then
block (0,1)'s, and so on, so that the merger can fuse each block by a plain reshape. Anything
drawn over the image must undo this permutation, image by image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def merge_order_to_raster_index(grid_h: int, grid_w: int, merge_size: int) -> torch.Tensor:
    """`idx[k]` = raster position (row * grid_w + col) of the k-th patch in merge order, one frame."""
    raster = torch.arange(grid_h * grid_w).reshape(grid_h, grid_w)
    blocks = raster.reshape(grid_h // merge_size, merge_size, grid_w // merge_size, merge_size)  # (bh, m, bw, m)
    return blocks.permute(0, 2, 1, 3).reshape(-1)  # (bh, bw, m, m) flattened


def merge_order_row_col(grid_h: int, grid_w: int, merge_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) on the patch grid of each patch of one frame, listed in merge order."""
    idx = merge_order_to_raster_index(grid_h, grid_w, merge_size)
    return idx // grid_w, idx % grid_w


def _split_per_image(tensor: torch.Tensor, grid_thw: torch.Tensor, tokens_per_patch: int) -> list[torch.Tensor]:
    counts = [int(t * h * w) // tokens_per_patch for t, h, w in grid_thw.tolist()]
    if sum(counts) != tensor.shape[0]:
        raise ValueError(
            f"tensor has {tensor.shape[0]} rows but grid_thw {grid_thw.tolist()} describes {sum(counts)} tokens"
        )
    return list(torch.split(tensor, counts, dim=0))


def merge_to_raster(tensor: torch.Tensor, grid_thw: torch.Tensor, merge_size: int) -> torch.Tensor:
    """Reorder per-patch rows from merge order to raster order, per image and per frame.

    `tensor` is [N, ...] with N = Σ t·h·w (packed patches). Returns the same shape.
    """
    out = []
    for chunk, (t, h, w) in zip(_split_per_image(tensor, grid_thw, 1), grid_thw.tolist()):
        idx = merge_order_to_raster_index(h, w, merge_size).to(tensor.device)
        frames = chunk.reshape(t, h * w, *chunk.shape[1:])  # (t, h·w, ...)
        raster = torch.empty_like(frames)
        raster[:, idx] = frames
        out.append(raster.reshape(chunk.shape))  # (t·h·w, ...)
    return torch.cat(out, dim=0)


def raster_to_merge(tensor: torch.Tensor, grid_thw: torch.Tensor, merge_size: int) -> torch.Tensor:
    """Inverse of `merge_to_raster`."""
    out = []
    for chunk, (t, h, w) in zip(_split_per_image(tensor, grid_thw, 1), grid_thw.tolist()):
        idx = merge_order_to_raster_index(h, w, merge_size).to(tensor.device)
        frames = chunk.reshape(t, h * w, *chunk.shape[1:])  # (t, h·w, ...)
        out.append(frames[:, idx].reshape(chunk.shape))  # (t·h·w, ...)
    return torch.cat(out, dim=0)


@dataclass(frozen=True)
class PixelBox:
    """A token's footprint on the resized image (pixel coordinates, right/bottom exclusive)."""

    image: int  # index of the image/video in the batch
    frame: int  # temporal patch index (each covers `temporal_patch_size` frames)
    row: int  # row on the patch grid (or merged grid, for merged tokens)
    col: int
    left: int
    top: int
    right: int
    bottom: int


def token_pixel_box(
    index: int, grid_thw: torch.Tensor, patch_size: int = 16, merge_size: int = 2, merged: bool = False
) -> PixelBox:
    """Pixel box of the `index`-th token of a packed sequence.

    With `merged=False` the token is a patch (sequence before the merger, merge order);
    with `merged=True` it is a merged token (merger output / one `<|image_pad|>`), covering
    merge_size × merge_size patches.
    """
    unit = merge_size * merge_size
    if index < 0:
        raise IndexError(f"token index {index} is negative")
    offset = index
    for image, (t, h, w) in enumerate(grid_thw.tolist()):  # noqa: B007 - the loop stops at the token's image
        count = t * h * w // (unit if merged else 1)
        if offset < count:
            break
        offset -= count
    else:
        total = sum(int(t * h * w) // (unit if merged else 1) for t, h, w in grid_thw.tolist())
        raise IndexError(f"token {index} is outside the {total} tokens described by grid_thw")
    if merged:
        per_frame = (h // merge_size) * (w // merge_size)
        frame, k = divmod(offset, per_frame)
        row, col = divmod(k, w // merge_size)
        size = patch_size * merge_size
    else:
        frame, k = divmod(offset, h * w)
        raster = int(merge_order_to_raster_index(h, w, merge_size)[k])
        row, col = divmod(raster, w)
        size = patch_size
    return PixelBox(image, frame, row, col, col * size, row * size, (col + 1) * size, (row + 1) * size)
