"""Opening image files: orientation, animation, and one clear line for every file we refuse."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from qwen3vl_inspect.errors import ImageError, InputError
from qwen3vl_inspect.inputs.image import ALLOWED_FORMATS, AnimatedImageWarning, load_image, preprocess, smart_resize


def rgb_noise(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def refused(path) -> str:
    """The ImageError message for `path`, checked for the shape every refusal must have."""
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert "; " in message  # problem; what to do
    return message


# --- what we accept -------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # h=20, w=40 as stored
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    assert Image.open(path).size == (40, 20)
    image = load_image(path)
    assert image.size == (20, 40)  # (w, h) swapped
    pixels = np.asarray(image).astype(int)
    assert pixels[5, 10, 0] > 200 and pixels[5, 10, 2] < 60  # the red half is now on top
    assert pixels[35, 10, 2] > 200 and pixels[35, 10, 0] < 60


@pytest.mark.parametrize(("fmt", "suffix"), [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")])
def test_animated_image_gives_frame_zero_and_frame_count(tmp_path, fmt, suffix):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (24, 16), color) for color in colors]
    path = tmp_path / f"anim.{suffix}"
    options = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    with pytest.warns(AnimatedImageWarning, match="using frame 0 only"):
        image = load_image(path)
    assert image.mode == "RGB"
    assert image.info["n_frames"] == 3
    assert image.info["format"] == fmt
    assert tuple(np.asarray(image)[8, 12]) == (255, 0, 0)


def test_still_image_reports_one_frame(tmp_path):
    path = tmp_path / "still.png"
    Image.fromarray(rgb_noise(10, 12)).save(path)
    image = load_image(str(path))
    assert image.info["n_frames"] == 1
    assert np.array_equal(np.asarray(image), rgb_noise(10, 12))


def test_allowed_formats_are_all_known_to_pillow():
    Image.init()
    assert set(ALLOWED_FORMATS) <= set(Image.OPEN)


# --- what we refuse -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert "file not found; check the path" in refused(tmp_path / "photo.jpg")


def test_directory(tmp_path):
    assert "directory" in refused(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty" in refused(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(rgb_noise(200, 300)).save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = refused(path)
    assert "truncated image data" in message and "re-save or re-download" in message


def test_damaged_header(tmp_path):
    path = tmp_path / "stub.png"
    Image.fromarray(rgb_noise(20, 20)).save(path)
    path.write_bytes(path.read_bytes()[:10])  # signature, then nothing
    message = refused(path)
    assert "looks like a PNG" in message and "re-save or re-download" in message


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a picture\n" * 20)
    message = refused(path)
    assert "not an image Pillow can read" in message
    assert "PNG, JPEG" in message


def test_format_outside_the_allowlist(tmp_path):
    path = tmp_path / "old.tga"
    Image.fromarray(rgb_noise(8, 8)).save(path, "TGA")
    assert Image.open(path).format == "TGA"  # Pillow alone would open it
    assert "not an image Pillow can read" in refused(path)


@pytest.mark.parametrize("side", [40, 50])  # 1600 px: Pillow only warns; 2500 px: Pillow raises
def test_decompression_bomb(tmp_path, monkeypatch, side):
    path = tmp_path / "bomb.png"
    Image.fromarray(rgb_noise(side, side)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    message = refused(path)
    assert "too large" in message and "1000" in message and "MAX_IMAGE_PIXELS" in message


def test_preprocess_reports_bad_paths_as_image_errors(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        preprocess([Image.new("RGB", (64, 64)), tmp_path / "nope.png"])


# --- impossible sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(0, 100), (100, 0), (-5, 40)])
def test_smart_resize_rejects_empty_sides(height, width):
    with pytest.raises(ValueError, match=f"{height}x{width}"):
        smart_resize(height, width)


def test_smart_resize_rejects_extreme_aspect_ratio():
    with pytest.raises(ValueError, match=r"10x2500.*aspect ratio 250\.0 > 200"):
        smart_resize(10, 2500)
    assert smart_resize(10, 2000)  # exactly 200 is allowed, as in transformers


def test_smart_resize_rejects_min_above_max():
    with pytest.raises(ValueError, match="min_pixels=70000 is larger than max_pixels=60000"):
        smart_resize(100, 100, min_pixels=70000, max_pixels=60000)


def test_smart_resize_rejects_max_below_one_block():
    with pytest.raises(ValueError, match="max_pixels=500"):
        smart_resize(100, 100, min_pixels=100, max_pixels=500)


def test_smart_resize_never_asserts():
    for args in [(0, 0), (1, 1000), (5, 5, 32, 10, 5)]:
        with pytest.raises(InputError):
            smart_resize(*args)


def test_preprocess_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="min_pixels=2000000 is larger than max_pixels=100000"):
        preprocess(Image.new("RGB", (64, 64)), min_pixels=2_000_000, max_pixels=100_000)
    with pytest.raises(ValueError, match=r"1x300.*aspect ratio 300\.0"):
        preprocess(Image.new("RGB", (300, 1)))
    with pytest.raises(ValueError, match="0x10"):
        preprocess(np.zeros((0, 10, 3), dtype=np.uint8))
