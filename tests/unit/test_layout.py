"""Merge order versus raster order, and where each token sits on the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qwen3vl_inspect.inputs.layout import (
    merge_order_row_col,
    merge_order_to_raster_index,
    merge_to_raster,
    raster_to_merge,
    token_pixel_box,
)
from qwen3vl_inspect.inputs.preprocess import patchify

P, M = 16, 2

PACKS = [
    [[1, 2, 2]],
    [[1, 4, 6]],
    [[1, 4, 6], [2, 2, 8], [3, 6, 4]],  # images and videos packed together
    [[4, 8, 2], [1, 2, 10]],
]


def total(grid_thw, merged=False):
    return sum(t * h * w for t, h, w in grid_thw) // (M * M if merged else 1)


@pytest.mark.parametrize("pack", PACKS)
@pytest.mark.parametrize("trailing", [(), (5,), (2, 3)])
def test_merge_and_raster_are_exact_inverses(pack, trailing):
    grid_thw = torch.tensor(pack)
    x = torch.randn(total(pack), *trailing)
    assert torch.equal(raster_to_merge(merge_to_raster(x, grid_thw, M), grid_thw, M), x)
    assert torch.equal(merge_to_raster(raster_to_merge(x, grid_thw, M), grid_thw, M), x)
    if any(w > M for _, _, w in pack):  # one block per row is already raster order; otherwise not
        assert not torch.equal(merge_to_raster(x, grid_thw, M), x)


def test_merge_order_index_is_a_permutation():
    idx = merge_order_to_raster_index(6, 4, M)
    assert sorted(idx.tolist()) == list(range(24))
    assert idx[:8].tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    rows, cols = merge_order_row_col(6, 4, M)
    assert torch.equal(rows * 4 + cols, idx)


def test_wrong_row_count_is_refused():
    with pytest.raises(ValueError, match="describes 24 tokens"):
        merge_to_raster(torch.zeros(23), torch.tensor([[1, 4, 6]]), M)


@pytest.mark.parametrize("pack", PACKS)
def test_patchify_output_in_raster_order_after_merge_to_raster(pack):
    """Ties the layout helpers to the real patch order: patches tagged with their raster id."""
    rows = []
    for t, h, w in pack:
        ids = np.arange(h * w, dtype=np.float32).reshape(h, w)  # raster id per patch
        frame = np.kron(ids, np.ones((P, P), dtype=np.float32))[None].repeat(3, axis=0)  # (C, H, W)
        frames = np.broadcast_to(frame, (2 * t, *frame.shape))  # (t·T, C, H, W)
        rows.append(patchify(np.ascontiguousarray(frames), P, M, 2)[0][:, 0])
    raster = merge_to_raster(torch.from_numpy(np.concatenate(rows)), torch.tensor(pack), M)
    expected = torch.cat([torch.arange(h * w, dtype=torch.float32).repeat(t) for t, h, w in pack])
    assert torch.equal(raster, expected)


def box_table(grid_thw, merged):
    """(image, frame, top, left, bottom, right) of every token, in sequence order."""
    boxes = [token_pixel_box(i, grid_thw, P, M, merged=merged) for i in range(total(grid_thw.tolist(), merged))]
    return torch.tensor([[b.image, b.frame, b.top, b.left, b.bottom, b.right] for b in boxes])


@pytest.mark.parametrize("pack", PACKS)
def test_patch_boxes_become_row_major_after_merge_to_raster(pack):
    grid_thw = torch.tensor(pack)
    table = box_table(grid_thw, merged=False)
    assert torch.all(table[:, 4] - table[:, 2] == P) and torch.all(table[:, 5] - table[:, 3] == P)
    centers = torch.stack([(table[:, 2] + table[:, 4]) / 2, (table[:, 3] + table[:, 5]) / 2], dim=1)  # (N, 2)
    raster = merge_to_raster(torch.cat([table[:, :2].float(), centers], dim=1), grid_thw, M)  # (N, 4)
    start = 0
    for image, (t, h, w) in enumerate(pack):
        chunk = raster[start:start + t * h * w].reshape(t, h, w, 4)  # (t, h, w, [image, frame, cy, cx])
        start += t * h * w
        assert torch.all(chunk[..., 0] == image)
        assert torch.equal(chunk[..., 1], torch.arange(t).float()[:, None, None].expand(t, h, w))
        expected_cy = (torch.arange(h).float() * P + P / 2)[:, None].expand(h, w)
        expected_cx = (torch.arange(w).float() * P + P / 2)[None, :].expand(h, w)
        for f in range(t):  # every frame of a video covers the same pixels
            assert torch.equal(chunk[f, ..., 2], expected_cy) and torch.equal(chunk[f, ..., 3], expected_cx)


@pytest.mark.parametrize("pack", PACKS)
def test_merged_token_box_is_the_union_of_its_patches(pack):
    grid_thw = torch.tensor(pack)
    patches, merged = box_table(grid_thw, merged=False), box_table(grid_thw, merged=True)
    assert len(patches) == 4 * len(merged)
    group = patches.reshape(-1, M * M, 6)  # (tokens, m·m, 6): the m·m patches each merged token fuses
    assert torch.equal(merged[:, :2], group[:, 0, :2])
    assert torch.equal(merged[:, 2:4], group[:, :, 2:4].min(dim=1).values)
    assert torch.equal(merged[:, 4:6], group[:, :, 4:6].max(dim=1).values)
    assert torch.all(merged[:, 4] - merged[:, 2] == P * M)
    # merged tokens are already row-major within each frame: (image, frame, top, left) increases
    key = ((merged[:, 0] * 1000 + merged[:, 1]) * 100000 + merged[:, 2]) * 100000 + merged[:, 3]
    assert torch.all(key[1:] > key[:-1])


def test_video_frames_in_boxes():
    grid_thw = torch.tensor([[1, 2, 2], [3, 4, 4]])
    first_video_patch = 4
    box = token_pixel_box(first_video_patch + 2 * 16 + 5, grid_thw, P, M)
    assert (box.image, box.frame) == (1, 2)
    assert (box.row, box.col) == (0, 3)  # merge position 5 = block (0, 1), inner (0, 1)
    assert (box.left, box.top, box.right, box.bottom) == (48, 0, 64, 16)
    merged = token_pixel_box(1 + 2 * 4 + 3, grid_thw, P, M, merged=True)
    assert (merged.image, merged.frame, merged.row, merged.col) == (1, 2, 1, 1)
    assert (merged.left, merged.top, merged.right, merged.bottom) == (32, 32, 64, 64)


@pytest.mark.parametrize("merged", [False, True])
def test_out_of_range_index_raises_index_error(merged):
    grid_thw = torch.tensor([[1, 4, 6], [2, 2, 2]])
    count = total(grid_thw.tolist(), merged)
    token_pixel_box(count - 1, grid_thw, P, M, merged=merged)  # the last one is fine
    for index in (count, count + 7):
        with pytest.raises(IndexError, match=f"outside the {count} tokens"):
            token_pixel_box(index, grid_thw, P, M, merged=merged)


def test_negative_index_raises_index_error():
    with pytest.raises(IndexError):
        token_pixel_box(-1, torch.tensor([[1, 4, 6]]), P, M)
