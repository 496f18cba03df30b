"""`compare` with an exported ONNX file as a side: within tolerance of our encoder, and a fault located
to the block when the file (which can't be replayed) is the reference."""

import copy

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install -e '.[onnx]')")

from PIL import Image  # noqa: E402

from qwen3vl_inspect import VisionEncoder, compare, preprocess  # noqa: E402
from qwen3vl_inspect.cli import main  # noqa: E402
from qwen3vl_inspect.comparison.result import INTRODUCED  # noqa: E402
from qwen3vl_inspect.export.onnx_export import export_onnx  # noqa: E402
from qwen3vl_inspect.session import load_inputs  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return VisionEncoder.from_pretrained("tiny")


@pytest.fixture(scope="module")
def exported(encoder, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(encoder, path)
    return path


@pytest.fixture(scope="module")
def inputs():
    return load_inputs(["demo", "scene:1"], min_pixels=64 * 64, max_pixels=192 * 192)  # two packed images


def noise_image(width, height, seed):
    pixels = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return Image.fromarray(pixels.numpy())


# (width, height) of the packed images, as the export tests use them
CASES = {"square": [(512, 512)], "1024x256": [(1024, 256)], "256x1024": [(256, 1024)],
         "packed": [(512, 512), (1024, 256), (256, 1024)]}


@pytest.mark.parametrize("case", CASES)
def test_onnx_within_our_encoder_on_every_shape(encoder, exported, case):
    images = [noise_image(w, h, i) for i, (w, h) in enumerate(CASES[case])]
    result = compare(encoder, exported, preprocess(images, min_pixels=1024, max_pixels=64 * 256))
    assert result.ok, result.verdict
    assert [r.name for r in result][-1] == "merger" and result["deepstack.1"].status in ("equal", "within")


def test_onnx_within_our_encoder(encoder, exported, inputs):
    result = compare(encoder, exported, inputs)
    assert result.ok, result.verdict
    names = [r.name for r in result]
    assert names[0] == "patch_embed" and names[-1] == "merger"
    assert "blocks.3" in names and "deepstack.1" in names
    assert "blocks.0.attn" in result.not_exposed and "cu_seqlens" in result.not_exposed
    assert result["merger"].max_abs < 1e-4


def test_fault_against_onnx_reference_is_located_by_upstream(encoder, exported, inputs):
    modified = copy.deepcopy(encoder)
    with torch.no_grad():
        modified.blocks[2].attn.qkv.bias.add_(0.3)
    result = compare(exported, modified, inputs)
    first = result.first_divergence
    assert first.name == "blocks.2" and first.origin == INTRODUCED and first.origin_how == "upstream"
    assert result["blocks.3"].origin == "inherited"


def test_cli_against_onnx_exits_0(exported, capsys):
    assert main(["compare", "--model", "tiny", "--against", str(exported), "--min-pixels", "4096",
                 "--max-pixels", "65536"]) == 0
    assert "tiny.onnx" in capsys.readouterr().out


def test_float16_export_is_within_the_measured_floor(encoder, tmp_path, inputs):
    """A float16 file is judged against a re-run of our encoder in float16, not against fp32 rounding."""
    path = tmp_path / "tiny16.onnx"
    assert main(["export", str(path), "--model", "tiny", "--dtype", "float16", "--no-intermediates"]) == 0
    result = compare(encoder, path, inputs)
    assert "precision floor: a re-run in float16" in result.tolerance_note
    assert result.ok, result.verdict
    assert [r.name for r in result] == ["deepstack.0", "deepstack.1", "merger"]
