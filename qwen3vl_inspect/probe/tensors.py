"""Summary statistics of one tensor, as a frozen dataclass that renders itself.

Stats are computed on the tensor's own device and only a handful of scalars come back (one
stacked `.tolist()`): inspecting a 2304×1152 activation on a GPU must not copy it to the host.
Non-finite values are counted, never averaged in: one NaN would otherwise hide every other
number, and "how many, and is the rest sane?" is exactly what a NaN hunt needs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.formatting import fmt_float, fmt_shape, html_table, nonfinite_parts
from qwen3vl_inspect.probe.walk import iter_tensors

PERCENTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
HISTOGRAM_BINS = 20
_SPARKS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Histogram:
    """`numpy.histogram` of the finite values: `counts[i]` falls in `[edges[i], edges[i+1])`, last bin closed."""

    counts: tuple[int, ...]
    edges: tuple[float, ...]

    def sparkline(self) -> str:
        top = max(self.counts) or 1
        return "".join(_SPARKS[0 if c == 0 else max(1, round(c / top * 8))] for c in self.counts)


@dataclass(frozen=True)
class TensorStats:
    """What a tensor holds, in numbers. min/max/mean/std cover the finite values only (None when
    there are none); NaN and ±Inf are counted separately. std is torch's (unbiased)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    device: str
    numel: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    has_nan: bool = False
    has_inf: bool = False
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0
    finite_count: int = 0
    zero_fraction: float | None = None
    percentiles: dict[int, float] | None = None  # detailed=True only
    histogram: Histogram | None = None  # detailed=True only

    @property
    def nonfinite_count(self) -> int:
        return self.nan_count + self.posinf_count + self.neginf_count

    @property
    def is_finite(self) -> bool:
        return self.nonfinite_count == 0

    # Seed scripts treat the result as a dict: `stats.get('has_nan')`, `stats['max']`.
    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self._field_names() else default

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._field_names()

    def keys(self) -> list[str]:
        return list(self._field_names())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    # ---- display ------------------------------------------------------------------------------

    def _nonfinite_text(self) -> Text:
        text = Text()
        for part in nonfinite_parts(self.nan_count, self.posinf_count, self.neginf_count):
            text.append(f" {part}", style="bold red")
        return text

    def one_line(self) -> Text:
        """`name [432, 1024] float32 cpu  min … max … μ … σ …  NaN×3`: fits a log line."""
        text = Text(self.name, style="bold cyan")
        text.append(f" {fmt_shape(self.shape)} {self.dtype} {self.device}", style="dim")
        if self.numel == 0:
            return text.append("  empty", style="yellow")
        text.append(
            f"  min {fmt_float(self.min)}  max {fmt_float(self.max)}"
            f"  μ {fmt_float(self.mean)}  σ {fmt_float(self.std)}"
        )
        return text.append_text(self._nonfinite_text())

    def __rich__(self) -> RenderableType:
        if self.percentiles is None and self.histogram is None:
            return self.one_line()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim")
        table.add_column()
        if self.percentiles is not None:
            table.add_row("percentiles", "  ".join(f"p{q} {fmt_float(v)}" for q, v in self.percentiles.items()))
        if self.zero_fraction is not None:
            table.add_row("zeros", f"{self.zero_fraction:.2%}")
        if self.histogram is not None:
            edges = self.histogram.edges
            table.add_row("histogram", f"{fmt_float(edges[0])} {self.histogram.sparkline()} {fmt_float(edges[-1])}")
        return Group(self.one_line(), table)

    def _repr_html_(self) -> str:
        rows: list[tuple[object, object]] = [
            ("shape", fmt_shape(self.shape)), ("dtype", self.dtype), ("device", self.device),
            ("min", fmt_float(self.min)), ("max", fmt_float(self.max)),
            ("mean", fmt_float(self.mean)), ("std", fmt_float(self.std)),
            ("NaN / +Inf / -Inf", f"{self.nan_count} / {self.posinf_count} / {self.neginf_count}"),
        ]
        if self.percentiles:
            rows += [(f"p{q}", fmt_float(v)) for q, v in self.percentiles.items()]
        if self.zero_fraction is not None:
            rows.append(("zero fraction", f"{self.zero_fraction:.4f}"))
        if self.histogram is not None:
            rows.append(("histogram", self.histogram.sparkline()))
        return html_table(rows, caption=self.name)


def _stat_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def tensor_stats(name: str, tensor: torch.Tensor | np.ndarray, detailed: bool = False) -> TensorStats:
    """Compute `TensorStats` with one device→host transfer of a few dozen scalars."""
    t = torch.as_tensor(tensor).detach()
    base: dict[str, Any] = dict(
        name=name, shape=tuple(t.shape), dtype=str(t.dtype).removeprefix("torch."), device=str(t.device), numel=t.numel()
    )
    if t.numel() == 0:
        return TensorStats(**base)
    acc = _stat_dtype(t.device)
    is_float = t.is_floating_point() or t.is_complex()
    if t.is_complex():
        x = t.abs()  # magnitudes: the only ordering a complex tensor has
    elif t.is_floating_point():
        x = t if t.dtype == torch.float64 else t.float()  # bf16/fp16 upcast: their sums overflow
    else:
        x = t.to(acc)  # ints and bools: exact in float64 up to 2**53
    x = x.reshape(-1)
    if is_float and not detailed:
        fast = _finite_fast_path(base, x, acc)
        if fast is not None:
            return fast
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    if is_float:
        nan, posinf, neginf = torch.isnan(x), torch.isposinf(x), torch.isneginf(x)
        finite = ~(nan | posinf | neginf)
        n_finite = finite.sum()
        counts = [nan.sum(), posinf.sum(), neginf.sum(), n_finite]
        mean = torch.where(finite, x, zero).sum() / n_finite.clamp(min=1)
        var = torch.where(finite, x - mean, zero).square().sum() / (n_finite - 1).clamp(min=1)
        lo = torch.where(finite, x, torch.full_like(zero, float("inf"))).min()
        hi = torch.where(finite, x, torch.full_like(zero, float("-inf"))).max()
    else:
        finite = None
        n = torch.tensor(x.numel(), device=x.device)
        counts = [n * 0, n * 0, n * 0, n]
        mean = x.mean()
        var = x.var() if x.numel() > 1 else zero
        lo, hi = x.min(), x.max()
    scalars = [*counts, lo, hi, mean, var.sqrt(), (x == 0).sum()]
    values = x[finite] if finite is not None else x
    if detailed:
        scalars += _distribution(values, acc)
    numbers = torch.stack([s.to(acc) for s in scalars]).tolist()  # the one device→host sync

    nan_count, posinf_count, neginf_count, n_fin = (int(v) for v in numbers[:4])
    lo_v, hi_v, mean_v, std_v, zeros = numbers[4:9]
    stats = dict(
        base,
        nan_count=nan_count, posinf_count=posinf_count, neginf_count=neginf_count, finite_count=n_fin,
        has_nan=nan_count > 0, has_inf=(posinf_count + neginf_count) > 0,
        min=lo_v if n_fin else None, max=hi_v if n_fin else None, mean=mean_v if n_fin else None,
        std=std_v if n_fin > 1 else None, zero_fraction=zeros / t.numel(),
    )
    if detailed and n_fin:
        rest = numbers[9:]
        k = len(PERCENTILES)
        stats["percentiles"] = dict(zip(PERCENTILES, rest[:k]))
        edges = tuple(rest[k : k + HISTOGRAM_BINS + 1])
        stats["histogram"] = Histogram(tuple(int(c) for c in rest[k + HISTOGRAM_BINS + 1 :]), edges)
    return TensorStats(**stats)


def _finite_fast_path(base: dict[str, Any], x: torch.Tensor, acc: torch.dtype) -> TensorStats | None:
    """Stats in three cheap passes when every value is finite (the common case), else None.

    A finite min, max and mean prove there is no NaN/Inf (any would make one of them non-finite),
    so the masked passes of the general path are only paid for tensors that need them.
    """
    lo, hi = torch.aminmax(x)
    std, mean = torch.std_mean(x) if x.numel() > 1 else (torch.zeros((), dtype=x.dtype, device=x.device), x.mean())
    nonzero = torch.count_nonzero(x)
    lo_v, hi_v, mean_v, std_v, nonzero_v = torch.stack([v.to(acc) for v in (lo, hi, mean, std, nonzero)]).tolist()
    if not all(math.isfinite(v) for v in (lo_v, hi_v, mean_v, std_v)):
        return None
    n = x.numel()
    return TensorStats(**base, min=lo_v, max=hi_v, mean=mean_v, std=std_v if n > 1 else None, finite_count=n,
                       zero_fraction=(n - int(nonzero_v)) / n)


def _distribution(values: torch.Tensor, acc: torch.dtype) -> list[torch.Tensor]:
    """Percentiles (numpy's 'linear' method) and a 20-bin numpy-style histogram, on device.

    One sort gives both: percentiles index into it, histogram counts are `searchsorted` of the
    bin edges (O(bins·log n) instead of a pass per bin). Returns 0-d tensors to stack.
    """
    n = values.numel()
    if n == 0:  # all non-finite: placeholders keep the stacked layout; the caller drops them
        return [torch.zeros((), dtype=acc, device=values.device)] * (len(PERCENTILES) + 2 * HISTOGRAM_BINS + 1)
    ordered = values.to(acc).sort().values
    q = torch.tensor(PERCENTILES, dtype=acc, device=values.device) / 100 * (n - 1)
    below = q.floor().long()
    above = (below + 1).clamp(max=n - 1)
    pct = ordered[below] + (ordered[above] - ordered[below]) * (q - below.to(acc))
    first, last = ordered[0], ordered[-1]
    same = first == last  # numpy widens a zero-width range to ±0.5
    first, last = torch.where(same, first - 0.5, first), torch.where(same, last + 0.5, last)
    steps = torch.arange(HISTOGRAM_BINS + 1, dtype=acc, device=values.device)
    edges = steps * ((last - first) / HISTOGRAM_BINS) + first  # numpy.linspace's arithmetic
    edges[-1] = last
    positions = torch.searchsorted(ordered, edges[:-1], right=False)
    positions = torch.cat([positions, torch.tensor([n], device=values.device)])  # last bin includes the max
    bin_counts = positions[1:] - positions[:-1]
    return [*pct.unbind(), *edges.unbind(), *bin_counts.unbind()]


class TensorInspector:
    """Namespace kept for seed scripts: `TensorInspector.inspect(name, tensor, detailed=True)`."""

    @staticmethod
    def inspect(name: str, tensor: torch.Tensor | np.ndarray, detailed: bool = False) -> TensorStats:
        return tensor_stats(name, tensor, detailed=detailed)


def quick_inspect(
    name: str, tensor: torch.Tensor | np.ndarray, detailed: bool = False, console: Console | None = None
) -> TensorStats:
    """Print the stats (rich) and return them, for one-line use in a debugger or script."""
    stats = tensor_stats(name, tensor, detailed=detailed)
    (console or Console()).print(stats)
    return stats


def shape_table(obj: Any, title: str = "Shapes") -> Table:
    """name → shape/dtype/device for every tensor (or array) nested in `obj`."""
    table = Table(title=title, title_justify="left")
    for column in ("name", "shape", "dtype", "device"):
        table.add_column(column, style="cyan" if column == "name" else None)
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        obj = {"tensor": obj}
    for label, tensor in iter_tensors(obj, leaf_types=(torch.Tensor, np.ndarray)):
        device = str(tensor.device) if isinstance(tensor, torch.Tensor) else "numpy"
        table.add_row(label or "tensor", fmt_shape(tensor.shape), str(tensor.dtype).removeprefix("torch."), device)
    return table


def print_shapes(obj: Any, title: str = "Shapes", console: Console | None = None) -> None:
    """Print a table of every tensor's shape in a dict / BatchFeature / dataclass / list (nested OK)."""
    (console or Console()).print(shape_table(obj, title))
