"""How a checkpoint wants its images cut: patch, merge and temporal sizes, normalization, pixel bounds.

A Qwen3-VL checkpoint folder says this twice: `preprocessor_config.json` (what transformers'
image processor reads) and the vision config (what the encoder was built for). Preprocessing
with one encoder's numbers and running another is the classic mismatch (a patch_size-14 Qwen2-VL
folder, CLIP normalization); `ProcessorConfig.from_pretrained` reads the folder's own file, and
`check_fits` says in one line where inputs and encoder disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.config_validation import int_problem
from qwen3vl_inspect.errors import CheckpointError, InputError

DEFAULT_MIN_PIXELS = 65536  # Qwen3-VL preprocessor_config: size.shortest_edge
DEFAULT_MAX_PIXELS = 16777216  # size.longest_edge
PROCESSOR_FILE = "preprocessor_config.json"


@dataclass(frozen=True)
class ProcessorConfig:
    patch_size: int = 16
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def for_encoder(cls, config: VisionConfig) -> ProcessorConfig:
        """The sizes an encoder was built for, with Qwen3-VL's normalization and pixel bounds."""
        return cls(patch_size=config.patch_size, merge_size=config.spatial_merge_size,
                   temporal_patch_size=config.temporal_patch_size)

    @classmethod
    def from_json(cls, path: str | Path) -> ProcessorConfig:
        """Read a `preprocessor_config.json` as transformers writes it (Qwen2-VL's `min_pixels`/`max_pixels`
        keys or Qwen3-VL's `size.shortest_edge`/`longest_edge`)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: not a readable JSON file ({exc}); re-download or delete it") from exc
        if not isinstance(raw, dict):
            raise CheckpointError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        size: dict[str, Any] = raw["size"] if isinstance(raw.get("size"), dict) else {}
        defaults = cls()
        values: dict[str, Any] = {
            "patch_size": raw.get("patch_size", defaults.patch_size),
            "merge_size": raw.get("merge_size", defaults.merge_size),
            "temporal_patch_size": raw.get("temporal_patch_size", defaults.temporal_patch_size),
            "image_mean": raw.get("image_mean", defaults.image_mean),
            "image_std": raw.get("image_std", defaults.image_std),
            "min_pixels": size.get("shortest_edge", raw.get("min_pixels", defaults.min_pixels)),
            "max_pixels": size.get("longest_edge", raw.get("max_pixels", defaults.max_pixels)),
        }
        problems = [problem for key in ("patch_size", "merge_size", "temporal_patch_size", "min_pixels", "max_pixels")
                    if (problem := int_problem(key, values[key], 1)) is not None]
        problems += [f"{key} = {values[key]!r} (expected a list of 3 numbers)" for key in ("image_mean", "image_std")
                     if not _three_numbers(values[key])]
        if any(_three_numbers(values[k]) and 0 in values[k] for k in ("image_std",)):
            problems.append(f"image_std = {values['image_std']!r} (a zero divides by zero)")
        if problems:
            raise CheckpointError(f"{path}: " + "; ".join(problems))
        values["image_mean"] = tuple(float(v) for v in values["image_mean"])
        values["image_std"] = tuple(float(v) for v in values["image_std"])
        return cls(**values)

    @classmethod
    def from_pretrained(cls, folder: str | Path, config: VisionConfig | None = None) -> ProcessorConfig:
        """The folder's `preprocessor_config.json` if it has one, else the sizes of `config` (the encoder's)."""
        path = Path(folder) / PROCESSOR_FILE
        if path.is_file():
            return cls.from_json(path)
        if config is None:
            config = VisionConfig.from_json(Path(folder) / "config.json")
        return cls.for_encoder(config)

    def with_pixels(self, min_pixels: int | None = None, max_pixels: int | None = None) -> ProcessorConfig:
        """The same config with the user's pixel bounds where given."""
        return replace(self, min_pixels=self.min_pixels if min_pixels is None else int(min_pixels),
                       max_pixels=self.max_pixels if max_pixels is None else int(max_pixels))


def check_fits(config: VisionConfig, patch_size: int, merge_size: int, temporal_patch_size: int,
               row_width: int) -> None:
    """Raise one InputError naming every way the inputs were cut for a different encoder."""
    expected = dict(patch_size=config.patch_size, merge_size=config.spatial_merge_size,
                    temporal_patch_size=config.temporal_patch_size, row_width=config.patch_dim)
    given = dict(patch_size=patch_size, merge_size=merge_size, temporal_patch_size=temporal_patch_size,
                 row_width=row_width)
    wrong = [f"{key} {given[key]} (encoder: {expected[key]})" for key in expected if given[key] != expected[key]]
    if wrong:
        raise InputError("the inputs were preprocessed for another encoder: " + ", ".join(wrong)
                         + "; preprocess with this encoder's sizes: preprocess(images, config=encoder.config) "
                         "or ProcessorConfig.from_pretrained(checkpoint_folder)")


def _three_numbers(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
