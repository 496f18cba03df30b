"""Refusals of the command line: one line on stderr, exit code 2, no traceback, nothing computed lost.

Devices this machine cannot compute on, output paths that would fail or overwrite the input, running
out of memory anywhere (simulated by making a step raise the exact exceptions torch raises), and
attention maps too large to hold, refused before the model is even built.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from qwen3vl_inspect.cli import main
from qwen3vl_inspect.model.encoder import VisionEncoder
from qwen3vl_inspect.tracing import Trace

CPU_OOM = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
           "you tried to allocate 98304 bytes.")
COMMANDS = [
    ["trace"], ["stats"], ["info"], ["fusion"], ["tui"], ["attention", "--layer", "0", "-o", "out.png"],
]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_model(monkeypatch):
    """Any attempt to build the model fails the test: proves a refusal came before the slow part."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was built before the refusal")

    monkeypatch.setattr(VisionEncoder, "from_pretrained", classmethod(refuse))


# ---- devices --------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("device, message", [
    ("cuda", "--device cuda: this torch build is CPU-only" if torch.version.cuda is None else "no CUDA GPU"),
    ("cuda:1", "--device cuda:1:"),
    ("mps", "no Apple Metal (MPS) support"),
    ("meta", "--device meta holds shapes but no data"),
    ("bogus", "--device 'bogus' is not a torch device; use cpu"),
])
def test_devices_that_cannot_compute_here_are_one_line(command, device, message, capsys, tmp_path, monkeypatch,
                                                       no_model):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--model", "tiny", "--device", device]) == 2
    line = one_error_line(capsys)
    assert message in line and line.endswith("use cpu")
    assert not (tmp_path / "out.png").exists()


def test_cpu_device_with_index_still_works(capsys):
    assert main(["info", "--model", "tiny", "--device", "cpu:0"]) == 0


# ---- output paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case, message", [
    ("missing folder", "folder does not exist"),
    ("a folder", "is a folder; give a file name such as"),
    ("300 characters", "the file name is 304 bytes long, over this file system's limit of 255"),
    ("the input image", "is the input image: writing would overwrite it"),
    ("parent is a file", "is a file, not a folder"),
    ("read-only place", "cannot create a file in /proc"),
    ("not png", "the output must be a .png file"),
])
def test_output_path_refused_before_the_run(case, message, tmp_path, capsys, no_model, monkeypatch):
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(image)
    before = image.read_bytes()
    output = {"missing folder": tmp_path / "nope" / "x.png", "a folder": tmp_path,
              "300 characters": tmp_path / ("a" * 300 + ".png"), "the input image": image,
              "parent is a file": image / "x.png", "read-only place": "/proc/x.png",
              "not png": tmp_path / "x.jpg"}[case]
    monkeypatch.setattr(Trace, "step", lambda self: pytest.fail("a stage ran before the refusal"))
    assert main(["attention", str(image), "--model", "tiny", "--layer", "0", "-o", str(output)]) == 2
    assert message in one_error_line(capsys)
    assert image.read_bytes() == before


def test_input_image_reached_by_another_spelling_is_refused(tmp_path, capsys, no_model, monkeypatch):
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 64)).save(image)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["attention", str(image), "--model", "tiny", "--layer", "0", "-o", "../photo.png"]) == 2
    assert "is the input image" in one_error_line(capsys)


def test_export_output_checked_before_the_model(tmp_path, capsys, no_model):
    assert main(["export", str(tmp_path / ("b" * 300 + ".onnx")), "--model", "tiny"]) == 2
    assert "over this file system's limit" in one_error_line(capsys)


def test_write_failure_after_the_run_is_one_line(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    assert main(["attention", "--model", "tiny", "--layer", "1", "-o", str(tmp_path / "map.png")]) == 2
    line = one_error_line(capsys)
    assert "could not write" in line and "No space left on device" in line and "map.png" in line


# ---- out of memory --------------------------------------------------------------------------------------


def test_out_of_memory_at_load(capsys, monkeypatch):
    def allocator_fails(*args, **kwargs):
        raise RuntimeError(CPU_OOM)

    monkeypatch.setattr(VisionEncoder, "from_pretrained", classmethod(allocator_fails))
    assert main(["trace", "--model", "tiny"]) == 2
    line = one_error_line(capsys)
    assert "out of memory while loading the model tiny" in line and "--dtype bfloat16" in line


def test_out_of_memory_in_a_stage_keeps_the_rows_before(capsys, monkeypatch):
    real = VisionEncoder.run_block

    def block_2_runs_out(self, index, *args):
        if index == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, index, *args)

    monkeypatch.setattr(VisionEncoder, "run_block", block_2_runs_out)
    assert main(["trace", "--model", "tiny"]) == 2
    captured = capsys.readouterr()
    assert "blocks.1" in captured.out and "[432, 64]" in captured.out  # computed before: still printed
    assert "out of GPU memory while computing stage blocks.2" in captured.out
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and "out of GPU memory while computing stage blocks.2" in err[0]
    assert "blocks.2 (the 8 stages before it are kept); use a smaller image (--max-pixels" in err[0]


def test_out_of_memory_drawing_the_stats_table_still_prints_the_numbers(capsys, monkeypatch):
    from qwen3vl_inspect.commands import stats

    def no_memory(*args):
        raise MemoryError()

    monkeypatch.setattr(stats, "_table", no_memory)
    assert main(["stats", "--model", "tiny"]) == 2
    captured = capsys.readouterr()
    assert "merger 108×96 min" in captured.out and "blocks.0.attn" in captured.out
    assert "Traceback" not in captured.err
    assert captured.err.strip() == "error: out of memory while drawing the stats table; use a smaller image " \
                                   "(--max-pixels 262144) or --dtype bfloat16"


def test_out_of_memory_in_block_step_stats_prints_the_table(capsys, monkeypatch):
    def no_memory(self, layer):
        raise RuntimeError(CPU_OOM)

    monkeypatch.setattr(Trace, "compute_step_stats", no_memory)
    assert main(["stats", "--model", "tiny"]) == 2
    captured = capsys.readouterr()
    assert "merger" in captured.out and "patch_embed" in captured.out
    assert "out of memory while computing the stats of block 0's steps" in captured.err


def test_out_of_memory_in_attention_advises_one_head(tmp_path, capsys, monkeypatch):
    from qwen3vl_inspect import attention_maps

    def no_memory(*args, **kwargs):
        raise RuntimeError(CPU_OOM)

    monkeypatch.setattr(attention_maps, "layer_probabilities", no_memory)
    assert main(["attention", "--model", "tiny", "--layer", "1", "-o", str(tmp_path / "a.png")]) == 2
    line = one_error_line(capsys)
    assert "out of memory while computing the attention map of block 1; ask for one head (--head 0)" in line
    assert not (tmp_path / "a.png").exists()


def test_out_of_memory_anywhere_else_names_the_command(capsys, monkeypatch):
    from qwen3vl_inspect.probe import ModelArchitectureInspector

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(ModelArchitectureInspector, "count_parameters", staticmethod(no_memory))
    assert main(["info", "--model", "tiny"]) == 2
    assert "out of memory while running `info`" in one_error_line(capsys)


# ---- attention too large: priced before anything runs ---------------------------------------------------


@pytest.fixture(scope="module")
def big_image(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.new("RGB", (4000, 4000), (120, 30, 200)).save(path)
    return path


@pytest.mark.parametrize("extra, expected", [
    ([], "the mean of heads over 62500 patches needs 43.7 GiB at its peak, over the 4.0 GiB attention budget; "
         "re-run with --max-pixels 4842496 or less"),
    (["--head", "0"], "one head's map over 62500 patches needs 29.1 GiB at its peak, over the 4.0 GiB attention "
                      "budget; re-run with --max-pixels 5931008 or less"),
    (["--rollout"], "attention rollout over 62500 patches needs 72.8 GiB at its peak, over the 4.0 GiB attention "
                    "budget; re-run with --max-pixels 3750912 or less"),
])
def test_big_attention_refused_before_the_model_is_built(big_image, extra, expected, tmp_path, capsys, no_model,
                                                         monkeypatch):
    from qwen3vl_inspect import session

    monkeypatch.setattr(Trace, "step", lambda self: pytest.fail("a stage ran before the refusal"))
    monkeypatch.setattr(session, "load_inputs", lambda *a: pytest.fail("pixels decoded before the refusal"))
    assert main(["attention", str(big_image), "--layer", "0", *extra, "-o", str(tmp_path / "a.png")]) == 2
    line = one_error_line(capsys)
    assert line == f"error: {expected}"
    assert "one head" not in line.split(";")[1]  # one head doesn't fit either: no advice to ask for it


def test_mean_over_budget_advises_one_head_when_one_head_fits(tmp_path, capsys, monkeypatch):
    from qwen3vl_inspect import tracing

    one_map = 432 * 432 * 4  # the demo image: 18×24 patches
    monkeypatch.setattr(tracing, "DEFAULT_BUDGET", int(2.5 * one_map))  # one head (2 maps) fits, a mean (3) doesn't
    assert main(["attention", "--model", "tiny", "--layer", "0", "-o", str(tmp_path / "a.png")]) == 2
    line = one_error_line(capsys)
    assert "the mean of heads over 432 patches needs 2 MiB" in line and "ask for one head (--head H, 1 MiB)" in line
    assert main(["attention", "--model", "tiny", "--layer", "0", "--head", "1", "-o", str(tmp_path / "a.png")]) == 0
