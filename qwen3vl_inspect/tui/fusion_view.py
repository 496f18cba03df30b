"""The fusion view's picture and its selected token, from a FusionResult: pure numpy, no textual.

The picture is the merged-token grid of the first image, each cell (one 2×2 patch group, one
`<|image_pad|>`) coloured by its index in the language model's input sequence; the selected token
is outlined on the patch grid it covers (`query_span` = merge size), so clicks and arrows work as
for an attention query.
"""

from __future__ import annotations

import numpy as np

from qwen3vl_inspect.fusion import FusionResult, TokenInfo
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec


def image_tokens(result: FusionResult, media: int = 0) -> list[TokenInfo]:
    """The visual tokens of one image (or video), in sequence order = merged-grid raster order per frame."""
    return [token for token in result.tokens if token.is_visual and token.media == media]


def merged_grid(result: FusionResult, media: int = 0) -> tuple[int, int]:
    _, h, w = (int(v) for v in result.grid_thw[media].tolist())
    merge = result.text_side.spatial_merge_size
    return h // merge, w // merge


def token_at(result: FusionResult, row: int, col: int, media: int = 0) -> TokenInfo:
    """The first frame's token at merged-grid (row, col)."""
    _, cols = merged_grid(result, media)
    return image_tokens(result, media)[row * cols + col]


def short_source(result: FusionResult) -> str:
    return "random stand-in embeddings" if result.random_embeddings else "embeddings from the checkpoint"


def describe_position(token: TokenInfo) -> str:
    """Short, for the caption: the token's index in the sequence and its MRoPE position id."""
    t, h, w = token.position
    return f"seq {token.index} (t,h,w)=({t},{h},{w})"


def fusion_overlay(result: FusionResult, spec: ViewSpec) -> Overlay:
    """`spec.query` is the selected token's top-left patch (patch-grid row, col)."""
    merge = result.text_side.spatial_merge_size
    rows, cols = merged_grid(result)
    tokens = image_tokens(result)
    values = np.array([token.index for token in tokens[:rows * cols]], dtype=float).reshape(rows, cols)
    what = f"{short_source(result)} · colour: sequence index of each <|image_pad|>"
    notes: list[str] = []
    label = "token"
    if spec.query is not None:
        token = token_at(result, spec.query[0] // merge, spec.query[1] // merge)
        label = describe_position(token)
        notes.append(f"selected: image token {token.media_token} (row {token.row}, col {token.col}) = "
                     f"sequence index {token.index}, MRoPE position id (t, h, w) = {token.position}")
    return Overlay(spec, what, values=values, groups=1, query=spec.query, notes=notes, query_span=merge,
                   query_label=label)
