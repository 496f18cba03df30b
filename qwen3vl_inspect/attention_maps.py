"""Attention maps on demand: one layer at a time, from that layer's stored input, in raster order.

All layers × heads at once would not fit (24 × 16 × 2304² floats = 8 GB), and transformers' vision
attention never returns its weights, so the maps are recomputed here from the block input with the
block's own modules (`norm1`, `attn.project_qk`, `attn.probabilities`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.layout import merge_order_to_raster_index
from qwen3vl_inspect.model.layers import Block

BYTES_PER_PROB = 4  # maps are float32


@dataclass(frozen=True)
class Segment:
    """One attention segment (a frame of an image): rows [start, end) of the packed sequence."""

    image: int
    frame: int
    start: int
    end: int
    grid_h: int
    grid_w: int

    @property
    def size(self) -> int:
        return self.end - self.start


def find_segment(grid_thw: torch.Tensor, image: int, frame: int = 0) -> Segment:
    grids = grid_thw.tolist()
    if not 0 <= image < len(grids):
        raise InputError(f"image {image} does not exist: this input has {len(grids)} image(s), numbered from 0")
    start = sum(t * h * w for t, h, w in grids[:image])
    t, h, w = grids[image]
    if not 0 <= frame < t:
        raise InputError(f"frame {frame} does not exist: image {image} has {t} temporal patch(es)")
    start += frame * h * w
    return Segment(image, frame, start, start + h * w, h, w)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def check_trace_budget(needed: int, budget: int, pixels: int) -> None:
    """Refuse a trace whose kept tensors exceed the budget (they grow linearly with the pixel count)."""
    if needed <= budget:
        return
    max_pixels = max(int(pixels * budget / needed) // 1024 * 1024, 32 * 32)
    raise InputError(
        f"this trace would keep {_size(needed)} of tensors, over the {_size(budget)} budget; "
        f"re-run with --max-pixels {max_pixels} or less"
    )


def raster_inverse(grid_h: int, grid_w: int, merge_size: int) -> torch.Tensor:
    """`inv[r]` = merge-order position of the patch at raster position r."""
    return torch.argsort(merge_order_to_raster_index(grid_h, grid_w, merge_size))


def layer_probabilities(
    block: Block,
    hidden: torch.Tensor,
    rotary: tuple[torch.Tensor, torch.Tensor],
    segment: Segment,
    heads: list[int],
    merge_size: int,
) -> torch.Tensor:
    """Attention probabilities of `heads` in one segment, raster order: (len(heads), n, n), float32."""
    rows = slice(segment.start, segment.end)
    x = block.norm1(hidden[rows])  # (n, hidden)
    q, k = block.attn.project_qk(x, (rotary[0][rows], rotary[1][rows]), heads)  # (h, n, hd) each
    inv = raster_inverse(segment.grid_h, segment.grid_w, merge_size).to(q.device)
    q, k = q[:, inv], k[:, inv]  # raster order before the product: rows and columns both follow
    return block.attn.probabilities(q, k)  # (h, n, n)


def rollout_step(result: torch.Tensor | None, layer_mean: torch.Tensor) -> torch.Tensor:
    """One layer of attention rollout (Abnar & Zuidema 2020): (0.5·A + 0.5·I), rows renormalised, times
    the product so far. Entry [i, j] of the final product is how much of token i's representation
    flows from input token j. Multiplying layer by layer keeps one layer's map alive at a time."""
    mixed = layer_mean * 0.5
    mixed.diagonal().add_(0.5)
    mixed.div_(mixed.sum(-1, keepdim=True))
    return mixed if result is None else mixed @ result


def rollout(layer_means: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout over head-averaged (n, n) maps from layer 0 upward."""
    if not layer_means:
        raise ValueError("rollout needs at least one layer")
    result = None
    for attention in layer_means:
        result = rollout_step(result, attention)
    return result


def head_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean over queries of each head's attention entropy in nats: (heads,). log(n) means uniform."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(-1).mean(-1)


def patch_distances(grid_h: int, grid_w: int, device: torch.device | None = None) -> torch.Tensor:
    """Euclidean distance in patches between every pair of raster positions: (n, n)."""
    rows = torch.arange(grid_h, device=device).repeat_interleave(grid_w).float()
    cols = torch.arange(grid_w, device=device).repeat(grid_h).float()
    coords = torch.stack([rows, cols], dim=-1)  # (n, 2)
    return torch.cdist(coords, coords)


def mean_attention_distance(probs: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Average distance (in patches) between a query and what it attends to, per head: (heads,)."""
    return (probs * patch_distances(grid_h, grid_w, probs.device)).sum(-1).mean(-1)


@dataclass(frozen=True)
class Sink:
    row: int
    col: int
    received: float  # mean attention this patch receives per query (uniform would be 1/n)
    ratio: float  # received ÷ uniform


def attention_sinks(probs: torch.Tensor, grid_w: int, factor: float = 5.0, limit: int = 10) -> list[Sink]:
    """Patches receiving at least `factor` × their uniform share of attention (head-averaged), strongest first."""
    received = probs.mean(0).mean(0) if probs.dim() == 3 else probs.mean(0)  # (n,) column means
    uniform = 1.0 / received.shape[0]
    order = torch.argsort(received, descending=True)[:limit]
    return [
        Sink(int(i) // grid_w, int(i) % grid_w, float(received[i]), float(received[i]) / uniform)
        for i in order.tolist()
        if float(received[i]) >= factor * uniform
    ]
