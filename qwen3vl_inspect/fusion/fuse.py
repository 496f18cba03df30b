"""`fuse`: from the vision tower's output to exactly what Qwen3-VL's language model receives.

    out = trace(encoder, inputs).run().output()          # or encoder(pixel_values, grid_thw)
    result = fuse(out, inputs.grid_thw, text="Describe this image.", checkpoint=folder_or_preset)
    result.input_ids, result.inputs_embeds, result.visual_pos_mask, result.position_ids, result.tokens

Steps, each as transformers does them: chat prompt → expand pads (processor) → tokenize → check pad
counts against the features → embed the text tokens → scatter merger outputs into the pad positions
→ visual mask and DeepStack features in visual-position order → 3D MRoPE positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from qwen3vl_inspect.config import checkpoint_folder
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion import placeholders
from qwen3vl_inspect.fusion.deepstack import deepstack_plan
from qwen3vl_inspect.fusion.embeddings import find_embedding_table, read_embedding_rows, stand_in_rows, stand_in_source
from qwen3vl_inspect.fusion.mrope import modality_types, mrope_layout, rope_index
from qwen3vl_inspect.fusion.result import MEDIA_KINDS, FusionResult, TokenInfo
from qwen3vl_inspect.fusion.text_config import TextSide, text_side_for
from qwen3vl_inspect.fusion.tokens import (
    DEFAULT_VIDEO_FPS,
    IMAGE_PAD,
    VIDEO_PAD,
    chat_prompt,
    expand_placeholders,
    load_tokenizer,
    video_timestamps,
)
from qwen3vl_inspect.inputs.layout import token_pixel_box

if TYPE_CHECKING:
    from qwen3vl_inspect.tracing import Trace

DEFAULT_TEXT = "Describe this image."


def fuse(
    vision_output: Any,
    grid_thw: torch.Tensor | Sequence[Sequence[int]] | None = None,
    text: str = DEFAULT_TEXT,
    checkpoint: str | Path | None = None,
    *,
    media: Sequence[str] | None = None,
    input_ids: torch.Tensor | Sequence[int] | None = None,
    video_fps: float = DEFAULT_VIDEO_FPS,
    video_timestamps_s: Sequence[Sequence[float]] | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> FusionResult:
    """The language model's input for `vision_output` (a VisionOutput, or anything with `pooler_output`).

    `checkpoint`: a Qwen3-VL folder (real tokenizer.json if present, real embedding rows), a preset
    name, or None (random stand-in embeddings; labelled so). `media[i]` says whether grid row i is an
    "image" (default) or a "video"; videos' frame times come from `video_fps` (frames 0, 1, … at that
    rate) or `video_timestamps_s`. `input_ids` ([S] or [1, S], pads already expanded) replaces the
    prompt: the count check then tells exactly which image's pads are off.
    """
    features, deepstack = _features(vision_output)
    grid = _grid(grid_thw if grid_thw is not None else getattr(vision_output, "grid_thw", None))
    kinds = _media(media, len(grid))
    side = text_side_for(checkpoint)
    folder = checkpoint_folder(checkpoint) if checkpoint is not None else None  # None for a preset name
    merge = side.spatial_merge_size
    counts = placeholders.merged_counts(grid.tolist(), merge)
    if sum(counts) != features.shape[0]:
        raise InputError(f"the vision output has {features.shape[0]} merged tokens but grid_thw {grid.tolist()} describes "
                         f"{sum(counts)} (t·h·w/{merge}² each: {counts}); pass the grid_thw that produced this output")
    for k, feature in enumerate(deepstack):
        if feature.shape != features.shape:
            raise InputError(f"DeepStack feature {k} has shape {list(feature.shape)}, the merger output "
                             f"{list(features.shape)}; they must come from the same run")

    tokenizer = load_tokenizer(folder)
    pad_ids = {"image": side.image_token_id, "video": side.video_token_id}
    for kind, pad in (("image", IMAGE_PAD), ("video", VIDEO_PAD)):
        if tokenizer.special_tokens.get(pad, pad_ids[kind]) != pad_ids[kind]:
            raise InputError(f"{tokenizer.source} gives {pad} id {tokenizer.special_tokens[pad]} but {side.source} says "
                             f"{kind}_token_id {pad_ids[kind]}; the tokenizer and config.json don't belong together")
    prompt = None
    if input_ids is None:
        prompt = chat_prompt(kinds, text)
        grids = grid.tolist()
        times = video_timestamps_s
        if times is None:
            times = [video_timestamps(g[0], video_fps, side.temporal_patch_size) for g, k in zip(grids, kinds) if k == "video"]
        ids = tokenizer.encode(expand_placeholders(prompt, grids, kinds, merge, times))
    else:
        ids = _ids(input_ids)
    placeholders.check_placeholders(ids, grid.tolist(), kinds, pad_ids, merge)
    ids_t = torch.tensor([ids], dtype=torch.long)  # (1, S)

    positions = placeholders.media_positions(ids_t, grid.tolist(), kinds, pad_ids, merge)
    visual_positions = torch.cat(positions).sort().values if positions else torch.zeros(0, dtype=torch.long)
    mask = torch.zeros(len(ids), dtype=torch.bool)
    mask[visual_positions] = True
    text_ids = [i for i, is_visual in zip(ids, mask.tolist()) if not is_visual]
    rows, source = _text_rows(text_ids, folder, side, features, seed, dtype)
    hidden = features.shape[-1]
    table_dtype = next(iter(rows.values())).dtype if rows else (dtype or features.dtype)
    embeds = torch.zeros(len(ids), hidden, dtype=table_dtype)  # (S, D)
    if text_ids:
        embeds[~mask] = torch.stack([rows[i] for i in text_ids])  # (S_text, D)
    embeds = placeholders.scatter(embeds.to(features.device), features, positions, counts)  # (S, D)
    joint = [placeholders.deepstack_joint(f, positions, counts, visual_positions) for f in deepstack]

    position_ids, delta = rope_index(ids_t, grid.tolist(), kinds, pad_ids["image"], pad_ids["video"], merge)
    plan = deepstack_plan(joint, side.deepstack_visual_indexes, embeds[None], mask[None], side.num_hidden_layers)
    tokens = _describe_tokens(ids, mask, positions, grid, kinds, position_ids, tokenizer, side)
    layout = mrope_layout(side.head_dim, side.mrope_section, side.rope_theta, side.mrope_interleaved)
    return FusionResult(
        input_ids=ids_t, inputs_embeds=embeds[None], visual_pos_mask=mask[None].to(features.device),
        position_ids=position_ids, rope_delta=delta,
        mm_token_type_ids=modality_types(ids_t, pad_ids["image"], pad_ids["video"]),
        deepstack_features=joint, deepstack=plan, tokens=tokens, grid_thw=grid, media=tuple(kinds),
        embeddings_source=source, tokenizer_source=tokenizer.source, text_side=side, mrope=layout, prompt=prompt,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )


def fuse_trace(tr: Trace, text: str = DEFAULT_TEXT, checkpoint: str | Path | None = None, **kwargs: Any) -> FusionResult:
    """`fuse` for a Trace: runs what is left of it, reads media kinds from its inputs, and the checkpoint
    (folder or preset) the encoder came from unless one is given."""
    tr.run()
    if checkpoint is None:
        source = tr.encoder.weights_source
        checkpoint = source if checkpoint_folder(source) is not None else (tr.config.source if tr.config.is_preset else None)
    kwargs.setdefault("media", ["video" if isinstance(image, list) else "image" for image in tr.inputs.images])
    return fuse(tr.output(), tr.grid_thw, text=text, checkpoint=checkpoint, **kwargs)


# ---- helpers ------------------------------------------------------------------------------------


def _features(vision_output: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    pooled = getattr(vision_output, "pooler_output", vision_output)
    if isinstance(pooled, (list, tuple)):  # transformers' get_image_features splits per image
        pooled = torch.cat(list(pooled))
    if not isinstance(pooled, torch.Tensor) or pooled.ndim != 2:
        raise InputError("vision_output must be a VisionOutput (or a [tokens, hidden] merger output tensor)")
    deepstack = []
    for feature in getattr(vision_output, "deepstack_features", None) or []:
        deepstack.append(torch.cat(list(feature)) if isinstance(feature, (list, tuple)) else feature)
    return pooled.detach(), [f.detach() for f in deepstack]


def _grid(grid_thw: Any) -> torch.Tensor:
    if grid_thw is None:
        raise InputError("grid_thw is needed (the vision output carries none): pass the inputs' grid_thw")
    grid = torch.as_tensor(grid_thw).detach().cpu().long().reshape(-1, 3)
    if grid.numel() == 0 or bool((grid <= 0).any()):
        raise InputError(f"grid_thw {grid.tolist()} must have one positive (t, h, w) row per image or video")
    return grid


def _media(media: Sequence[str] | None, n: int) -> list[str]:
    kinds = ["image"] * n if media is None else [str(m) for m in media]
    if len(kinds) != n or any(k not in MEDIA_KINDS for k in kinds):
        raise InputError(f"media {kinds} must name 'image' or 'video' for each of the {n} grid_thw row(s)")
    return kinds


def _ids(input_ids: torch.Tensor | Sequence[int]) -> list[int]:
    tensor = torch.as_tensor(input_ids)
    if tensor.ndim == 2 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 1:
        raise InputError(f"input_ids must be one sequence ([S] or [1, S]), got shape {list(tensor.shape)}")
    return [int(i) for i in tensor.tolist()]


def _text_rows(text_ids: list[int], folder: Path | None, side: TextSide, features: torch.Tensor, seed: int,
               dtype: torch.dtype | None) -> tuple[dict[int, torch.Tensor], str]:
    hidden = features.shape[-1]
    if folder is not None and side.has_language_model:
        table = find_embedding_table(folder)
        if table is not None:
            if table[2][1] != hidden:
                raise InputError(f"{folder}: the text embeddings are {table[2][1]} wide but the vision features "
                                 f"{hidden}; the vision tower's out_hidden_size must equal the text hidden_size "
                                 "(vision and text weights from different models?)")
            rows, source = read_embedding_rows(folder, text_ids)
            return ({i: r.to(dtype) for i, r in rows.items()} if dtype else rows), source
        why = f"no embedding table in {folder}"
    elif folder is not None:
        why = f"{folder} has no language model"
    else:
        why = f"{side.source}" if side.source.startswith("preset") else "no checkpoint"
    if side.hidden_size is not None and side.hidden_size != hidden:
        raise InputError(f"the vision features are {hidden} wide but {side.source} has text hidden_size "
                         f"{side.hidden_size}; use the encoder of the same model")
    return stand_in_rows(text_ids, hidden, seed, dtype or features.dtype), stand_in_source(seed, why)


def _describe_tokens(ids: list[int], mask: torch.Tensor, positions: list[torch.Tensor], grid: torch.Tensor,
                     kinds: list[str], position_ids: torch.Tensor, tokenizer: Any, side: TextSide) -> list[TokenInfo]:
    special = set(tokenizer.special_tokens.values())
    pos = position_ids.reshape(3, -1).T.tolist()  # (S, 3)
    visual: dict[int, tuple[int, int]] = {}  # sequence index -> (media, merged-token index within it)
    for media, where in enumerate(positions):
        for k, index in enumerate(where.tolist()):
            visual[index] = (media, k)
    offsets = [0] + torch.cumsum(torch.tensor(placeholders.merged_counts(grid.tolist(), side.spatial_merge_size)), 0).tolist()
    tokens = []
    for index, token_id in enumerate(ids):
        position = tuple(int(v) for v in pos[index])
        if index in visual:
            media, k = visual[index]
            box = token_pixel_box(offsets[media] + k, grid, side.patch_size, side.spatial_merge_size, merged=True)
            kind = kinds[media]
            tokens.append(TokenInfo(index, token_id, kind, IMAGE_PAD if kind == "image" else VIDEO_PAD, position,  # type: ignore[arg-type]
                                    media, k, box.frame, box.row, box.col, (box.left, box.top, box.right, box.bottom)))
        else:
            kind = "special" if token_id in special else "text"
            tokens.append(TokenInfo(index, token_id, kind, tokenizer.piece(token_id), position))  # type: ignore[arg-type]
    return tokens
