"""Opening a run, the same way for the command line, the TUI and notebooks.

The default model, device parsing, the embedded sample pictures, reading the image before the
model (so a bad file fails fast) and building a lazy Trace live here, below every front end:
`cli`/`commands`, `tui` and `notebook` import this module, never each other.

`QWEN3VL_INSPECT_MODEL=/path/to/Qwen3-VL-2B-Instruct jupyter lab` points every notebook at a real
checkpoint (or a preset) without editing them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from qwen3vl_inspect.config import VisionConfig, checkpoint_folder, is_preset_name, unknown_model
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.inputs.image import VisionInputs, load_image, preprocess
from qwen3vl_inspect.inputs.processor_config import ProcessorConfig
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.tracing import Trace, trace

DEFAULT_MODEL = "demo"
MODEL_ENV = "QWEN3VL_INSPECT_MODEL"
SAMPLES = ("demo", "grace_hopper", "scene:N")
DTYPES = ("float32", "bfloat16", "float16")
MODEL_HELP = (f"default {DEFAULT_MODEL}: a small vision tower shipped with the package, trained on synthetic shapes "
              "(not Qwen's weights). Also: a checkpoint folder (config.json + *.safetensors, e.g. a Qwen3-VL "
              "download), "
              "a Hugging Face repo id already in the local cache (downloads only with QWEN3VL_INSPECT_DOWNLOAD=1), "
              "or a random-weights preset "
              "(tiny, qwen3-vl-2b, …)")


def default_model() -> str:
    """`$QWEN3VL_INSPECT_MODEL` if set, else DEFAULT_MODEL (the demo weights that ship with the package)."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


# ---- pictures ------------------------------------------------------------------------------------

def demo_image_path() -> Path:
    return Path(str(resources.files("qwen3vl_inspect") / "assets" / "demo.png"))


def grace_hopper_path() -> Path:
    """The photo matplotlib ships in its sample data (a US Navy portrait, public domain)."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def sample_image(name: str = "demo") -> Image.Image:
    """A named picture: "demo" (the embedded 400×300 scene), "grace_hopper" (a photo), "scene:N" (drawn shapes)."""
    if name == "demo":
        return load_image(demo_image_path())
    if name == "grace_hopper":
        return load_image(grace_hopper_path())
    if name.startswith("scene"):
        from qwen3vl_inspect.demo_scenes import make_scene

        _, _, index = name.partition(":")
        return make_scene(int(index or 0), "eval").image
    raise InputError(f"no sample image {name!r}; choose one of {', '.join(SAMPLES)} or pass a file path")


def _as_image(item: Any) -> Any:
    if isinstance(item, str) and (item in ("demo", "grace_hopper") or item.startswith("scene")) and not Path(item).is_file():
        return sample_image(item)
    if isinstance(item, (str, os.PathLike)):
        return load_image(item)
    return item  # PIL image, array, or a list of frames: preprocess takes those


def first_image(tr: Trace) -> Image.Image:
    """The resized image the first input's patches were cut from (frame 0 of a video)."""
    image = tr.inputs.images[0]
    return image[0] if isinstance(image, Sequence) else image


# ---- checks that run before anything slow -------------------------------------------------------

def available_devices() -> list[str]:
    """Device types this torch build can compute on here (cpu always)."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    for kind in ("xpu", "npu", "hpu"):
        if getattr(getattr(torch, kind, None), "is_available", lambda: False)():
            found.append(kind)
    return found


def parse_device(name: str | torch.device) -> torch.device:
    """The torch device, refused up front (one line) when this torch build or machine cannot compute on it:
    `--device cuda` on a CPU-only torch would otherwise fail deep inside the model build."""
    shown = safe_text(name)
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"--device '{shown}' is not a torch device; use {' or '.join(available_devices())}") from None
    usable = available_devices()
    if device.type == "meta":
        raise InputError(f"--device meta holds shapes but no data, so nothing can be inspected on it; "
                         f"use {' or '.join(usable)}")
    if device.type not in usable:
        why = {"cuda": "this torch build is CPU-only" if torch.version.cuda is None else "no CUDA GPU is visible",
               "mps": "this torch build or machine has no Apple Metal (MPS) support"}.get(
            device.type, f"this torch build cannot compute on {device.type}")
        raise InputError(f"--device {shown}: {why}; use {' or '.join(usable)}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"--device {shown}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                         f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return device


def parse_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    if name is None or isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise InputError(f"dtype {name!r}: choose one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def check_model(model: str) -> VisionConfig:
    """The vision config of a preset or checkpoint folder, reading headers only: fails fast on a bad path."""
    path = Path(model).expanduser()
    if path.exists() and not path.is_dir():
        raise unknown_model(model)
    folder = checkpoint_folder(model)  # a folder, or a Hub repo id found in the local cache
    if folder is None and path.is_dir() and not is_preset_name(model):
        folder = path  # no config.json: describe_checkpoint says so
    if folder is not None:
        from qwen3vl_inspect.model.checkpoint import describe_checkpoint

        config = VisionConfig.from_json(folder / "config.json")
        describe_checkpoint(folder)  # index, shard headers, key layout: a broken download fails here
        return config
    if is_preset_name(model):
        return VisionConfig.preset(model)
    raise unknown_model(model)


def load_inputs(images: Any = None, min_pixels: int | None = None, max_pixels: int | None = None,
                model: str | os.PathLike | VisionConfig | None = None) -> VisionInputs:
    """Read and preprocess the image(s) (default: the demo image) the way `model` wants them cut: fails
    fast, before the model is built.

    `images` may be a path, a sample name, a PIL image, or a list of them (packed like the real model
    packs several images). `model`: a checkpoint folder (its preprocessor_config.json), a preset name
    or an encoder's config (default: Qwen3-VL's processor settings).
    """
    items = images if isinstance(images, (list, tuple)) else [demo_image_path() if images is None else images]
    return preprocess([_as_image(item) for item in items], processor_config(model),
                      min_pixels=min_pixels, max_pixels=max_pixels)


def processor_config(model: str | os.PathLike | VisionConfig | None) -> ProcessorConfig:
    """How `model` wants its images cut, read from config files only (no weights)."""
    if model is None:
        return ProcessorConfig()
    if isinstance(model, VisionConfig):
        return ProcessorConfig.for_encoder(model)
    folder = checkpoint_folder(str(model))
    if folder is not None:
        return ProcessorConfig.from_pretrained(folder)
    return ProcessorConfig.for_encoder(check_model(str(model)))


def load_encoder(model: str | os.PathLike | None = None, dtype: str | torch.dtype | None = None,
                 device: str = "cpu") -> VisionEncoder:
    """A checkpoint folder, a shipped preset ("demo") or a random-weights preset (default: `default_model()`)."""
    return VisionEncoder.from_pretrained(model or default_model(), dtype=parse_dtype(dtype), device=parse_device(device))


def open_trace(
    image: Any = None,
    model: str | os.PathLike | None = None,
    *,
    encoder: VisionEncoder | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    dtype: str | torch.dtype | None = None,
    device: str = "cpu",
    keep: str = "blocks",
) -> Trace:
    """A lazy Trace of `image` (default: the demo image) through `model` (default: `default_model()`).

    Pass `encoder=` to reuse an encoder already built (building a 2B-sized preset takes seconds).
    """
    inputs = load_inputs(image, min_pixels, max_pixels, encoder.config if encoder is not None else model or default_model())
    return trace(encoder or load_encoder(model, dtype, device), inputs, keep=keep)
