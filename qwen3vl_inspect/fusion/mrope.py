"""MRoPE: the 3D (t, h, w) position of every token, and which rotary frequencies read which axis.

Text advances t, h and w together, one per token. A run of image pads (or one video frame's pads)
gets t = h = w = the running position as origin plus (frame, row, col) on the merged grid; the
text after it starts at origin + max(rows, cols), so positions stay compact. Same rule and order
as transformers' `Qwen3VLModel.get_rope_index` (videos split into one grid per temporal patch,
as the processor writes one `<|vision_start|>…<|vision_end|>` block per frame).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from rich.text import Text

from qwen3vl_inspect.errors import InputError

TEXT, IMAGE, VIDEO = 0, 1, 2
AXES = ("t", "h", "w")


def modality_types(input_ids: torch.Tensor, image_token_id: int, video_token_id: int) -> torch.Tensor:
    """0 text, 1 image pad, 2 video pad per token: the processor's `mm_token_type_ids`."""
    types = torch.zeros_like(input_ids, dtype=torch.int32)
    types[input_ids == image_token_id] = IMAGE
    types[input_ids == video_token_id] = VIDEO
    return types


def vision_grids(grid_thw: Sequence[Sequence[int]], media: Sequence[str]) -> dict[int, list[tuple[int, int, int]]]:
    """Per modality, the grid of each run of pads in order: an image is one run, a video one run per temporal patch."""
    grids: dict[int, list[tuple[int, int, int]]] = {IMAGE: [], VIDEO: []}
    for (t, h, w), kind in zip(grid_thw, media):
        if kind == "image":
            grids[IMAGE].append((int(t), int(h), int(w)))
        else:
            grids[VIDEO] += [(1, int(h), int(w))] * int(t)
    return grids


def rope_index(
    input_ids: torch.Tensor,
    grid_thw: Sequence[Sequence[int]],
    media: Sequence[str],
    image_token_id: int,
    video_token_id: int,
    spatial_merge_size: int = 2,
) -> tuple[torch.Tensor, int]:
    """position_ids [3, 1, S] (rows t, h, w) for one sequence `input_ids` [1, S] or [S], and the rope delta.

    The delta (max position + 1 − S) is what generation adds to later positions.
    """
    ids = input_ids.reshape(-1)
    types = modality_types(ids, image_token_id, video_token_id).tolist()
    grids = {kind: iter(g) for kind, g in vision_grids(grid_thw, media).items()}
    pieces, position = [], 0
    for kind, group in itertools.groupby(enumerate(types), key=lambda item: item[1]):
        length = len(list(group))
        if kind == TEXT:
            pieces.append(torch.arange(position, position + length).expand(3, -1))  # (3, length)
            position += length
            continue
        grid = next(grids[kind], None)
        if grid is None:
            noun = "image" if kind == IMAGE else "video frame"
            raise InputError(f"more runs of {noun} pads in input_ids than {noun}s in grid_thw {[list(g) for g in grid_thw]}")
        t, h, w = grid[0], grid[1] // spatial_merge_size, grid[2] // spatial_merge_size
        if t * h * w != length:
            raise InputError(f"a run of {length} pads meets grid {list(grid)}, which needs {t * h * w}")
        tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")  # (t, h, w) each
        pieces.append(torch.stack([tt, hh, ww]).reshape(3, -1) + position)  # (3, t·h·w)
        position += max(h, w)
    positions = torch.cat(pieces, dim=1).to(ids.device) if pieces else torch.zeros(3, 0, dtype=torch.long)
    delta = int(positions.max()) + 1 - ids.numel() if positions.numel() else 0
    return positions[:, None, :], delta  # (3, 1, S)


@dataclass(frozen=True)
class MRopeLayout:
    """Which axis (t/h/w) each of the head_dim/2 rotary frequencies is turned by."""

    head_dim: int
    mrope_section: tuple[int, int, int]
    interleaved: bool
    rope_theta: float
    axis: tuple[str, ...]  # len head_dim/2, "t" | "h" | "w"
    inv_freq: torch.Tensor  # [head_dim/2]

    def angles(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Rotation angle of each frequency at each token: [S, head_dim/2] from position_ids [3, 1, S]."""
        pos = position_ids.reshape(3, -1).double()  # (3, S)
        rows = torch.tensor([AXES.index(a) for a in self.axis])
        return (pos[rows].T * self.inv_freq.double()).float()  # (S, head_dim/2)

    def counts(self) -> dict[str, int]:
        return {a: self.axis.count(a) for a in AXES}

    def __rich__(self) -> Text:
        colours = {"t": "bold yellow", "h": "bold cyan", "w": "bold magenta"}
        text = Text(f"MRoPE: {self.head_dim // 2} frequency pairs per head (head_dim {self.head_dim}), "
                    f"mrope_section {list(self.mrope_section)}, {'interleaved' if self.interleaved else 'blocked'}\n")
        for a in self.axis:
            text.append(a.upper(), style=colours[a])
        counts = self.counts()
        text.append(f"\n  fastest → slowest frequency; t {counts['t']}, h {counts['h']}, w {counts['w']}")
        return text


def mrope_layout(head_dim: int = 128, mrope_section: Sequence[int] = (24, 20, 20), rope_theta: float = 5_000_000.0,
                 interleaved: bool = True) -> MRopeLayout:
    """transformers' `Qwen3VLTextRotaryEmbedding` split: interleaved THWTHW… up to 3·section[h|w], then t.

    transformers writes axis h at slots 1, 4, 7, … below 3·section[1] (w at 2, 5, 8, …) with a slice,
    and a slice stops at the end: a section whose interleave overruns head_dim/2 (head_dim 16,
    section [2, 3, 3] reaches slot 8 of 0…7) is clipped there, not an error. Same here.
    """
    half = head_dim // 2
    section = tuple(int(s) for s in mrope_section)
    if len(section) != 3 or sum(section) != half:
        raise InputError(f"mrope_section {list(section)} must have 3 parts summing to head_dim/2 = {half}")
    if interleaved:
        axis = ["t"] * half
        for index, name in ((1, "h"), (2, "w")):
            for j in range(index, min(3 * section[index], half), 3):  # clipped like transformers' slice
                axis[j] = name
    else:
        axis = ["t"] * section[0] + ["h"] * section[1] + ["w"] * section[2]
    inv_freq = 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
    return MRopeLayout(head_dim, section, interleaved, float(rope_theta), tuple(axis), inv_freq)  # type: ignore[arg-type]
