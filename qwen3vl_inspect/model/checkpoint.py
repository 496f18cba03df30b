"""Load the vision tower's weights out of a Hugging Face Qwen3-VL checkpoint folder, and nothing else.

A full Qwen3-VL checkpoint is mostly language model (an 8B model carries a ~0.6B vision tower), so
only shard headers are parsed up front, every name and shape is checked before any data is read,
and only shards that hold vision tensors are opened. `safe_open` validates each shard's header; the
vision tensors are then read with plain file reads into memory they own, so nothing outside them
is ever read, and a shard overwritten or truncated later (a re-download while the TUI is open)
cannot kill the process with SIGBUS the way a zero-copy view of a memory-mapped file would.

Quantized or integer tensors (I8, F8_E4M3, BOOL, GPTQ's I32 `qweight`…) and a `quantization_config`
in config.json are refused: casting quantized codes to float gives a tower of garbage that still runs.
A checkpoint that mixes float dtypes (bf16 weights, fp32 norms) loads in one dtype.

Only safetensors is accepted: `.bin`/`.pt` files are pickles, and unpickling can run arbitrary code.
Every failure is a one-line `CheckpointError` naming the file and what to do.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from io import RawIOBase
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from qwen3vl_inspect.errors import CheckpointError

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Prefixes of the vision tower inside full checkpoints: transformers >= 4.57 `Qwen3VLForConditionalGeneration`
# writes "model.visual."; older conversions wrote "visual.". "" is a vision-only save (`Qwen3VLVisionModel`).
VISION_PREFIXES = ("model.visual.", "visual.")
# In a vision-only checkpoint these roots still belong to a language model and are never read.
NON_VISION_ROOTS = ("model.", "lm_head.", "language_model.")
VISION_ROOTS = ("patch_embed.", "pos_embed.", "blocks.", "merger.", "deepstack_merger_list.")
# Non-persistent buffers some older exports saved; recomputed by the encoder, so skipping them loses nothing.
IGNORED_NAMES = ("rotary_pos_emb.inv_freq",)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
MAX_LISTED = 10
# safetensors dtypes that hold real float weights; anything else in a vision tower is quantized codes or flags.
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
# config.json keys that mark a quantized export (transformers' quantizers, compressed-tensors).
QUANTIZATION_KEYS = ("quantization_config", "compression_config")
DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2}

Shape = tuple[int, ...]


def load_vision_state_dict(
    folder: str | Path,
    expected: Mapping[str, torch.Size | Shape | torch.Tensor],
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> dict[str, torch.Tensor]:
    """Read exactly the vision tensors named in `expected` (name -> shape, or an encoder's `state_dict()`).

    Returns bare names (`blocks.0.attn.qkv.weight`). Anything missing, extra or misshapen raises before
    a byte of weights is read: a tower that silently keeps random weights is worse than no tower.
    Every tensor is read into its own memory (never a view of a file mapping) and cast one at a time,
    so peak memory stays near the size of the result. dtype=None keeps the
    checkpoint's dtype; a checkpoint that mixes float dtypes takes the one most weights are stored in.
    """
    want = {name: _shape_of(value) for name, value in expected.items()}
    folder, prefix, plan = _plan(folder)
    found = {name: shape for entries in plan.values() for name, (shape, _dtype) in entries.items()}
    _check_names(folder, prefix, want, found)
    target = torch.device(device) if device is not None else torch.device("cpu")
    dtype = dtype or _majority_dtype(plan, want)
    out: dict[str, torch.Tensor] = {}
    for shard, entries in plan.items():
        names = [n for n in entries if n in want]
        for name, tensor in _read_tensors(folder / shard, prefix, names, entries):
            out[name] = tensor.to(device=target, dtype=dtype)  # same dtype and device: no second copy
    return {name: out[name] for name in want}


def _read_tensors(
    path: Path, prefix: str, names: list[str], entries: Mapping[str, tuple[Shape, str]]
) -> Iterator[tuple[str, torch.Tensor]]:
    """Each tensor read with plain file reads into memory it owns: no mapping of the file exists.

    `_plan` has already had safetensors validate this header. A shard that shrinks while it is read
    gives a short read, answered with a CheckpointError instead of the SIGBUS a mapping would give.
    """
    with path.open("rb", buffering=0) as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        for name in names:
            shape, dtype = entries[name]
            start, end = header[prefix + name]["data_offsets"]
            raw = torch.empty(end - start, dtype=torch.uint8)  # (bytes,)
            handle.seek(8 + length + start)
            _read_exactly(handle, raw.numpy(), path, prefix + name)
            yield name, raw.view(_TORCH_DTYPES[dtype]).reshape(shape)  # (bytes,) -> shape, little-endian as stored


def _read_exactly(handle: RawIOBase, buffer: np.ndarray, path: Path, key: str) -> None:
    view, done = memoryview(buffer.data), 0  # the array's own bytes: readinto fills them in place
    while done < len(view):
        got = handle.readinto(view[done:])
        if not got:
            raise CheckpointError(
                f"{path}: the file ends inside tensor {key!r} (it changed or was truncated while loading); re-download it"
            )
        done += got


def _majority_dtype(plan: Mapping[str, Mapping[str, tuple[Shape, str]]], want: Mapping[str, Shape]) -> torch.dtype:
    """The float dtype holding the most weight elements: bf16 weights with a few fp32 norms load as bf16,
    as transformers' dtype="auto" would, instead of a mixed module that fails in forward."""
    counts: dict[str, int] = {}
    for entries in plan.values():
        for name, (shape, dt) in entries.items():
            if name in want:
                counts[dt] = counts.get(dt, 0) + _numel(shape)
    best = max(sorted(counts), key=lambda dt: counts[dt]) if counts else "F32"
    return _TORCH_DTYPES[best]


def describe_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Summarise the vision part of a checkpoint from shard headers alone (no weights read), for `info`."""
    folder, prefix, plan = _plan(folder)
    entries = [entry for shard in plan.values() for entry in shard.values()]
    return {
        "folder": str(folder),
        "prefix": prefix,
        "layout": {"model.visual.": "transformers>=4.57", "visual.": "legacy", "": "vision-only"}[prefix],
        "vision_tensors": len(entries),
        "vision_bytes": sum(_numel(shape) * DTYPE_BYTES.get(dt, 1) for shape, dt in entries),
        "dtypes": sorted({dt for _shape, dt in entries}),
        "vision_shards": sorted(plan),
        "total_shards": len(set(_weight_map(folder).values())),
    }


def _plan(folder: str | Path) -> tuple[Path, str, dict[str, dict[str, tuple[Shape, str]]]]:
    """Find the vision tensors: (folder, prefix, shard -> bare name -> (shape, safetensors dtype))."""
    folder = _check_folder(folder)
    _refuse_quantization_config(folder)
    weight_map = _weight_map(folder)
    prefix = _detect_prefix(folder, weight_map)
    by_shard: dict[str, list[str]] = {}
    for key, shard in weight_map.items():
        if _is_vision(key, prefix):
            by_shard.setdefault(shard, []).append(key)
    plan: dict[str, dict[str, tuple[Shape, str]]] = {}
    for shard, keys in by_shard.items():
        path = folder / shard
        with _open(path) as handle:
            present = set(handle.keys())
            for key in keys:
                if key not in present:
                    raise CheckpointError(
                        f"{path}: {INDEX_FILE} lists tensor {key!r} in this shard but it is not there; "
                        "the index and shards are from different downloads, re-download the checkpoint"
                    )
                info = handle.get_slice(key)
                dtype = info.get_dtype()
                if dtype not in FLOAT_DTYPES:
                    raise CheckpointError(
                        f"{path}: tensor {key!r} is stored as {dtype}, not a float type; quantized or integer "
                        f"weights are not supported (only {'/'.join(FLOAT_DTYPES)}): use the unquantized checkpoint"
                    )
                plan.setdefault(shard, {})[key[len(prefix) :]] = (tuple(info.get_shape()), dtype)
    return folder, prefix, plan


def _refuse_quantization_config(folder: Path) -> None:
    """A quantized export can store float-looking tensors (scales, packed codes) that would load as garbage."""
    from qwen3vl_inspect.config import read_config_json

    path = folder / "config.json"
    data = read_config_json(path)
    sections = [data] + [data[k] for k in ("vision_config", "text_config") if isinstance(data.get(k), dict)]
    for section in sections:
        for key in QUANTIZATION_KEYS:
            if section.get(key):
                method = section[key].get("quant_method", "?") if isinstance(section[key], dict) else section[key]
                raise CheckpointError(
                    f"{path}: has {key!r} (quant_method {method!r}); quantized checkpoints are not supported, "
                    "use the unquantized (bf16/fp32) checkpoint"
                )


def _check_folder(folder: str | Path) -> Path:
    path = Path(folder).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint folder not found; pass a local Hugging Face model folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: is a file, not a folder; pass the folder holding config.json and the weights")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: no config.json in this folder; download the complete model folder")
    return path


def _weight_map(folder: Path) -> dict[str, str]:
    """Tensor name -> shard file, from the index or the single file's header (as transformers chooses)."""
    single, index = folder / SINGLE_FILE, folder / INDEX_FILE
    if single.is_file():
        with _open(single) as handle:
            return {key: SINGLE_FILE for key in handle.keys()}
    if not index.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES + (".bin.index.json",)))
        if pickles:
            raise CheckpointError(
                f"{folder}: only pickle weights ({', '.join(pickles[:3])}); they are refused because unpickling "
                "can run arbitrary code. Convert them to safetensors (save_pretrained(..., safe_serialization=True))"
            )
        raise CheckpointError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE}; download the model's safetensors weights")
    _refuse_lfs_pointer(index)
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index}: not a valid safetensors index ({exc}); re-download it") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index}: 'weight_map' must map tensor names to shard file names; re-download it")
    for shard in set(weight_map.values()):
        if not _is_plain_file_name(shard):
            raise CheckpointError(
                f"{index}: shard name {shard!r} is not a plain file name inside the folder; refusing to read it"
            )
        if not shard.endswith(".safetensors"):
            raise CheckpointError(f"{index}: shard {shard!r} is not a .safetensors file; only safetensors is loaded")
    return weight_map


def _is_plain_file_name(name: str) -> bool:
    """Shard names come from a downloaded JSON file, so they must not point anywhere but into the folder."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and PurePosixPath(name).name == name
        and PureWindowsPath(name).name == name  # rejects "C:evil" drive-relative names too
    )


def _detect_prefix(folder: Path, weight_map: Mapping[str, str]) -> str:
    present = [p for p in VISION_PREFIXES if any(key.startswith(p) for key in weight_map)]
    if len(present) > 1:
        raise CheckpointError(
            f"{folder}: tensors under both {present[0]!r} and {present[1]!r}; the checkpoint mixes two layouts, re-export it"
        )
    if present:
        return present[0]
    if any(key.startswith(VISION_ROOTS) for key in weight_map):
        return ""
    raise CheckpointError(
        f"{folder}: no vision-tower tensors (looked for 'model.visual.*', 'visual.*' and bare 'blocks.*'); "
        "is this a Qwen3-VL checkpoint?"
    )


def _is_vision(key: str, prefix: str) -> bool:
    return key.startswith(prefix) if prefix else not key.startswith(NON_VISION_ROOTS)


def _check_names(folder: Path, prefix: str, want: Mapping[str, Shape], found: Mapping[str, Shape]) -> None:
    """All problems in one message, so a wrong config shows up as a pattern rather than one name at a time."""
    missing = [n for n in want if n not in found]
    unexpected = [n for n in found if n not in want and n not in IGNORED_NAMES]
    wrong = [f"{n} expected {_fmt(want[n])} found {_fmt(found[n])}" for n in want if n in found and found[n] != want[n]]
    if not (missing or unexpected or wrong):
        return
    parts = [
        f"{len(items)} {label} ({_listing(items)})"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("with wrong shape", wrong))
        if items
    ]
    raise CheckpointError(
        f"{folder}: vision tensors (prefix {prefix!r}) do not match the encoder: {'; '.join(parts)}; "
        "check that config.json belongs to these weights"
    )


def _listing(items: list[str]) -> str:
    more = f", +{len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _open(path: Path) -> Any:
    """`safe_open` with the two common download failures (missing file, LFS pointer) named first."""
    if not path.is_file():
        raise CheckpointError(f"{path}: shard file not found; the download is incomplete, download the missing files")
    _refuse_lfs_pointer(path)
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc}); it is truncated or corrupt, "
                              "re-download it") from None


def _refuse_lfs_pointer(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(len(LFS_MAGIC))
    if head == LFS_MAGIC:
        raise CheckpointError(
            f"{path}: is a Git LFS pointer, not the weights; run `git lfs pull` in the checkpoint folder"
        )


def _shape_of(value: torch.Size | Shape | torch.Tensor) -> Shape:
    return tuple(int(d) for d in (value.shape if isinstance(value, torch.Tensor) else value))


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


_TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
