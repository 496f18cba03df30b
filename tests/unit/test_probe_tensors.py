"""TensorStats on hand-made tensors: non-finite counting, odd dtypes, empty, numpy agreement."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from rich.console import Console

from qwen3vl_inspect.probe import TensorInspector, TensorStats, monitor_memory, print_shapes, quick_inspect, tensor_stats


def render(obj: object) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(obj)
    return console.export_text()


def test_nan_and_inf_are_counted_not_averaged():
    t = torch.tensor([1.0, float("nan"), 3.0, float("inf"), -float("inf"), float("nan"), -2.0])
    s = tensor_stats("t", t)
    assert (s.nan_count, s.posinf_count, s.neginf_count, s.finite_count) == (2, 1, 1, 3)
    assert s.has_nan and s.has_inf and not s.is_finite
    finite = torch.tensor([1.0, 3.0, -2.0])
    assert s.min == -2.0 and s.max == 3.0
    assert s.mean == pytest.approx(finite.mean().item())
    assert s.std == pytest.approx(finite.std().item())


def test_all_nonfinite_gives_none_stats():
    s = tensor_stats("bad", torch.full((3, 4), float("nan")), detailed=True)
    assert s.nan_count == 12 and s.finite_count == 0
    assert s.min is None and s.max is None and s.mean is None and s.std is None
    assert s.percentiles is None and s.histogram is None


def test_empty_tensor():
    s = tensor_stats("empty", torch.empty(0, 5), detailed=True)
    assert s.numel == 0 and s.shape == (0, 5)
    assert s.min is None and s.mean is None and not s.has_nan and s.percentiles is None
    assert "empty" in render(s)


def test_integer_tensor():
    t = torch.arange(10)
    s = tensor_stats("ints", t, detailed=True)
    assert s.dtype == "int64" and not s.has_nan
    assert (s.min, s.max, s.mean) == (0.0, 9.0, 4.5)
    assert s.std == pytest.approx(t.double().std().item())
    assert s.zero_fraction == pytest.approx(0.1)
    np.testing.assert_allclose(list(s.percentiles.values()), np.percentile(t.numpy(), [1, 5, 25, 50, 75, 95, 99]))


def test_bool_tensor():
    s = tensor_stats("mask", torch.tensor([True, False, True, True]))
    assert s.dtype == "bool" and (s.min, s.max) == (0.0, 1.0)
    assert s.mean == pytest.approx(0.75) and s.zero_fraction == pytest.approx(0.25)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_upcast(dtype: torch.dtype):
    t = (torch.randn(64, 32, generator=torch.Generator().manual_seed(0)) * 100).to(dtype)
    t[0, 0] = float("nan")
    s = tensor_stats("h", t, detailed=True)
    ref = t.float()[torch.isfinite(t.float())]
    assert s.dtype == str(dtype).removeprefix("torch.") and s.nan_count == 1
    assert s.mean == pytest.approx(ref.mean().item(), rel=1e-5)
    assert s.std == pytest.approx(ref.std().item(), rel=1e-5)
    assert s.max == ref.max().item() and s.min == ref.min().item()


def test_fp16_overflow_counts_as_inf():
    t = torch.tensor([60000.0, 60000.0]).half() * 2  # beyond fp16 max
    s = tensor_stats("o", t)
    assert s.posinf_count == 2 and s.min is None


def test_percentiles_zero_fraction_histogram_match_numpy():
    g = torch.Generator().manual_seed(1)
    t = torch.randn(50, 40, generator=g, dtype=torch.float64)
    t[t.abs() < 0.3] = 0.0
    t[3, 3] = float("nan")
    s = tensor_stats("known", t, detailed=True)
    values = t.numpy().ravel()
    finite = values[np.isfinite(values)]
    np.testing.assert_allclose(list(s.percentiles.values()), np.percentile(finite, [1, 5, 25, 50, 75, 95, 99]), rtol=1e-12)
    assert s.zero_fraction == pytest.approx(np.mean(values == 0))
    counts, edges = np.histogram(finite, bins=20)
    assert list(s.histogram.counts) == counts.tolist()
    np.testing.assert_allclose(s.histogram.edges, edges, rtol=1e-12)
    assert sum(s.histogram.counts) == s.finite_count


def test_constant_tensor_histogram_like_numpy():
    s = tensor_stats("c", torch.full((7,), 2.0), detailed=True)
    counts, edges = np.histogram(np.full(7, 2.0), bins=20)
    assert list(s.histogram.counts) == counts.tolist()
    np.testing.assert_allclose(s.histogram.edges, edges)
    assert s.std == 0.0


def test_single_element_has_no_std():
    s = tensor_stats("one", torch.tensor([5.0]))
    assert s.mean == 5.0 and s.std is None


def test_seed_dict_access_and_inspector():
    stats = TensorInspector.inspect("suspicious", torch.tensor([1.0, float("nan")]), detailed=True)
    assert isinstance(stats, TensorStats)
    assert stats.get("has_nan") is True and stats.get("has_inf") is False
    assert stats["max"] == 1.0 and stats.get("nope", 7) == 7 and "min" in stats
    with pytest.raises(KeyError):
        stats["nope"]
    assert stats.to_dict()["nan_count"] == 1


def test_rendering_shows_nonfinite_counts():
    s = tensor_stats("x", torch.tensor([1.0, float("nan"), float("-inf")]), detailed=True)
    text = render(s)
    assert "NaN×1" in text and "-Inf×1" in text and "p50" in text
    html = s._repr_html_()
    assert html.startswith("<table>") and "NaN / +Inf / -Inf" in html


def test_quick_inspect_prints_and_returns(capsys: pytest.CaptureFixture[str]):
    stats = quick_inspect("my_tensor", torch.ones(2, 3))
    assert stats.shape == (2, 3) and stats.mean == 1.0
    assert "my_tensor" in capsys.readouterr().out


def test_numpy_input_accepted():
    s = tensor_stats("arr", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert s.shape == (2, 3) and s.max == 5.0


@dataclass
class _Batch:
    pixel_values: torch.Tensor
    extra: dict


def test_print_shapes_nested(capsys: pytest.CaptureFixture[str]):
    batch = _Batch(torch.zeros(4, 1536), {"grid": torch.tensor([[1, 2, 2]]), "list": [torch.ones(3), np.zeros((2, 2))]})
    print_shapes({"inputs": batch, "ids": torch.zeros(1, 9, dtype=torch.long)}, title="Input Shapes")
    out = capsys.readouterr().out
    for needle in ("Input Shapes", "inputs.pixel_values", "[4, 1536]", "inputs.extra.grid", "inputs.extra.list[1]", "ids", "int64"):
        assert needle in out


def test_monitor_memory_prints_and_returns(capsys: pytest.CaptureFixture[str]):
    snapshot = monitor_memory("here")
    assert "RSS" in capsys.readouterr().out
    assert snapshot.rss_bytes is None or snapshot.rss_bytes > 0
    assert snapshot.peak_rss_bytes is not None and snapshot.peak_rss_bytes > 0
    quiet = monitor_memory(print_=False)
    assert capsys.readouterr().out == "" and not math.isnan(quiet.peak_rss_bytes or 0)
