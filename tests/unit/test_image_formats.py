"""Formats this Pillow can decode load; animation, URLs and a lone --max-pixels get their own clear words."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from qwen3vl_inspect.cli import main
from qwen3vl_inspect.errors import ImageError, InputError
from qwen3vl_inspect.inputs import image as image_module
from qwen3vl_inspect.inputs.image import ALLOWED_FORMATS, AnimatedImageWarning, load_image, preprocess


def _noise(height: int = 24, width: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _write_psd(path: Path, rgb: np.ndarray) -> None:
    """A minimal uncompressed RGB Photoshop file (Pillow reads PSD but cannot write it)."""
    height, width, _ = rgb.shape
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)  # version 1, 3 channels, 8 bit, RGB
    sections = struct.pack(">III", 0, 0, 0)  # colour-mode data, image resources, layer/mask info: all empty
    planes = rgb.transpose(2, 0, 1).tobytes()  # (C, H, W): PSD stores channel planes one after another
    path.write_bytes(header + sections + struct.pack(">H", 0) + planes)  # compression 0 = raw


def test_psd_loads(tmp_path: Path) -> None:
    path = tmp_path / "layered.psd"
    _write_psd(path, _noise())
    image = load_image(path)
    assert image.info["format"] == "PSD" and np.array_equal(np.asarray(image), _noise())


@pytest.mark.parametrize(("fmt", "feature", "suffix"), [("AVIF", "avif", "avif"), ("JPEG2000", "jpg_2000", "jp2")])
def test_optional_codec_formats_load_when_pillow_has_the_codec(tmp_path: Path, fmt: str, feature: str, suffix: str) -> None:
    if not features.check(feature):
        pytest.skip(f"this Pillow has no {feature} codec")
    assert fmt in ALLOWED_FORMATS
    path = tmp_path / f"photo.{suffix}"
    options = {"quality": 100} if fmt == "AVIF" else {"irreversible": False}
    Image.fromarray(_noise()).save(path, fmt, **options)
    image = load_image(path)
    assert image.info["format"] == fmt and image.size == (40, 24)
    if fmt == "JPEG2000":  # lossless 5/3 wavelet: bit-exact
        assert np.array_equal(np.asarray(image), _noise())


def test_missing_codec_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An AVIF on a Pillow built without libavif: say so instead of "not an image"."""
    monkeypatch.setattr(image_module, "ALLOWED_FORMATS", tuple(f for f in ALLOWED_FORMATS if f != "AVIF"))
    path = tmp_path / "photo.avif"
    path.write_bytes(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 200)
    with pytest.raises(ImageError, match="this Pillow was built without AVIF support; convert it to PNG or JPEG"):
        load_image(path)


def test_animated_gif_warns_that_only_frame_zero_is_used(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (24, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.warns(AnimatedImageWarning, match=r"anim.gif: animated GIF with 3 frames; using frame 0 only"):
        load_image(path)
    still = tmp_path / "still.png"
    frames[0].save(still)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(still)


def test_cli_shows_the_animation_warning_as_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    frames = [Image.fromarray(_noise(64, 64)), Image.new("RGB", (64, 64))]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert main(["trace", str(path), "--model", "tiny"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "animated" in line]
    assert lines == [f"warning: {path}: animated PNG with 2 frames; using frame 0 only"], err


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://example.com/a/b.jpg", "HTTPS://x.org/y"])
def test_url_is_refused_with_advice(url: str) -> None:
    with pytest.raises(ImageError, match="URLs are not supported; download the image and pass the file path"):
        load_image(url)


def test_cli_url_is_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["trace", "https://example.com/cat.png", "--model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "error: https://example.com/cat.png: URLs are not supported" in err
    assert "file not found" not in err and "Traceback" not in err


def test_lone_max_pixels_below_default_min_names_max_pixels() -> None:
    with pytest.raises(InputError) as info:
        preprocess(Image.fromarray(_noise()), max_pixels=4096)
    message = str(info.value)
    assert message.startswith("max_pixels=4096 is below the default min_pixels=65536")
    assert "--min-pixels" in message and "no larger than 4096" in message
    small = preprocess(Image.fromarray(_noise()), min_pixels=1024, max_pixels=4096)  # the advice works
    assert small.pixel_values.shape[0] * 16 * 16 <= 4096


def test_cli_lone_max_pixels(capsys: pytest.CaptureFixture) -> None:
    assert main(["trace", "--max-pixels", "4096", "--model", "tiny"]) == 2
    assert "error: max_pixels=4096 is below the default min_pixels" in capsys.readouterr().err


def test_damaged_avif_is_named_as_avif(tmp_path: Path) -> None:
    if "AVIF" not in ALLOWED_FORMATS:
        pytest.skip("this Pillow has no AVIF codec (test_missing_codec_is_named covers it)")
    path = tmp_path / "photo.avif"
    path.write_bytes(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 100)
    with pytest.raises(ImageError, match="looks like an AVIF but its header is damaged"):
        load_image(path)
