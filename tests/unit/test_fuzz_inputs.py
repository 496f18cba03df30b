"""Property-based fuzzing of the two parsers that read untrusted bytes: image files and safetensors headers.

The property is the error policy itself: whatever the bytes, the result is a usable value or the
project's own one-line error (ImageError / CheckpointError), never another exception. Example counts
are modest so the file runs in seconds; hypothesis keeps failing examples in its database and replays
them first.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import CheckpointError, ImageError
from qwen3vl_inspect.inputs.image import load_image
from qwen3vl_inspect.model.checkpoint import describe_checkpoint, load_vision_state_dict

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- images ------------------------------------------------------------------------------------

def _encoded(fmt: str, seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (19, 23, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    image = Image.fromarray(rgb)
    if fmt == "GIF":
        image.save(buffer, fmt, save_all=True, append_images=[image.rotate(90)])
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


VALID = {fmt: _encoded(fmt, 0) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO")}


def _load_bytes(data: bytes, suffix: str = ".img") -> None:
    """load_image on `data`: it must give an RGB image or raise ImageError, nothing else."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            image = load_image(path)
        except ImageError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(path))
            return
        assert image.mode == "RGB" and image.size[0] > 0 and image.size[1] > 0


@pytest.fixture(autouse=True)
def _small_bomb_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutated headers claim huge sizes; refuse them at 4 MP instead of decoding ~90 MP per example."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000_000)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_load_or_raise_image_error(data: bytes) -> None:
    _load_bytes(data)


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.floats(0.0, 1.0))
def test_truncated_images_load_or_raise_image_error(fmt: str, keep: float) -> None:
    data = VALID[fmt]
    _load_bytes(data[: int(len(data) * keep)], "." + fmt.lower())


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_images_load_or_raise_image_error(fmt: str, edits: list[tuple[int, int]]) -> None:
    data = bytearray(VALID[fmt])
    for position, value in edits:  # header bytes are the interesting ones: bias positions towards the start
        data[position % min(len(data), 64 if position % 2 else len(data))] = value
    _load_bytes(bytes(data), "." + fmt.lower())


# ---- safetensors headers -----------------------------------------------------------------------

# One small vision-only tower whose real header the mutations start from.
TOWER = VisionConfig(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=8,
                     num_position_embeddings=4, deepstack_visual_indexes=(), patch_size=2)
DTYPES = ["F32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "I64", "XX", ""]


def _expected() -> dict[str, tuple[int, ...]]:
    from qwen3vl_inspect.model.encoder import VisionEncoder

    return {k: tuple(v.shape) for k, v in VisionEncoder(TOWER).state_dict().items()}


EXPECTED = _expected()


def _real_header() -> dict:
    header, offset = {}, 0
    for name, shape in EXPECTED.items():
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    return header


def _check_checkpoint(raw: bytes) -> None:
    """Both readers on a folder whose model.safetensors is `raw`: success or CheckpointError only."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(TOWER.to_dict()))
        (Path(folder) / "model.safetensors").write_bytes(raw)
        for read in (lambda: describe_checkpoint(folder), lambda: load_vision_state_dict(folder, EXPECTED)):
            try:
                read()
            except CheckpointError as exc:
                assert "\n" not in str(exc)


def _file(header_bytes: bytes, data_size: int, claimed: int | None = None) -> bytes:
    length = len(header_bytes) if claimed is None else claimed
    return struct.pack("<Q", length) + header_bytes + b"\x00" * data_size


DATA_SIZE = sum(int(np.prod(s)) * 4 for s in EXPECTED.values())


def test_the_unmutated_header_loads() -> None:
    _check_checkpoint(_file(json.dumps(_real_header()).encode(), DATA_SIZE))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(TOWER.to_dict()))
        (Path(folder) / "model.safetensors").write_bytes(_file(json.dumps(_real_header()).encode(), DATA_SIZE))
        assert set(load_vision_state_dict(folder, EXPECTED)) == set(EXPECTED)


@FUZZ
@given(st.binary(max_size=512), st.one_of(st.none(), st.integers(0, 2**64 - 1)), st.integers(0, 4096))
def test_random_headers_raise_checkpoint_error(header: bytes, claimed: int | None, data_size: int) -> None:
    _check_checkpoint(_file(header, data_size, claimed))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(
    st.sampled_from(sorted(EXPECTED)),
    st.sampled_from(["dtype", "shape", "data_offsets", "extra"]),
    st.one_of(json_values, st.sampled_from(DTYPES), st.lists(st.integers(-(2**40), 2**40), max_size=4)),
    st.integers(-64, 64),
)
def test_mutated_headers_load_or_raise_checkpoint_error(name: str, field: str, value: object, size_change: int) -> None:
    header = _real_header()
    if field == "extra":
        header[str(value)[:40] or "x"] = value
    else:
        header[name][field] = value
    _check_checkpoint(_file(json.dumps(header).encode(), max(0, DATA_SIZE + size_change)))


# ---- config.json values ------------------------------------------------------------------------

CONFIG_KEYS = ["depth", "hidden_size", "hidden_act", "intermediate_size", "num_heads", "in_channels", "patch_size",
               "spatial_merge_size", "temporal_patch_size", "out_hidden_size", "num_position_embeddings",
               "deepstack_visual_indexes", "rope_parameters", "rope_theta", "num_hidden_layers", "num_attention_heads"]


@FUZZ
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values | st.integers(-5, 5000), max_size=6))
def test_any_config_values_give_a_config_or_one_input_error(changes: dict) -> None:
    """Whatever JSON values the vision config holds: a valid VisionConfig, or InputError (never a traceback)."""
    from qwen3vl_inspect.errors import InputError

    data = {**VisionConfig.preset("tiny").to_dict(), **changes}
    try:
        config = VisionConfig.from_dict(data, source="fuzz")
    except InputError as exc:
        assert str(exc).startswith("invalid vision config (fuzz)")
        return
    assert config.hidden_size % config.num_heads == 0 and all(0 <= i < config.depth for i in config.deepstack_visual_indexes)
