"""`compare` with transformers' Qwen3VLVisionModel as either side: equal on the same weights, and faults
in a modified copy of *their* module (same submodule names) named exactly."""

import copy

import pytest
import torch
from PIL import Image

transformers = pytest.importorskip("transformers")

from qwen3vl_inspect import VisionEncoder, compare, preprocess  # noqa: E402
from qwen3vl_inspect.cli import main  # noqa: E402
from qwen3vl_inspect.comparison.result import DIVERGED, INHERITED, INTRODUCED, MISSING_B  # noqa: E402
from qwen3vl_inspect.comparison.transformers_twin import transformers_twin  # noqa: E402


@pytest.fixture(scope="module")
def inputs():
    images = [Image.new("RGB", (160, 96), (200, 40, 90)), Image.new("RGB", (64, 128), (20, 140, 230))]
    return preprocess(images, min_pixels=64 * 64, max_pixels=160 * 160)  # two packed images


@pytest.fixture(scope="module")
def ours():
    return VisionEncoder.from_pretrained("tiny")


@pytest.fixture(scope="module")
def theirs(ours):
    return transformers_twin(ours)


def test_ours_vs_transformers_within(ours, theirs, inputs):
    result = compare(ours, theirs, inputs)
    assert result.ok, result.verdict
    assert {r.status for r in result} <= {"equal", "within"}
    assert result["position_ids"].status == "equal" and result["cu_seqlens"].status == "equal"
    assert result["merger"].max_abs <= 1e-5
    assert len(result.stages) == 2 + 3 + 4 * 6 + 2 + 1  # ints, early stages, 4 blocks × 6 rows, 2 taps, merger


def test_transformers_as_reference(ours, theirs, inputs):
    assert compare(theirs, ours, inputs).ok


def test_modified_transformers_copy_is_named(theirs, inputs):
    modified = copy.deepcopy(theirs)
    with torch.no_grad():
        modified.blocks[1].attn.proj.weight.mul_(1.2)
    result = compare(theirs, modified, inputs)
    assert result.first_divergence.name == "blocks.1.attn"
    assert result.first_divergence.origin == INTRODUCED
    assert result["blocks.2.attn"].origin == INHERITED


def test_transformers_copy_without_deepstack(theirs, inputs):
    modified = copy.deepcopy(theirs)
    modified.deepstack_visual_indexes = []  # the loop never calls the DeepStack mergers
    result = compare(theirs, modified, inputs)
    assert [(r.name, r.status) for r in result.diverged] == [("deepstack.0", MISSING_B), ("deepstack.1", MISSING_B)]
    assert "deepstack.0–1 missing in b: the language model would get no DeepStack features" in result.findings()


def test_wrong_rotary_in_ours_against_transformers(ours, theirs, inputs):
    """Across implementations the replay feeds a's rotary tables to b's attention, so blocks inherit."""
    import dataclasses

    wrong = VisionEncoder(dataclasses.replace(ours.config, rope_theta=100.0))
    wrong.load_state_dict(ours.state_dict())
    result = compare(theirs, wrong.eval(), inputs)
    assert result.first_divergence.name == "rotary"
    assert result["blocks.0.attn"].status == DIVERGED and result["blocks.0.attn"].origin == INHERITED


def test_cli_against_transformers_exits_0(capsys):
    assert main(["compare", "--model", "tiny", "--against", "transformers", "--min-pixels", "4096",
                 "--max-pixels", "65536"]) == 0
    assert "Qwen3VLVisionModel" in capsys.readouterr().out
