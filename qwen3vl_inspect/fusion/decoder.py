"""Optional: run transformers' first text decoder layers to measure what each DeepStack addition does.

Only the layers that receive a DeepStack feature (0…K-1) and the final norm are read from the
checkpoint, straight from safetensors; the model is built on the meta device and gets exactly those
tensors, so an 8B checkpoint costs three decoder layers, not the language model. Hooks record the
hidden states right before each addition (the layer's output) and right after it (the next
module's input). The only module of the package besides the tests that imports transformers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion.deepstack import mean_norm
from qwen3vl_inspect.fusion.embeddings import find_embedding_table
from qwen3vl_inspect.model.checkpoint import _open, _weight_map

if TYPE_CHECKING:
    from qwen3vl_inspect.fusion.fuse import FusionResult


def measure_injections(result: FusionResult, checkpoint: str | Path | None = None,
                       attn_implementation: str = "sdpa") -> FusionResult:
    """A copy of `result` whose DeepStack plan has the hidden-state norms before/after each injection."""
    folder = Path(str(checkpoint or result.checkpoint or "")).expanduser()
    if not result.text_side.has_language_model or not folder.is_dir():
        raise InputError("measuring DeepStack injections needs a checkpoint folder with the language model "
                         "(presets and vision-only checkpoints have no text layers)")
    if result.random_embeddings:
        raise InputError(f"{folder}: the text embeddings are a random stand-in; the decoder needs the real ones")
    try:
        from transformers import Qwen3VLTextConfig
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextModel, Qwen3VLTextRotaryEmbedding
    except ImportError:
        raise InputError("measuring DeepStack injections needs transformers >= 4.57 (pip install transformers)") from None
    features = result.deepstack_features
    layers = min(len(features), result.text_side.num_hidden_layers or 0)
    if layers == 0:
        return result
    text_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))["text_config"]
    text_config = {k: v for k, v in text_config.items() if k not in ("model_type", "architectures")}
    text_config.update(num_hidden_layers=layers, vocab_size=1, pad_token_id=None)
    config = Qwen3VLTextConfig(**text_config)
    config._attn_implementation = attn_implementation
    state = _layer_weights(folder, layers)
    with torch.device("meta"):
        model = Qwen3VLTextModel(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or set(missing) - {"embed_tokens.weight"}:
        raise InputError(f"{folder}: decoder weights don't fit the config: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    dtype = state["norm.weight"].dtype
    model.embed_tokens = torch.nn.Embedding(1, config.hidden_size, dtype=dtype)  # unused: we pass inputs_embeds
    model.rotary_emb = Qwen3VLTextRotaryEmbedding(config)  # its buffers were made on the meta device
    model.eval()
    mask = result.visual_pos_mask.reshape(-1).cpu()
    with _captures(model, layers) as seen, torch.inference_mode():
        model(inputs_embeds=result.inputs_embeds.cpu().to(dtype), position_ids=result.position_ids.cpu(),
              visual_pos_masks=result.visual_pos_mask.cpu(), deepstack_visual_embeds=[f.cpu() for f in features[:layers]],
              use_cache=False)
    rows = []
    for k in range(len(features)):
        if k >= layers:
            rows.append({})
            continue
        before, after = seen[f"out.{k}"][0], seen[f"in.{k}"][0]  # (S, D) each
        rows.append({"hidden_before": mean_norm(before[mask]), "hidden_after": mean_norm(after[mask]),
                     "text_hidden": mean_norm(before[~mask])})
    how = (f"measured with transformers' Qwen3VLTextModel, decoder layers 0…{layers - 1} of "
           f"{result.text_side.num_hidden_layers} read from {folder} ({str(dtype).removeprefix('torch.')})")
    return dataclasses.replace(result, deepstack=result.deepstack.with_measurements(rows, how))


def _layer_weights(folder: Path, layers: int) -> dict[str, torch.Tensor]:
    """`layers.{i}.*` for i < layers and `norm.weight`, bare names, read tensor by tensor."""
    table = find_embedding_table(folder)
    if table is None:
        raise InputError(f"{folder}: no language-model tensors found; measuring injections needs them")
    prefix = table[1][: -len("embed_tokens.weight")]
    wanted = tuple(f"{prefix}layers.{i}." for i in range(layers)) + (f"{prefix}norm.weight",)
    by_shard: dict[str, list[str]] = {}
    for key, shard in _weight_map(folder).items():
        if key.startswith(wanted):
            by_shard.setdefault(shard, []).append(key)
    state: dict[str, torch.Tensor] = {}
    for shard, keys in by_shard.items():
        with _open(folder / shard) as handle:
            for key in keys:
                state[key[len(prefix):]] = handle.get_tensor(key).clone()  # own memory, no file view
    if "norm.weight" not in state:
        raise InputError(f"{folder}: no {prefix}norm.weight; the language model is incomplete")
    return state


@contextmanager
def _captures(model: Any, layers: int) -> Iterator[dict[str, Any]]:
    """Record each injected layer's output (before the addition) and the next module's input (after it)."""
    seen: dict[str, Any] = {}

    def first(value: Any) -> torch.Tensor:
        return value[0] if isinstance(value, (tuple, list)) else value

    handles = []
    for k in range(layers):
        handles.append(model.layers[k].register_forward_hook(
            lambda _m, _args, out, k=k: seen.__setitem__(f"out.{k}", first(out).detach().clone())))
        after = model.layers[k + 1] if k + 1 < layers else model.norm
        handles.append(after.register_forward_pre_hook(
            lambda _m, args, k=k: seen.__setitem__(f"in.{k}", first(args).detach().clone())))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()
