"""The language-model facts fusion needs: hidden size, layers, MRoPE split, special-token ids.

Read from a checkpoint's `config.json` (`text_config` plus the top-level token ids), or, for a
preset, from the published config of that model. Only data is read; nothing is imported or run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qwen3vl_inspect.config import (
    FULL_MODEL_TYPES,
    VISION_MODEL_TYPES,
    VisionConfig,
    checkpoint_folder,
    is_preset_name,
    read_config_json,
    unknown_model,
)
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion.tokens import SPECIAL_TOKENS


@dataclass(frozen=True)
class TextSide:
    hidden_size: int | None  # None: unknown (taken from the vision features)
    num_hidden_layers: int | None
    head_dim: int = 128
    rope_theta: float = 5_000_000.0
    mrope_section: tuple[int, int, int] = (24, 20, 20)
    mrope_interleaved: bool = True
    vocab_size: int = 151936
    image_token_id: int = SPECIAL_TOKENS["<|image_pad|>"]
    video_token_id: int = SPECIAL_TOKENS["<|video_pad|>"]
    vision_start_token_id: int = SPECIAL_TOKENS["<|vision_start|>"]
    vision_end_token_id: int = SPECIAL_TOKENS["<|vision_end|>"]
    patch_size: int = 16
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    deepstack_visual_indexes: tuple[int, ...] = ()
    has_language_model: bool = False  # the checkpoint folder holds the text model's weights
    source: str = "Qwen3-VL defaults"


# Text side of each preset: hidden_size / num_hidden_layers from the model's config.json on the Hub
# ("text_config"); all use head_dim 128, rope_theta 5e6, mrope_section [24, 20, 20] interleaved.
_PRESET_TEXT = {
    "qwen3-vl-2b": (2048, 28),
    "qwen3-vl-4b": (2560, 36),
    "qwen3-vl-8b": (4096, 36),
    "qwen3-vl-32b": (5120, 64),
    "qwen3-vl-30b-a3b": (2048, 48),
    "qwen3-vl-235b-a22b": (4096, 94),
}
# The "tiny" preset's text side matches the tiny transformers model of the tests (head_dim 24 → 4+4+4).
_TINY_TEXT = dict(hidden_size=96, num_hidden_layers=2, head_dim=24, rope_theta=10000.0, mrope_section=(4, 4, 4))


def text_side_for(checkpoint: str | Path | None) -> TextSide:
    """A checkpoint folder's text side, a preset's, or generic Qwen3-VL defaults for None."""
    if checkpoint is None:
        return TextSide(hidden_size=None, num_hidden_layers=None)
    name = str(checkpoint)
    folder = checkpoint_folder(name)
    if folder is not None:
        return _from_folder(folder)
    key = name.lower()
    if not is_preset_name(key):
        raise unknown_model(name)
    vision = VisionConfig.preset(key)
    if key in _PRESET_TEXT:
        base = dict(zip(("hidden_size", "num_hidden_layers"), _PRESET_TEXT[key]))
    else:  # tiny and the shipped demo: a small stand-in text side as wide as the merger's output
        base = dict(_TINY_TEXT, hidden_size=vision.out_hidden_size,
                    num_hidden_layers=max(len(vision.deepstack_visual_indexes), 1))
    return TextSide(**base, patch_size=vision.patch_size, spatial_merge_size=vision.spatial_merge_size,
                    temporal_patch_size=vision.temporal_patch_size,
                    deepstack_visual_indexes=vision.deepstack_visual_indexes, source=f"preset {key}")


def _from_folder(folder: Path) -> TextSide:
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(f"{folder}: no config.json in this folder; download the complete model folder")
    data = read_config_json(path)
    model_type = data.get("model_type")
    if model_type not in VISION_MODEL_TYPES and (
            model_type not in FULL_MODEL_TYPES or not isinstance(data.get("text_config"), dict)):
        raise InputError(f"{path}: model_type {model_type!r} is not a full Qwen3-VL config (no 'text_config'); "
                         "point at a Qwen3-VL checkpoint folder")
    try:
        if model_type in VISION_MODEL_TYPES:  # a vision-only save: no text side at all
            return replace(_vision_fields(TextSide(hidden_size=None, num_hidden_layers=None), data),
                           source=f"{path} (vision only: Qwen3-VL text defaults)")
        return _full_config_side(path, data)
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
        problem = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise InputError(f"{path}: not a valid Qwen3-VL text/vision config for fusion ({problem}); fix or "
                         "re-download config.json") from None


def _full_config_side(path: Path, data: dict[str, Any]) -> TextSide:
    """The text side of a full config; a missing or mistyped value raises and is named by the caller."""
    text = data["text_config"]
    rope = text.get("rope_parameters") or text.get("rope_scaling") or {}
    side = TextSide(
        hidden_size=int(text["hidden_size"]),
        num_hidden_layers=int(text["num_hidden_layers"]),
        head_dim=int(text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]),
        rope_theta=float(rope.get("rope_theta", text.get("rope_theta", 5_000_000.0))),
        mrope_section=tuple(int(v) for v in rope.get("mrope_section", (24, 20, 20))),  # type: ignore[arg-type]
        mrope_interleaved=bool(rope.get("mrope_interleaved", True)),
        vocab_size=int(text.get("vocab_size", 151936)),
        has_language_model=True,
        source=str(path),
    )
    ids = {k: int(data[k]) for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
           if isinstance(data.get(k), int)}
    return _vision_fields(replace(side, **ids), data.get("vision_config") or {})


def _vision_fields(side: TextSide, vision: dict[str, Any]) -> TextSide:
    def first(value: Any) -> int:
        return int(value[0] if isinstance(value, (list, tuple)) else value)

    return replace(
        side,
        patch_size=first(vision.get("patch_size", side.patch_size)),
        spatial_merge_size=int(vision.get("spatial_merge_size", side.spatial_merge_size)),
        temporal_patch_size=first(vision.get("temporal_patch_size", side.temporal_patch_size)),
        deepstack_visual_indexes=tuple(int(i) for i in vision.get("deepstack_visual_indexes", side.deepstack_visual_indexes)),
    )
