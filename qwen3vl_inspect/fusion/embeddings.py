"""Text-token embeddings: only the rows the prompt uses, sliced out of the checkpoint's safetensors.

`model.language_model.embed_tokens.weight` of an 8B model is 151936 × 4096 (1.2 GB in bf16);
the prompt needs a few dozen rows. `safe_open(...).get_slice(key)[a:b]` reads just those bytes, so
nothing else of the language model is ever loaded. Without a checkpoint (presets), each row is a
seeded random vector of the real scale, labelled "random stand-in" wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from qwen3vl_inspect.errors import CheckpointError, InputError
from qwen3vl_inspect.model.checkpoint import _check_folder, _open, _weight_map

# Where transformers keeps the table: >= 4.57 layout first, then older conversions.
EMBED_KEYS = (
    "model.language_model.embed_tokens.weight",
    "language_model.model.embed_tokens.weight",
    "model.embed_tokens.weight",
)
STAND_IN_STD = 0.02  # transformers' initializer_range: the scale of a freshly initialised table
RANDOM_STAND_IN = "random stand-in"


def find_embedding_table(folder: str | Path) -> tuple[Path, str, tuple[int, int], str] | None:
    """(shard file, tensor name, shape, safetensors dtype) of the embedding table, from headers only; None if absent."""
    folder = _check_folder(folder)
    weight_map = _weight_map(folder)
    key = next((k for k in EMBED_KEYS if k in weight_map), None)
    if key is None:
        return None
    shard = folder / weight_map[key]
    with _open(shard) as handle:
        if key not in set(handle.keys()):
            raise CheckpointError(f"{shard}: the index lists {key!r} in this shard but it is not there; "
                                  "re-download the checkpoint")
        info = handle.get_slice(key)
        shape = tuple(info.get_shape())
        dtype = info.get_dtype()
    if len(shape) != 2:
        raise CheckpointError(f"{shard}: {key} has shape {list(shape)}, expected [vocab, hidden]; re-export the checkpoint")
    return shard, key, (int(shape[0]), int(shape[1])), dtype


def read_embedding_rows(folder: str | Path, token_ids: Sequence[int]) -> tuple[dict[int, torch.Tensor], str]:
    """{token id: row [D]} for the distinct ids, read row range by row range; and a description of the source."""
    found = find_embedding_table(folder)
    if found is None:
        raise CheckpointError(f"{folder}: no text embedding table ({' / '.join(EMBED_KEYS)}); the folder has no language model")
    shard, key, (vocab, _hidden), dtype = found
    wanted = sorted(set(int(i) for i in token_ids))
    bad = [i for i in wanted if not 0 <= i < vocab]
    if bad:
        raise InputError(f"{shard}: token id(s) {bad[:5]} are outside the embedding table ({vocab} rows); "
                         "the tokenizer and the checkpoint don't belong together")
    rows: dict[int, torch.Tensor] = {}
    with _open(shard) as handle:
        table = handle.get_slice(key)
        for start, stop in _ranges(wanted):
            block = table[start:stop]  # (stop - start, hidden): only these bytes are read
            for offset in range(stop - start):
                rows[start + offset] = block[offset].clone()
    return rows, f"{shard}:{key} ({len(rows)} of {vocab} rows, {dtype})"


def stand_in_rows(token_ids: Sequence[int], hidden: int, seed: int = 0,
                  dtype: torch.dtype = torch.float32) -> dict[int, torch.Tensor]:
    """A seeded random row per id, the same for the same (id, seed) whatever else is in the prompt."""
    rows = {}
    for token_id in sorted(set(int(i) for i in token_ids)):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + token_id)
        rows[token_id] = (torch.randn(hidden, generator=generator) * STAND_IN_STD).to(dtype)
    return rows


def stand_in_source(seed: int, why: str = "") -> str:
    return f"{RANDOM_STAND_IN} (seed {seed}{', ' + why if why else ''})"


def _ranges(sorted_ids: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive ids as [start, stop) ranges, so adjacent rows are read in one slice."""
    ranges: list[tuple[int, int]] = []
    for i in sorted_ids:
        if ranges and ranges[-1][1] == i:
            ranges[-1] = (ranges[-1][0], i + 1)
        else:
            ranges.append((i, i + 1))
    return ranges
