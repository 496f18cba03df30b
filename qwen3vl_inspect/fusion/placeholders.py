"""Pads ⇄ features: the count check and the scatter of merger outputs into the pad positions.

transformers only says "Image features and image tokens do not match, tokens: 63, features: 64".
Here the same check names the image (and video frame) whose run of pads is off, its grid, the
count the grid needs (t·h·w / merge²) and the count found, and says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qwen3vl_inspect.errors import InputError


@dataclass(frozen=True)
class ExpectedRun:
    media: int  # row of grid_thw
    frame: int | None  # temporal patch of a video; None for an image
    count: int
    grid: tuple[int, int, int]


def merged_counts(grid_thw: Sequence[Sequence[int]], merge_size: int) -> list[int]:
    """Merged tokens per grid row: t·h·w / merge²."""
    return [int(t) * int(h) * int(w) // (merge_size * merge_size) for t, h, w in grid_thw]


def expected_runs(grid_thw: Sequence[Sequence[int]], media: Sequence[str], kind: str, merge_size: int) -> list[ExpectedRun]:
    """The runs of pads the processor writes for `kind`: one per image, one per temporal patch of a video."""
    unit = merge_size * merge_size
    runs = []
    for index, ((t, h, w), item) in enumerate(zip(grid_thw, media)):
        grid = (int(t), int(h), int(w))
        if item != kind:
            continue
        if kind == "image":
            runs.append(ExpectedRun(index, None, grid[0] * grid[1] * grid[2] // unit, grid))
        else:
            runs += [ExpectedRun(index, f, grid[1] * grid[2] // unit, grid) for f in range(grid[0])]
    return runs


def pad_runs(ids: Sequence[int], pad_id: int) -> list[int]:
    """Lengths of the runs of consecutive `pad_id` tokens, in order."""
    runs, length = [], 0
    for token in ids:
        if token == pad_id:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs + ([length] if length else [])


def check_placeholders(ids: Sequence[int], grid_thw: Sequence[Sequence[int]], media: Sequence[str],
                       pad_ids: dict[str, int], merge_size: int) -> None:
    """Raise InputError naming the first image/frame whose pads don't match its grid."""
    for kind in ("image", "video"):
        pad_id, pad = pad_ids[kind], f"<|{kind}_pad|>"
        expected = expected_runs(grid_thw, media, kind, merge_size)
        found = pad_runs(ids, pad_id)
        if found == [run.count for run in expected]:
            continue
        total_found, total_expected = sum(found), sum(run.count for run in expected)
        head = (f"{kind.capitalize()} features and {kind} tokens do not match, tokens: {total_found}, "
                f"features: {total_expected}")
        if not expected:
            detail = f"input_ids hold {total_found} {pad} (id {pad_id}) but grid_thw has no {kind}"
            advice = f"remove them, or pass the {kind}'s grid"
        elif len(found) == len(expected):
            j = next(j for j, run in enumerate(expected) if found[j] != run.count)
            detail = f"{_describe(expected[j], merge_size)} needs {_formula(expected[j], merge_size)} = " \
                     f"{expected[j].count} {pad} (id {pad_id}), found {found[j]} in its run"
            advice = _advice(kind)
        else:
            unit = "frame run" if kind == "video" else kind
            detail = (f"input_ids have {len(found)} run(s) of {pad} (id {pad_id}) with {_listing(found)} tokens, "
                      f"grid_thw {[list(r.grid) for r in expected if r.frame in (None, 0)]} needs {len(expected)} "
                      f"{unit} run(s) with {_listing([r.count for r in expected])}")
            advice = _advice(kind)
        raise InputError(f"{head}: {detail}; {advice}")


def _describe(run: ExpectedRun, merge_size: int) -> str:
    t, h, w = run.grid
    where = f"video {run.media} frame {run.frame}" if run.frame is not None else f"image {run.media}"
    return f"{where} (grid t={t} h={h} w={w})"


def _formula(run: ExpectedRun, merge_size: int) -> str:
    t, h, w = run.grid
    return f"{h}·{w}/{merge_size}²" if run.frame is not None else f"{t}·{h}·{w}/{merge_size}²"


def _advice(kind: str) -> str:
    if kind == "image":
        return ("expand each <|image_pad|> to t·h·w/merge² copies as the processor does, with the grid_thw "
                "the vision features were computed from")
    return ("write each video as one <|vision_start|><|video_pad|>×(h·w/merge²)<|vision_end|> block per temporal "
            "patch, as the processor does, with the video's grid_thw")


def _listing(values: Sequence[int], limit: int = 6) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return f"[{shown}{', …' if len(values) > limit else ''}]"


def media_positions(ids: torch.Tensor, grid_thw: Sequence[Sequence[int]], media: Sequence[str],
                    pad_ids: dict[str, int], merge_size: int) -> list[torch.Tensor]:
    """For each grid row, the sequence positions of its pads, in feature order (call after the check)."""
    counts = merged_counts(grid_thw, merge_size)
    positions = {kind: torch.nonzero(ids.reshape(-1) == pad_ids[kind]).reshape(-1) for kind in ("image", "video")}
    taken = {"image": 0, "video": 0}
    out = []
    for count, kind in zip(counts, media):
        out.append(positions[kind][taken[kind]: taken[kind] + count])
        taken[kind] += count
    return out


def scatter(embeds: torch.Tensor, features: torch.Tensor, positions: Sequence[torch.Tensor],
            counts: Sequence[int]) -> torch.Tensor:
    """embeds [S, D] with each media's merged features [n_i, D] written at its positions, in order."""
    out = embeds.clone()
    for chunk, where in zip(torch.split(features, list(counts)), positions):
        out[where.to(out.device)] = chunk.to(out.device, out.dtype)
    return out


def deepstack_joint(feature: torch.Tensor, positions: Sequence[torch.Tensor], counts: Sequence[int],
                    visual_positions: torch.Tensor) -> torch.Tensor:
    """One DeepStack feature [N, D] (grid order) re-ordered to the visual positions' order, as transformers joins them."""
    rank = torch.full((int(visual_positions.max()) + 1 if visual_positions.numel() else 0,), -1, dtype=torch.long)
    rank[visual_positions] = torch.arange(visual_positions.numel())
    joint = feature.new_zeros(visual_positions.numel(), feature.shape[-1])  # (Nv, D)
    for chunk, where in zip(torch.split(feature, list(counts)), positions):
        joint[rank[where].to(joint.device)] = chunk
    return joint
