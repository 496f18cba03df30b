"""`--model Qwen/Qwen3-VL-2B-Instruct`: a Hub repo id resolved from the local Hugging Face cache.

People who ran transformers once already have the checkpoint in ~/.cache/huggingface/hub; making them
find the snapshot folder by hand is busywork. The lookup is offline (`local_files_only=True`); nothing
is downloaded unless the user opts in with QWEN3VL_INSPECT_DOWNLOAD=1, and then only config.json,
preprocessor_config.json, the shard index and the shards that hold vision tensors (an 8B checkpoint's tower lives in one or two of
its four shards).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from qwen3vl_inspect.errors import InputError

DOWNLOAD_ENV = "QWEN3VL_INSPECT_DOWNLOAD"
CONFIG_FILE, INDEX_FILE, SINGLE_FILE = "config.json", "model.safetensors.index.json", "model.safetensors"
PROCESSOR_FILE = "preprocessor_config.json"  # how the model wants images cut (min/max pixels, patch size)
VISION_PREFIXES = ("model.visual.", "visual.")
# owner/name as the Hub spells repo ids: letters, digits, '-', '_', '.'; no leading '.' or '-'
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def looks_like_repo_id(name: str) -> bool:
    """True for "Qwen/Qwen3-VL-2B-Instruct"; False for paths ("./x/y", "/abs", "~/x") and bare names."""
    return bool(_REPO_ID.match(name)) and ".." not in name and not name.startswith(("~", "."))


def cache_dir() -> str | None:
    """The hub cache as the environment says now (huggingface_hub reads its env once, at import)."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of `repo_id` holding a config.json, or None; never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir()))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return folder if (folder / CONFIG_FILE).is_file() else None


def resolve_repo_id(name: str) -> Path | None:
    """The local folder for repo id `name`: from the cache, or downloaded (vision shards only) when opted in."""
    if not looks_like_repo_id(name):
        return None
    folder = cached_snapshot(name)
    if folder is None and os.environ.get(DOWNLOAD_ENV) == "1":
        folder = download_vision_files(name)
    return folder


def vision_shards(weight_map: dict[str, str]) -> list[str]:
    """The shard files that hold `model.visual.*` / `visual.*` tensors, from an index's weight_map."""
    return sorted({shard for key, shard in weight_map.items() if key.startswith(VISION_PREFIXES)})


def download_vision_files(repo_id: str) -> Path:
    """Fetch the config files and the index, then only the shards the index places vision tensors in."""
    from huggingface_hub import snapshot_download

    try:
        small = [CONFIG_FILE, PROCESSOR_FILE, INDEX_FILE]
        folder = Path(snapshot_download(repo_id, allow_patterns=small, cache_dir=cache_dir()))
        index = folder / INDEX_FILE
        if index.is_file():
            shards = vision_shards(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}))
        else:  # one model.safetensors: the vision tower is inside, so the whole file is needed
            shards = [SINGLE_FILE]
        return Path(snapshot_download(repo_id, allow_patterns=[*small, *shards], cache_dir=cache_dir()))
    except Exception as exc:  # network, auth, missing repo: all one line for the user
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{repo_id}: download failed ({first}); check the repo id and your network") from None


def not_cached_error(repo_id: str) -> InputError:
    where = cache_dir() or "~/.cache/huggingface/hub"
    return InputError(
        f"{repo_id}: not a local folder and not in the local Hugging Face cache ({where}); "
        f"download it first (`hf download {repo_id}`) or set {DOWNLOAD_ENV}=1 to fetch only config.json and "
        "the shards holding the vision tower, or pass the checkpoint folder"
    )
