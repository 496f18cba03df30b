"""ONNX export: every output of the exported file equals our encoder's stage on other sizes and packed
inputs; a file that lost its DeepStack outputs (seed 002) is flagged by `check_onnx` and `export --check`.

Two exports per run (a few seconds each): the tiny preset through the CLI, with intermediates, and the
demo model through a wrapper that drops DeepStack outputs the way seed 002's modified modeling file did.
"""

import shutil

import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install -e '.[onnx]')")
onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install -e '.[onnx]')")

from qwen3vl_inspect import VisionEncoder, preprocess, trace  # noqa: E402
from qwen3vl_inspect.cli import main  # noqa: E402
from qwen3vl_inspect.errors import InputError  # noqa: E402
from qwen3vl_inspect.export import graph  # noqa: E402
from qwen3vl_inspect.export.onnx_check import check_onnx  # noqa: E402
from qwen3vl_inspect.export.onnx_export import export_onnx  # noqa: E402
from qwen3vl_inspect.export.onnx_run import onnx_output_names, onnx_stage_outputs  # noqa: E402

TOLERANCE = 1e-4  # fp32 max abs error


def noise_image(width, height, seed):
    pixels = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return Image.fromarray(pixels.numpy())


# (width, height) of the packed images; small max_pixels keeps it fast, the aspect ratios are kept.
CASES = {
    "square": [(512, 512)],
    "1024x256": [(1024, 256)],
    "256x1024": [(256, 1024)],
    "packed": [(512, 512), (1024, 256), (256, 1024)],
}


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """`qwen3vl-inspect export` of the tiny preset (random weights), verified by the command itself."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert main(["export", str(path), "--model", "tiny"]) == 0
    return path


@pytest.fixture(scope="module")
def encoder():
    return VisionEncoder.from_pretrained("tiny")


@pytest.mark.parametrize("case", CASES)
def test_every_output_matches_the_encoder(tiny_onnx, encoder, case):
    inputs = preprocess([noise_image(w, h, i) for i, (w, h) in enumerate(CASES[case])], min_pixels=1024,
                        max_pixels=64 * 256)
    outputs = onnx_stage_outputs(tiny_onnx, inputs)
    tr = trace(encoder, inputs).run()
    assert list(outputs) == graph.output_names(encoder.config, intermediates=True)
    errors = {name: float((value - tr.tensor(name)).abs().max()) for name, value in outputs.items()}
    print(case, inputs.grid_thw.tolist(), f"max abs error {max(errors.values()):.2e}")
    assert max(errors.values()) <= TOLERANCE, errors
    assert outputs["merger"].shape[0] * 4 == inputs.num_patches


def test_video_frames_and_an_image_packed(tiny_onnx, encoder):
    """A 4-frame video is two temporal patches: two attention segments, plus the image's."""
    frames = [noise_image(256, 128, 10 + i) for i in range(4)]
    inputs = preprocess([noise_image(128, 256, 0), frames], min_pixels=1024, max_pixels=64 * 256)
    assert inputs.grid_thw[:, 0].tolist() == [1, 2]
    outputs = onnx_stage_outputs(tiny_onnx, inputs)
    tr = trace(encoder, inputs).run()
    error = max(float((v - tr.tensor(k)).abs().max()) for k, v in outputs.items())
    print("image + video", inputs.grid_thw.tolist(), f"max abs error {error:.2e}")
    assert error <= TOLERANCE


def test_packed_images_do_not_attend_to_each_other(tiny_onnx, encoder):
    """Block-diagonal attention: an image's outputs do not change when another image is packed beside it."""
    first = noise_image(256, 256, 0)
    alone = onnx_stage_outputs(tiny_onnx, preprocess([first], min_pixels=1024, max_pixels=64 * 256))
    packed = onnx_stage_outputs(tiny_onnx, preprocess([first, noise_image(512, 128, 1)], min_pixels=1024,
                                                       max_pixels=64 * 256))
    tokens = alone["merger"].shape[0]
    assert torch.allclose(alone["merger"], packed["merger"][:tokens], atol=1e-5)
    assert torch.allclose(alone["deepstack.1"], packed["deepstack.1"][:tokens], atol=1e-5)


def test_file_is_described_by_its_metadata(tiny_onnx):
    model = onnx.load(str(tiny_onnx), load_external_data=False)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*model.graph.input, *model.graph.output]}
    assert dims["pixel_values"] == ["patches", 1536] and dims["merger"] == ["tokens", 96]
    assert dims["blocks.3"] == ["patches", 64]
    report = check_onnx(tiny_onnx)
    assert report.exit_code == 0 and report.missing == [] and report.patch_axis_dynamic
    assert report.deepstack == ["deepstack.0", "deepstack.1"] and report.pooled == "merger"
    assert onnx_output_names(tiny_onnx)[-1] == "merger"


@pytest.fixture(scope="module")
def faulty_onnx(tmp_path_factory):
    """Seed 002: the export wrapper keeps only the pooled output, so DeepStack never reaches the file."""
    path = tmp_path_factory.mktemp("faulty") / "no_deepstack.onnx"
    keep = graph.output_names
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(graph, "output_names",
                      lambda config, intermediates: [n for n in keep(config, intermediates) if not n.startswith("deepstack")])
        # optimize=False: only the outputs' presence matters here, and it halves the export time
        export_onnx(VisionEncoder.from_pretrained("demo"), path, intermediates=False, optimize=False)
    return path


def test_check_flags_missing_deepstack(faulty_onnx, capsys):
    assert onnx_output_names(faulty_onnx) == ["merger"]
    report = check_onnx(faulty_onnx)
    assert report.missing == ["deepstack.0–2"] and report.exit_code == 4
    assert report.verdict == "deepstack.0–2 missing"
    assert main(["export", "--check", str(faulty_onnx)]) == 4
    assert "deepstack.0–2 missing" in capsys.readouterr().out


def test_check_without_our_metadata_identifies_the_tower_by_its_weights(faulty_onnx, tmp_path):
    """A foreign file (no metadata): depth 6 × width 128 is the demo tower, which has 3 DeepStack taps."""
    model = onnx.load(str(faulty_onnx))
    del model.metadata_props[:]
    model.graph.output[0].name = "pooled_embeds"  # as seed 002's export called it
    model.graph.node[-1].output[0] = "pooled_embeds"
    foreign = tmp_path / "foreign.onnx"
    onnx.save(model, str(foreign))
    report = check_onnx(foreign)
    assert not report.has_metadata and report.pooled == "pooled_embeds"
    assert report.expected_deepstack == 3 and "demo" in report.expected_from
    assert report.missing == ["deepstack.0–2"] and report.exit_code == 4
    with pytest.raises(InputError, match="no qwen3vl_inspect metadata"):
        onnx_stage_outputs(foreign, preprocess([noise_image(64, 64, 0)], min_pixels=1024))


def test_check_of_an_unrelated_model_says_it_cannot_tell(tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    model = helper.make_model(helper.make_graph([node], "relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])]))
    onnx.save(model, str(tmp_path / "relu.onnx"))
    report = check_onnx(tmp_path / "relu.onnx")
    assert report.exit_code == 1 and report.expected_deepstack is None and "cannot tell" in report.verdict


def test_bad_paths_are_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "notes.onnx").write_text("not a model")
    assert main(["export", "--check", str(tmp_path / "notes.onnx")]) == 2
    assert main(["export", "--check", str(tmp_path / "missing.onnx")]) == 2
    assert main(["export", str(tmp_path / "no_such_folder" / "x.onnx"), "--model", "tiny"]) == 2
    assert main(["export", str(tmp_path), "--model", "tiny"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines)
    assert "notes.onnx: not an ONNX model" in lines[0] and "no such file" in lines[1]
    assert "does not exist" in lines[2] and "is a folder" in lines[3]


def test_runner_refuses_patches_of_another_size(tiny_onnx):
    inputs = preprocess([noise_image(64, 64, 0)], min_pixels=1024)
    inputs.pixel_values = inputs.pixel_values[:, :100]
    with pytest.raises(InputError, match="expects 1536"):
        onnx_stage_outputs(tiny_onnx, inputs)
    shutil.copy(tiny_onnx, tiny_onnx.with_name("copy.onnx"))  # the session cache is keyed by path, not shared
    assert onnx_output_names(tiny_onnx.with_name("copy.onnx")) == onnx_output_names(tiny_onnx)
