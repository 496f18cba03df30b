"""From an image file (or PIL image, or array) to the encoder's `pixel_values` and `grid_thw`.

Everything here reproduces transformers' Qwen3-VL image processor (PIL backend) bit for bit,
without importing transformers: the same RGB conversion, the same bicubic resize on uint8, the
same float64-then-float32 rescale and float32 normalize, the same patch order. Files are opened
defensively, because a bad file is the most common user mistake and deserves a one-line answer.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import ImageError, InputError
from qwen3vl_inspect.inputs.preprocess import (
    patchify,
    rescale_and_normalize,
    smart_resize,
    unpatchify,
    unpatchify_frames,
)
from qwen3vl_inspect.inputs.processor_config import ProcessorConfig

__all__ = [
    "ALLOWED_FORMATS",
    "AnimatedImageWarning",
    "VisionInputs",
    "load_image",
    "patchify",
    "preprocess",
    "smart_resize",
    "to_rgb",
    "unpatchify",
    "unpatchify_frames",
]

# Real raster formats only: Pillow would otherwise try every plugin it has (EPS via Ghostscript,
# loosely detected formats such as TGA that can "open" random bytes). JPEG covers MPO (the
# multi-picture JPEGs many cameras write): Pillow's JPEG opener returns those itself.
BASE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO", "PSD")
# Formats whose decoder is an optional library Pillow may have been built without: format -> PIL.features name.
OPTIONAL_FORMATS = {"AVIF": "avif", "JPEG2000": "jpg_2000"}


def _readable_formats() -> tuple[str, ...]:
    """The allowlist this Pillow can actually decode (AVIF and JPEG 2000 only when their codecs are built in)."""
    from PIL import features

    Image.init()
    optional = [name for name, feature in OPTIONAL_FORMATS.items() if name in Image.OPEN and features.check(feature)]
    return BASE_FORMATS + tuple(optional)


ALLOWED_FORMATS = _readable_formats()
_AVIF_BRANDS = (b"ftypavif", b"ftypavis")  # bytes 4..12 of an AVIF file (ISO BMFF brand)
# Schemes people paste instead of a path; Path() folds "https://x" into "https:/x", so match one slash.
_URL_PREFIXES = ("http:/", "https:/", "ftp:/", "s3:/", "gs:/", "hf:/")

# Leading bytes of the allowed formats: a file that starts like one but can't be identified is
# damaged, not "not an image", and the advice differs.
_MAGIC = {
    b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
    b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WEBP", b"8BPS": "PSD",
    b"\x00\x00\x00\x0cjP  ": "JPEG2000", b"\xffO\xffQ": "JPEG2000",
}

ImageLike = Union[Image.Image, np.ndarray, str, "os.PathLike[str]"]  # noqa: UP007 - a runtime alias on Python 3.10



def _fail(path: Path, problem: str, advice: str) -> ImageError:
    return ImageError(f"{path}: {problem}; {advice}")


class AnimatedImageWarning(UserWarning):
    """An animated file was given where one picture is expected: only frame 0 is used."""


def _looks_like_url(text: str) -> bool:
    return text.lower().startswith(_URL_PREFIXES)


def _url_refusal(text: str) -> ImageError:
    shown = re.sub(r"^([A-Za-z][\w+.-]*):/(?!/)", r"\1://", text)  # undo Path()'s "https:/" folding
    return ImageError(f"{shown}: URLs are not supported; download the image and pass the file path")


def _missing_codec(head: bytes) -> str | None:
    """The name of an optional format whose codec this Pillow lacks, when `head` starts like one."""
    name = "AVIF" if head[4:12] in _AVIF_BRANDS else next((f for magic, f in _MAGIC.items() if head.startswith(magic)), None)
    return name if name in OPTIONAL_FORMATS and name not in ALLOWED_FORMATS else None


def _decode(path: Path) -> Image.Image:
    """Open and fully decode frame 0, turning every way that can fail into one ImageError."""
    if not path.exists():
        if _looks_like_url(str(path)):
            raise _url_refusal(str(path))
        raise _fail(path, "file not found", "check the path")
    if path.is_dir():
        raise _fail(path, "is a directory, not an image file", "pass the path of an image file")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)", "re-save or re-download it")
    allowed = ", ".join(ALLOWED_FORMATS)
    with warnings.catch_warnings():
        # Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; we refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=list(ALLOWED_FORMATS)) as opened:
                opened.load()  # decode now, inside the try: Image.open only reads the header
                image = opened.copy()
                image.info["n_frames"] = int(getattr(opened, "n_frames", 1))
                image.info["format"] = opened.format
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            limit = Image.MAX_IMAGE_PIXELS
            raise _fail(
                path,
                f"image is too large for Pillow's decompression-bomb limit of {limit} pixels ({exc})",
                "downscale it first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file",
            ) from None
        except UnidentifiedImageError:
            with path.open("rb") as fh:
                head = fh.read(12)
            codec = _missing_codec(head)
            if codec:
                raise _fail(path, f"{_article(codec)} {codec} file, but this Pillow was built without {codec} support",
                            "convert it to PNG or JPEG, or install a Pillow with that codec") from None
            if head[4:12] in _AVIF_BRANDS:
                raise _fail(path, "looks like an AVIF but its header is damaged or truncated",
                            "re-save or re-download it") from None
            for magic, name in _MAGIC.items():
                if head.startswith(magic) and (name != "WEBP" or head[8:12] == b"WEBP"):
                    raise _fail(path, f"looks like {_article(name)} {name} but its header is damaged or truncated",
                                "re-save or re-download it") from None
            raise _fail(path, f"not an image Pillow can read (allowed: {allowed})",
                        "convert it to PNG or JPEG") from None
        except PermissionError:
            raise _fail(path, "permission denied", "check the file's permissions") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "truncated" in detail.lower() or isinstance(exc, EOFError):
                raise _fail(path, f"truncated image data ({detail})", "re-save or re-download it") from None
            raise _fail(path, f"cannot decode image data ({detail})", "re-save or re-download it") from None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise IndexError, struct.error, … on damaged data
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0]}" if str(exc) else type(exc).__name__
            raise _fail(path, f"cannot decode image data ({detail})", "re-save or re-download it") from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB the way transformers' `convert_to_rgb` makes it: transparency composited onto white.

    Copying transformers exactly (not "doing it better") keeps pixel parity: e.g. a 16-bit `I;16`
    image is *clipped* to 0..255 by Pillow's `convert("RGB")`, not scaled, so most of it turns
    white, and transformers feeds the model that.
    """
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
    else:
        rgb = image.convert("RGB")
    rgb.info = {}
    return rgb


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file as an upright RGB PIL image, or raise ImageError with one clear line.

    EXIF orientation is applied (phones store portrait photos sideways plus a tag; the model
    should see them as people do). Animated files give frame 0; `info["n_frames"]` says how many
    there were (and an `AnimatedImageWarning` says so), `info["format"]` and `info["original_mode"]`
    what the file held. A URL is refused with its own message: nothing is ever downloaded.
    """
    if _looks_like_url(os.fspath(path)) and not Path(path).exists():
        raise _url_refusal(os.fspath(path))
    path = Path(path)
    image = _decode(path)
    n_frames, file_format = image.info.pop("n_frames"), image.info.pop("format")
    if n_frames > 1:
        warnings.warn(f"{path}: animated {file_format} with {n_frames} frames; using frame 0 only",
                      AnimatedImageWarning, stacklevel=2)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception as exc:  # a corrupt EXIF block must not make a readable image unusable
        warnings.warn(f"{path}: ignoring unreadable EXIF orientation ({exc})", stacklevel=2)
    original_mode = image.mode
    rgb = to_rgb(image)
    rgb.info = {"n_frames": n_frames, "original_mode": original_mode, "format": file_format}
    return rgb


def _array_to_rgb(array: np.ndarray) -> Image.Image:
    """HWC uint8 array to RGB, matching transformers' numpy path (its RGBA blend rounds in float64)."""
    if array.dtype != np.uint8:
        raise InputError(f"image arrays must be uint8 (H, W, C), got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]  # (H, W, 1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise InputError(f"image arrays must be (H, W) or (H, W, C) with C in 1, 3, 4; got shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)  # (H, W, 3)
    elif array.shape[-1] == 4:
        alpha = array[..., 3:4] / 255  # (H, W, 1) float64
        array = np.round(alpha * array[..., :3] + (1 - alpha) * 255).astype(np.uint8)  # (H, W, 3)
    return Image.fromarray(np.ascontiguousarray(array))


def _as_rgb(item: ImageLike) -> Image.Image:
    if isinstance(item, Image.Image):
        return to_rgb(item)
    if isinstance(item, np.ndarray):
        return _array_to_rgb(item)
    if isinstance(item, (str, os.PathLike)):
        return load_image(item)
    raise InputError(f"expected a PIL image, a uint8 numpy array or a file path, got {type(item).__name__}")


@dataclass
class VisionInputs:
    """What the vision encoder consumes, plus what views need to draw over the images.

    `pixel_values` rows are packed image after image (merge order within each frame);
    `grid_thw[i]` is (temporal patches, patch rows, patch cols) of input i. `images[i]` is the
    resized RGB image the patches were cut from (a list of frames for a video), so that overlays
    line up pixel for pixel; `original_sizes[i]` is (h, w) before resizing.
    """

    pixel_values: torch.Tensor  # float32 [N, C·T·P·P]
    grid_thw: torch.Tensor  # int64 [M, 3]
    images: list[Image.Image | list[Image.Image]]
    original_sizes: list[tuple[int, int]]
    min_pixels: int
    max_pixels: int
    patch_size: int = 16
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, ...] = field(default=(0.5, 0.5, 0.5))
    image_std: tuple[float, ...] = field(default=(0.5, 0.5, 0.5))

    @property
    def num_patches(self) -> int:
        return int(self.pixel_values.shape[0])

    @property
    def num_merged_tokens(self) -> int:
        """Tokens after the merger: one `<|image_pad|>` each in the language model's prompt."""
        return self.num_patches // (self.merge_size * self.merge_size)


def preprocess(
    images_or_frames: ImageLike | Sequence[ImageLike | Sequence[ImageLike]],
    config: VisionConfig | ProcessorConfig | None = None,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    patch_size: int | None = None,
    merge_size: int | None = None,
    temporal_patch_size: int | None = None,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
) -> VisionInputs:
    """Turn one image, several images, or videos into packed encoder inputs.

    `config` says how to cut them: an encoder's `VisionConfig` (its patch, merge and temporal
    sizes), a `ProcessorConfig` (e.g. read from a checkpoint's preprocessor_config.json), or None
    for Qwen3-VL's defaults; keyword arguments override single values.

    A list packs several inputs into one sequence (the encoder keeps them apart with
    `cu_seqlens`); an element that is itself a list/tuple is a video's frames. Videos are padded
    to a multiple of `temporal_patch_size` frames by repeating the last frame, and all frames take
    the size `smart_resize` gives the first one, as transformers' video processor does.
    """
    settings = _processor_settings(config, min_pixels, max_pixels, patch_size, merge_size, temporal_patch_size,
                                   image_mean, image_std)
    if min_pixels is None and max_pixels is not None and 1 <= settings.max_pixels < settings.min_pixels:
        raise InputError(
            f"max_pixels={settings.max_pixels} is below the default min_pixels={settings.min_pixels}; "
            f"raise max_pixels to at least {settings.min_pixels}, or also pass min_pixels (--min-pixels) "
            f"no larger than {settings.max_pixels}"
        )
    min_pixels, max_pixels = settings.min_pixels, settings.max_pixels
    patch_size, merge_size, temporal_patch_size = settings.patch_size, settings.merge_size, settings.temporal_patch_size
    image_mean, image_std = settings.image_mean, settings.image_std
    factor = patch_size * merge_size
    items: list[Any] = list(images_or_frames) if isinstance(images_or_frames, (list, tuple)) else [images_or_frames]
    if not items:
        raise InputError("no images given; pass an image, a path, or a list of them")

    all_patches, grids, resized_out, original_sizes = [], [], [], []
    for index, item in enumerate(items):
        is_video = isinstance(item, (list, tuple))
        sources = list(item) if is_video else [item]
        if not sources:
            raise InputError(f"input {index} is an empty list of frames; give at least one frame")
        frames = [_as_rgb(source) for source in sources]
        width, height = frames[0].size
        new_h, new_w = smart_resize(height, width, factor, min_pixels, max_pixels)
        resized = [frame.resize((new_w, new_h), resample=Image.Resampling.BICUBIC) for frame in frames]
        # (C, H, W) per frame: HWC uint8 from PIL, channels moved first as transformers does
        normalized = [
            rescale_and_normalize(np.asarray(frame).transpose(2, 0, 1), image_mean, image_std) for frame in resized
        ]
        if is_video:
            pad = -len(normalized) % temporal_patch_size
            stacked = np.stack(normalized + [normalized[-1]] * pad)  # (F, C, H, W), F % T == 0
        else:
            stacked = normalized[0]  # (C, H, W): patchify repeats it over the temporal axis
        patches, grid = patchify(stacked, patch_size, merge_size, temporal_patch_size)
        all_patches.append(patches)
        grids.append(grid)
        resized_out.append(resized if is_video else resized[0])
        original_sizes.append((height, width))

    pixel_values = torch.from_numpy(np.concatenate(all_patches, axis=0))  # (N, C·T·P·P)
    grid_thw = torch.tensor(grids, dtype=torch.int64)  # (M, 3)
    return VisionInputs(
        pixel_values=pixel_values,
        grid_thw=grid_thw,
        images=resized_out,
        original_sizes=original_sizes,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        patch_size=patch_size,
        merge_size=merge_size,
        temporal_patch_size=temporal_patch_size,
        image_mean=tuple(float(v) for v in image_mean),
        image_std=tuple(float(v) for v in image_std),
    )


def _processor_settings(
    config: VisionConfig | ProcessorConfig | None,
    min_pixels: int | None,
    max_pixels: int | None,
    patch_size: int | None,
    merge_size: int | None,
    temporal_patch_size: int | None,
    image_mean: Sequence[float] | None,
    image_std: Sequence[float] | None,
) -> ProcessorConfig:
    """`config` as a ProcessorConfig, with the keyword arguments that were given put over it."""
    if config is None:
        base = ProcessorConfig()
    elif isinstance(config, ProcessorConfig):
        base = config
    elif isinstance(config, VisionConfig):
        base = ProcessorConfig.for_encoder(config)
    else:
        raise TypeError(f"preprocess(images, config): config must be a VisionConfig or ProcessorConfig, not "
                        f"{type(config).__name__}; pass pixel bounds as min_pixels=/max_pixels=")
    base = replace(
        base,
        patch_size=base.patch_size if patch_size is None else patch_size,
        merge_size=base.merge_size if merge_size is None else merge_size,
        temporal_patch_size=base.temporal_patch_size if temporal_patch_size is None else temporal_patch_size,
        image_mean=base.image_mean if image_mean is None else tuple(float(v) for v in image_mean),
        image_std=base.image_std if image_std is None else tuple(float(v) for v in image_std),
    )
    return base.with_pixels(min_pixels, max_pixels)


def _article(name: str) -> str:
    """ "an AVIF", "a PNG": by the sound of the first letter of the format's name."""
    return "an" if name[:1].upper() in "AEFHILMNORSX" else "a"
