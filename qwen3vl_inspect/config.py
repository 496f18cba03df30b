"""Vision-tower configuration: the fields that shape Qwen3-VL's encoder, presets, and config.json reading.

Field names follow transformers' `Qwen3VLVisionConfig`, so a `config.json` written by
transformers maps onto this dataclass without translation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qwen3vl_inspect.config_validation import vision_config_problems
from qwen3vl_inspect.errors import InputError

ASSETS = Path(__file__).resolve().parent / "assets"
# Presets whose weights ship inside the package: name -> (folder, how the weights are labelled everywhere)
SHIPPED_WEIGHTS: dict[str, tuple[Path, str]] = {
    "demo": (ASSETS / "demo_weights", "demo weights trained on synthetic shapes — not Qwen's weights"),
}

# model_type values of full Qwen3-VL configs (vision config nested under "vision_config")
FULL_MODEL_TYPES = ("qwen3_vl", "qwen3_vl_moe")
# model_type values of a vision-only config
VISION_MODEL_TYPES = ("qwen3_vl_vision", "qwen3_vl_moe_vision")


@dataclass(frozen=True)
class VisionConfig:
    depth: int = 27
    hidden_size: int = 1152
    hidden_act: str = "gelu_pytorch_tanh"
    intermediate_size: int = 4304
    num_heads: int = 16
    in_channels: int = 3
    patch_size: int = 16
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    out_hidden_size: int = 3584
    num_position_embeddings: int = 2304
    deepstack_visual_indexes: tuple[int, ...] = (8, 16, 24)
    rope_theta: float = 10000.0
    # Where the config came from (a preset name or a file path); shown wherever the encoder is described.
    source: str = field(default="default", compare=False)

    def __post_init__(self) -> None:
        # Raw values straight from JSON land here: check them all before anything converts or allocates.
        problems = vision_config_problems({name: getattr(self, name) for name in (*_SHAPE_FIELDS, "rope_theta")})
        if problems:
            raise InputError(_problem_report(self.source, problems))
        object.__setattr__(self, "deepstack_visual_indexes", tuple(self.deepstack_visual_indexes))
        object.__setattr__(self, "rope_theta", float(self.rope_theta))

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_grid_per_side(self) -> int:
        """Side of the square learned position grid (48 for 2304 embeddings)."""
        return round(self.num_position_embeddings**0.5)

    @property
    def merge_unit(self) -> int:
        return self.spatial_merge_size**2

    @property
    def patch_dim(self) -> int:
        """Length of one flattened patch in `pixel_values`: C·T·P·P (1536 for Qwen3-VL)."""
        return self.in_channels * self.temporal_patch_size * self.patch_size**2

    @property
    def is_preset(self) -> bool:
        return is_preset_name(self.source)

    @classmethod
    def preset(cls, name: str) -> VisionConfig:
        key = name.lower()
        if key in SHIPPED_WEIGHTS:
            return replace(cls.from_json(SHIPPED_WEIGHTS[key][0] / "config.json"), source=key)
        if key not in PRESETS:
            raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
        return replace(PRESETS[key], source=key)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "dict") -> VisionConfig:
        """Build from a transformers-style vision config dict; keys that don't shape the tower are ignored."""
        rope = data.get("rope_parameters") if isinstance(data.get("rope_parameters"), dict) else {}
        theta = rope.get("rope_theta", data.get("rope_theta", cls.rope_theta))
        kwargs = {k: data[k] for k in _SHAPE_FIELDS if k in data}
        for name in ("patch_size", "temporal_patch_size"):  # transformers allows [p, p]
            if isinstance(kwargs.get(name), (list, tuple)) and kwargs[name]:
                kwargs[name] = kwargs[name][0]
        if "num_hidden_layers" in data and "depth" not in data:
            kwargs["depth"] = data["num_hidden_layers"]
        if "num_attention_heads" in data and "num_heads" not in data:
            kwargs["num_heads"] = data["num_attention_heads"]
        return cls(**kwargs, rope_theta=theta, source=source)

    @classmethod
    def from_json(cls, path: str | Path) -> VisionConfig:
        """Read a full Qwen3-VL `config.json` (vision part under `vision_config`) or a vision-only one.

        Only the data is read: an `auto_map` entry (remote code) is never imported or run.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise InputError(f"{path}: config file not found; a checkpoint folder needs a config.json")
        data = read_config_json(path)
        model_type = data.get("model_type")
        if model_type in FULL_MODEL_TYPES:
            vision = data.get("vision_config")
            if not isinstance(vision, dict):
                raise InputError(f"{path}: model_type {model_type!r} but no 'vision_config' object inside")
            return cls.from_dict(vision, source=str(path))
        if model_type in VISION_MODEL_TYPES:
            return cls.from_dict(data, source=str(path))
        known = ", ".join(FULL_MODEL_TYPES + VISION_MODEL_TYPES)
        raise InputError(
            f"{path}: model_type {model_type!r} is not a Qwen3-VL model (expected one of: {known}); "
            "point --model at a Qwen3-VL checkpoint folder"
        )

    def to_dict(self) -> dict[str, Any]:
        """A vision-only config in transformers' layout (what `save_pretrained` of the vision model writes)."""
        out = {k: v for k, v in asdict(self).items() if k in _SHAPE_FIELDS}
        out["deepstack_visual_indexes"] = list(self.deepstack_visual_indexes)
        out["rope_parameters"] = {"rope_type": "axial", "rope_theta": self.rope_theta}
        out["model_type"] = "qwen3_vl_vision"
        return out

    def describe(self) -> str:
        return (
            f"depth={self.depth} hidden={self.hidden_size} heads={self.num_heads} mlp={self.intermediate_size} "
            f"out={self.out_hidden_size} deepstack={list(self.deepstack_visual_indexes)}"
        )


_SHAPE_FIELDS = (
    "depth",
    "hidden_size",
    "hidden_act",
    "intermediate_size",
    "num_heads",
    "in_channels",
    "patch_size",
    "spatial_merge_size",
    "temporal_patch_size",
    "out_hidden_size",
    "num_position_embeddings",
    "deepstack_visual_indexes",
)

# Published vision-tower sizes. Source of each: the "vision_config" block of the model's config.json
# on the Hugging Face Hub (Qwen/<name>-Instruct, identical for -Thinking); out_hidden_size equals the
# text model's hidden_size. The 2B/4B towers are the 24-layer 1024-wide ViT, the rest the 27-layer
# 1152-wide (SigLIP2-so400m-sized) ViT.
_QWEN3_VL_SMALL_TOWER = dict(depth=24, hidden_size=1024, intermediate_size=4096, deepstack_visual_indexes=(5, 11, 17))
_QWEN3_VL_LARGE_TOWER = dict(depth=27, hidden_size=1152, intermediate_size=4304, deepstack_visual_indexes=(8, 16, 24))

PRESETS: dict[str, VisionConfig] = {
    # A few layers for fast tests; same patching and merging as the real towers.
    "tiny": VisionConfig(
        depth=4,
        hidden_size=64,
        intermediate_size=128,
        num_heads=4,
        out_hidden_size=96,
        num_position_embeddings=256,
        deepstack_visual_indexes=(0, 2),
    ),
    # Qwen/Qwen3-VL-2B-Instruct config.json, vision_config (text hidden_size 2048)
    "qwen3-vl-2b": VisionConfig(**_QWEN3_VL_SMALL_TOWER, out_hidden_size=2048),
    # Qwen/Qwen3-VL-4B-Instruct config.json, vision_config (text hidden_size 2560)
    "qwen3-vl-4b": VisionConfig(**_QWEN3_VL_SMALL_TOWER, out_hidden_size=2560),
    # Qwen/Qwen3-VL-8B-Instruct config.json, vision_config (text hidden_size 4096)
    "qwen3-vl-8b": VisionConfig(**_QWEN3_VL_LARGE_TOWER, out_hidden_size=4096),
    # Qwen/Qwen3-VL-32B-Instruct config.json, vision_config (text hidden_size 5120)
    "qwen3-vl-32b": VisionConfig(**_QWEN3_VL_LARGE_TOWER, out_hidden_size=5120),
    # Qwen/Qwen3-VL-30B-A3B-Instruct config.json, vision_config (text hidden_size 2048)
    "qwen3-vl-30b-a3b": VisionConfig(**_QWEN3_VL_LARGE_TOWER, out_hidden_size=2048),
    # Qwen/Qwen3-VL-235B-A22B-Instruct config.json, vision_config (text hidden_size 4096)
    "qwen3-vl-235b-a22b": VisionConfig(**_QWEN3_VL_LARGE_TOWER, out_hidden_size=4096),
}


def preset_names() -> list[str]:
    """Every name `--model` accepts besides a folder: shipped-weight presets, then random-weight ones."""
    return [*SHIPPED_WEIGHTS, *PRESETS]


def is_preset_name(name: str) -> bool:
    return str(name).lower() in preset_names()


def checkpoint_folder(name: str | Path) -> Path | None:
    """The folder `--model NAME` means, or None when NAME is a preset.

    A folder wins unless NAME is also a preset name and the folder has no config.json: running
    from the repository, `demo` is the preset, not the `demo/` scripts folder. A Hub repo id
    ("Qwen/Qwen3-VL-2B-Instruct") that is no local folder means its snapshot in the local cache.
    """
    path = Path(name).expanduser()
    if not path.is_dir():
        if path.exists() or is_preset_name(str(name)):
            return None
        from qwen3vl_inspect.hub import resolve_repo_id  # lazily: huggingface_hub only for repo ids

        return resolve_repo_id(str(name))
    if is_preset_name(str(name)) and not (path / "config.json").is_file():
        return None
    return path


def unknown_model(name: str | Path) -> InputError:
    """The error for a `--model` that is neither a checkpoint folder nor a preset."""
    if Path(name).expanduser().exists():
        return InputError(f"{name}: not a folder; --model takes a checkpoint folder or a preset name")
    from qwen3vl_inspect.hub import looks_like_repo_id, not_cached_error

    if looks_like_repo_id(str(name)):
        return not_cached_error(str(name))
    return InputError(
        f"{name}: no such checkpoint folder or preset; presets: {', '.join(preset_names())} "
        "(weights are never downloaded: point at a local folder with config.json + *.safetensors)"
    )


def weights_label(name: str | Path) -> str:
    """How `--model NAME`'s weights are described before they are loaded (the encoder says it after)."""
    folder = checkpoint_folder(name)
    if folder is not None:
        return str(folder)
    key = str(name).lower()
    return SHIPPED_WEIGHTS[key][1] if key in SHIPPED_WEIGHTS else "random weights"


def _problem_report(source: str, problems: list[str]) -> str:
    """One line for one problem; a header plus one indented line per problem for several."""
    if len(problems) == 1:
        return f"invalid vision config ({source}): {problems[0]}; fix config.json"
    return f"invalid vision config ({source}), {len(problems)} problems; fix config.json:" + "".join(
        f"\n  - {problem}" for problem in problems
    )


def read_config_json(path: Path) -> dict[str, Any]:
    """A config.json as a dict; broken files are one clear InputError naming them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); re-download or fix the config file") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    return data
