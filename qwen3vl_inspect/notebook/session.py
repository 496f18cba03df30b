"""Start a notebook session in one line: an image (or a named sample) through a model, as a lazy Trace.

The model defaults to `qwen3vl_inspect.cli.DEFAULT_MODEL`, read at call time so notebooks follow
the project's default; `QWEN3VL_INSPECT_MODEL=/path/to/Qwen3-VL-2B-Instruct jupyter lab` points every
notebook at a real checkpoint (or a preset) without editing them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.image import load_image, preprocess
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.tracing import Trace, trace

MODEL_ENV = "QWEN3VL_INSPECT_MODEL"
SAMPLES = ("demo", "grace_hopper", "scene:N")


def default_model() -> str:
    """`$QWEN3VL_INSPECT_MODEL` if set, else the command line's default model."""
    from qwen3vl_inspect import cli

    return os.environ.get(MODEL_ENV) or cli.DEFAULT_MODEL


def demo_image_path() -> Path:
    from qwen3vl_inspect.commands.common import demo_image_path as embedded

    return embedded()


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
    html: bool = True,
) -> Trace:
    """A lazy Trace of `image` (default: the demo image) through `model` (default: `default_model()`).

    `image` may be a path, a sample name, a PIL image, or a list of them (packed like the real model
    packs several images). Pass `encoder=` to reuse an encoder already built (building a 2B-sized
    preset takes seconds). `html=True` registers the notebook's HTML display of traces and stages.
    """
    items = image if isinstance(image, (list, tuple)) else [demo_image_path() if image is None else image]
    inputs = preprocess([_as_image(item) for item in items], min_pixels=min_pixels, max_pixels=max_pixels)
    if encoder is None:
        torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        encoder = VisionEncoder.from_pretrained(model or default_model(), dtype=torch_dtype, device=device)
    if html:
        from qwen3vl_inspect.render.html import enable_html_display

        enable_html_display()
    return trace(encoder, inputs, keep=keep)


def first_image(tr: Trace) -> Image.Image:
    """The resized image the first input's patches were cut from (frame 0 of a video)."""
    image = tr.inputs.images[0]
    return image[0] if isinstance(image, Sequence) else image
