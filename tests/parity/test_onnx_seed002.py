"""Seed 002 reproduced with transformers: a vision tower traced with DeepStack skipped exports only the
pooled output, and `export --check` flags the file although it carries none of our metadata."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install -e '.[onnx]')")

from helpers_hf import tiny_hf_vision_model  # noqa: E402

from qwen3vl_inspect.cli import main  # noqa: E402
from qwen3vl_inspect.export.onnx_check import check_onnx  # noqa: E402


class PooledOnly(torch.nn.Module):
    """The seed's export wrapper: `outputs[0]` (pooled) only."""

    def __init__(self, visual: torch.nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        return self.visual(pixel_values, grid_thw).pooler_output


def test_transformers_export_without_deepstack_is_flagged(tmp_path, capsys):
    visual = tiny_hf_vision_model()
    # The seed's modified modeling file skips DeepStack while tracing (torch.jit.is_tracing());
    # with no taps left to run, the traced graph is the same.
    visual.deepstack_visual_indexes = []
    path = tmp_path / "vision_pooled_only.onnx"
    grid = torch.tensor([[1, 8, 8]])
    pixels = torch.randn(64, 1536, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer warnings
        # The TorchScript exporter, as the seed's builder used; torch.export rejects transformers'
        # data-dependent grid loops, which is why our own export takes positions as inputs.
        torch.onnx.export(PooledOnly(visual).eval(), (pixels, grid), str(path), dynamo=False, opset_version=17,
                          input_names=["pixel_values", "grid_thw"], output_names=["pooled_embeds"])
    report = check_onnx(path)
    assert not report.has_metadata and report.pooled == "pooled_embeds"
    assert report.expected_deepstack == 2 and "tiny" in report.expected_from  # depth 4 × width 64, from weight names
    assert report.missing == ["deepstack.0–1"] and report.patch_axis == "64"  # traced for one grid only
    assert main(["export", "--check", str(path)]) == 4
    out = capsys.readouterr().out
    assert "deepstack.0–1 missing" in out and "FIXED" in out
