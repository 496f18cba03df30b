"""The encoder as a graph without grid loops: what `torch.onnx.export` traces.

`VisionEncoder.forward` walks `grid_thw` in Python (one loop per image for the position taps, and
attention split by `cu_seqlens`). An exported graph cannot keep those loops for a patch count it has
never seen, so the data-dependent pieces become inputs, computed by the same position code
(`model/positions.py`) at run time:

    pixel_values    [N, C·T·P·P]  float32   the patches, merge order (as `preprocess` gives them)
    interp_indices  [N, 4]        int64     learned-grid entries each patch blends
    interp_weights  [N, 4]        float32   their bilinear weights
    rotary_ids      [N, 2]        int64     (row, col) of each patch: cos/sin are computed in the graph
    segment_ids     [N]           int64     attention segment (one per image frame) of each patch

Attention stays block-diagonal over packed images through a boolean [N, N] mask built from
`segment_ids` (patch i may attend to j iff they share a segment): the same numbers as attending to
each segment alone, expressed with ops ONNX has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.model.layers import Attention, Block
from qwen3vl_inspect.model.positions import PatchPositions, patch_positions

INPUT_NAMES = ("pixel_values", "interp_indices", "interp_weights", "rotary_ids", "segment_ids")
# Stages before the blocks that an export with intermediates also returns (canonical Trace names).
EARLY_STAGES = ("patch_embed", "pos_embed", "rotary")


def graph_inputs(config: VisionConfig, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> dict[str, torch.Tensor]:
    """The exported graph's inputs for one packed batch, by input name (CPU tensors)."""
    positions = patch_positions(grid_thw.cpu(), config.num_grid_per_side, config.spatial_merge_size)
    lengths = (positions.cu_seqlens[1:] - positions.cu_seqlens[:-1]).long()
    segments = torch.repeat_interleave(torch.arange(len(lengths)), lengths)  # (N,)
    return dict(
        pixel_values=pixel_values.detach().float().cpu(),
        interp_indices=positions.interp_indices.long(),
        interp_weights=positions.interp_weights.float(),
        rotary_ids=positions.rotary_ids.long(),
        segment_ids=segments,
    )


def output_names(config: VisionConfig, intermediates: bool) -> list[str]:
    """Output names in data-flow order: canonical Trace stage names, so a runner needs no mapping."""
    names = list(EARLY_STAGES) if intermediates else []
    for layer in range(config.depth):
        if intermediates:
            names.append(f"blocks.{layer}")
        if layer in config.deepstack_visual_indexes:
            names.append(f"deepstack.{config.deepstack_visual_indexes.index(layer)}")
    return names + ["merger"]


def masked_attention(attn: Attention, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor],
                     allowed: torch.Tensor) -> torch.Tensor:
    """`Attention.forward` with the per-segment split replaced by a block-diagonal mask."""
    q, k, v = attn.project_qkv(x, rotary)  # (heads, N, hd) each, q/k rotated
    out = F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=allowed, scale=attn.scale)[0]
    merged = out.transpose(0, 1).reshape(x.shape[0], -1)  # (N, heads·hd)
    return attn.proj(merged)


def masked_block(block: Block, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor],
                 allowed: torch.Tensor) -> torch.Tensor:
    """`Block.forward` (pre-norm residuals) around the masked attention."""
    x = x + masked_attention(block.attn, block.norm1(x), rotary, allowed)
    return x + block.mlp(block.norm2(x))


class ExportedEncoder(nn.Module):
    """Wraps a `VisionEncoder` (shares its weights) with grid-free inputs; returns a tuple in `names` order.

    Every stage other than attention is the encoder's own stage method, so the exported numbers
    are the encoder's numbers.
    """

    def __init__(self, encoder: VisionEncoder, intermediates: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.intermediates = intermediates
        self.names = output_names(encoder.config, intermediates)

    def forward(self, pixel_values: torch.Tensor, interp_indices: torch.Tensor, interp_weights: torch.Tensor,
                rotary_ids: torch.Tensor, segment_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoder = self.encoder
        # Only the fields the stage methods read; grid_thw/cu_seqlens have no place in a grid-free graph.
        positions = PatchPositions(grid_thw=segment_ids, interp_indices=interp_indices, interp_weights=interp_weights,
                                   rotary_ids=rotary_ids, cu_seqlens=segment_ids)
        outputs: dict[str, torch.Tensor] = {}
        hidden = outputs["patch_embed"] = encoder.embed_patches(pixel_values)
        hidden = outputs["pos_embed"] = hidden + encoder.position_embedding(positions, hidden.dtype)
        rotary = encoder.rotary_embedding(positions)
        outputs["rotary"] = rotary[0]
        allowed = segment_ids[:, None] == segment_ids[None, :]  # (N, N): block-diagonal over segments
        for layer, block in enumerate(encoder.blocks):
            hidden = outputs[f"blocks.{layer}"] = masked_block(block, hidden, rotary, allowed)
            feature = encoder.deepstack_merge(layer, hidden)
            if feature is not None:
                outputs[f"deepstack.{encoder.config.deepstack_visual_indexes.index(layer)}"] = feature
        outputs["merger"] = encoder.merge(hidden)
        return tuple(outputs[name] for name in self.names)
