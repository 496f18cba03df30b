"""One plain-language paragraph per kind of stage: what it does and why, with this run's numbers.

The views (TUI, notebooks, CLI) show these next to the tensors; the Trace fills in the numbers.
"""

from __future__ import annotations

from typing import Any

TEXTS: dict[str, str] = {
    "input": (
        "The image is resized so both sides are multiples of {factor} pixels (16-pixel patches, merged 2×2 "
        "later), keeping the aspect ratio and the pixel count between min_pixels and max_pixels. "
        "{sizes} became {resized}: a grid of {grids} patches (t × rows × cols)."
    ),
    "patchify": (
        "The resized image is cut into 16×16 patches. Each patch is repeated over 2 time steps (a still image "
        "is a 2-frame video to the Conv3d) and flattened: 3 channels × 2 × 16 × 16 = {patch_dim} numbers per "
        "row. Rows are listed 2×2 block by 2×2 block ('merge order'), not row by row, so that the merger can "
        "later fuse each block with a plain reshape. Result: {n} rows."
    ),
    "patch_embed": (
        "A Conv3d whose kernel equals its stride (2×16×16) maps each {patch_dim}-number patch to a "
        "{hidden}-dimensional vector: one matrix product per patch. Nothing mixes between patches yet."
    ),
    "pos_embed": (
        "The model learned a {side}×{side} grid of position vectors. Each patch gets the bilinear blend of "
        "the 4 grid vectors nearest to its (row, col), with the grid stretched over this image's "
        "{grids} patch grid, and the blend is added to the patch vector. This tells every patch where it "
        "sits, whatever the image size."
    ),
    "rotary": (
        "2D rotary embedding: every query and key in every attention layer is rotated by angles that depend "
        "on its patch's row and column (half of each head's {head_dim} dimensions by the row, half by the "
        "column). The dot product of a rotated query and key then depends on their relative offset. Here: "
        "the cos/sin tables [{n}, {head_dim}], computed once and reused by all {depth} blocks."
    ),
    "block": (
        "Transformer block {layer} of {depth}: every patch attends to every patch of the same image "
        "({heads} heads of {head_dim} dims), then a {mlp}-wide MLP transforms each patch on its own. Both "
        "are added to the input (residual connections), so the block refines rather than replaces."
        "{tap_text}"
    ),
    "norm1": "LayerNorm before attention: each patch vector is scaled to zero mean and unit variance, then re-weighted.",
    "attn": (
        "Self-attention: each patch forms a query, key and value per head; its output is the softmax(QKᵀ/√d)-"
        "weighted mix of the values of all patches in its image. Images packed together never see each other."
    ),
    "residual1": "Residual: the attention output is added back to the block's input.",
    "norm2": "LayerNorm before the MLP.",
    "mlp": "MLP: {hidden} → {mlp} → {hidden} with GELU, applied to each patch independently.",
    "residual2": "Residual: the MLP output is added; this is the block's output.",
    "deepstack": (
        "DeepStack tap {index}: the output of block {layer} is merged 2×2 (LayerNorm after the shuffle) and "
        "projected to the language model's width, {merged} × {out}. It will be added to the hidden states "
        "of text decoder layer {index} at the image positions, giving the language model mid-level visual "
        "detail, not only the final layer."
    ),
    "merger": (
        "The patch merger concatenates each 2×2 block of neighbouring patches (LayerNorm first, then the "
        "4 × {hidden} = {merged_width}-wide concatenation) and projects it with a 2-layer MLP to the "
        "language model's width: {n} patches → {merged} tokens of {out}. These are the tokens that replace "
        "the <|image_pad|> placeholders in the prompt."
    ),
    "fusion": (
        "Vision-to-text fusion: the chat prompt holds one <|image_pad|> per merged token ({merged} here, one "
        "per 2×2 patch group, listed row by row over the {rows}×{cols} merged grid). The text tokens are "
        "looked up in the language model's embedding table; the merger's {merged} outputs are written into "
        "the pad positions in order. MRoPE gives every token a (t, h, w) position: text advances all three "
        "together, an image's tokens share t and take their row and column as h and w, and the text after "
        "the image resumes past its largest side. DeepStack then adds the tapped blocks' merged features "
        "to the hidden states of the first text layers, at the image positions only."
    ),
}


def explain(kind: str, **numbers: Any) -> str:
    """The teaching paragraph for a stage kind, with this run's numbers filled in."""
    return TEXTS[kind].format_map(_Lenient(numbers))


class _Lenient(dict):
    """Leave unknown fields visible as {name} rather than failing: teaching text must never crash a run."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
