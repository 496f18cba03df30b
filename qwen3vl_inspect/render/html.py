"""HTML for Jupyter: a Trace as a table of its stages, a Stage as a card with its teaching text.

These are the `_repr_html_` of `Trace` and `Stage`, which JupyterLab, Notebook 7 and VS Code
notebooks all call. Nothing here imports ipywidgets. NaN/Inf is red and spelled out (`NaN×3`), so it reads without colour too.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from qwen3vl_inspect.formatting import fmt_float, fmt_shape, nonfinite_parts
from qwen3vl_inspect.probe.tensors import TensorStats

if TYPE_CHECKING:
    from qwen3vl_inspect.stage import Stage
    from qwen3vl_inspect.stats_rows import StatsRow
    from qwen3vl_inspect.tracing import Trace

RED = "color:#d00;font-weight:bold"
CELL = "padding:1px 8px;text-align:right;font-family:monospace;white-space:nowrap"
LEFT = "padding:1px 8px;text-align:left;font-family:monospace"


def _e(value: object) -> str:
    return html.escape(str(value))


def _nowrap(text: str) -> str:
    return f'<span style="white-space:nowrap">{text}</span>'


def nonfinite_html(nan: int, posinf: int = 0, neginf: int = 0) -> str:
    parts = nonfinite_parts(nan, posinf, neginf)
    if not parts:
        return '<span style="color:#080">0</span>'
    return f'<span class="qwen3vl-nonfinite" style="{RED}">{" ".join(parts)}</span>'


def _stats_cells(stats: TensorStats | None) -> list[str]:
    if stats is None:
        return ["—"] * 5
    return [fmt_float(stats.min), fmt_float(stats.max), fmt_float(stats.mean), fmt_float(stats.std),
            nonfinite_html(stats.nan_count, stats.posinf_count, stats.neginf_count)]


def _row(cells: Iterable[str], left: int = 2, style: str = "") -> str:
    tds = "".join(f'<td style="{LEFT if i < left else CELL}">{c}</td>' for i, c in enumerate(cells))
    return f'<tr style="{style}">{tds}</tr>'


def _header(names: Iterable[str]) -> str:
    return "<tr>" + "".join(f'<th style="{LEFT}">{_e(n)}</th>' for n in names) + "</tr>"


def trace_html(tr: Trace) -> str:
    """The run so far: one row per computed top-level stage (sub-stages: `tr['blocks.3.attn']`)."""
    computed, total = len(tr.stages), len(tr.stage_names)
    head = (f"<b>Trace</b> · {_e(tr.config.source)} · {_e(tr.encoder.weights_source)} · "
            f"grid_thw {_e(tr.grid_thw.tolist())} · {computed} of {total} stages computed")
    rows = [_header(("stage", "title", "input → output", "dtype", "min", "max", "mean", "std", "NaN/Inf", "ms"))]
    for stage in tr.stages:
        stats = stage.stats
        shapes = " ".join(fmt_shape(s) for s in stage.input_shapes) + " → " + fmt_shape(stage.output_shape)
        bad = stats is not None and not stats.is_finite
        rows.append(_row([_nowrap(_e(stage.name)), _e(stage.title), _nowrap(_e(shapes)), _e(stage.dtype), *_stats_cells(stats),
                          f"{stage.seconds * 1000:.0f}"], left=3, style="background:#fee" if bad else ""))
    pending = tr.stage_names[computed:]
    notes = []
    if pending:
        shown = ", ".join(pending[:4]) + (", …" if len(pending) > 4 else "")
        notes.append(f"not computed yet: {_e(shown)} (<code>tr.step()</code>, <code>tr.run()</code>)")
    if tr.failure is not None:
        notes.append(f'<span style="{RED}">{_e(tr.failure)}</span>')
    bad = tr.first_nonfinite()
    if bad is not None:
        notes.append(f'<span style="{RED}">first NaN/Inf: {_e(bad.name)} ({_e(bad.module or bad.name)})</span>'
                     " · <code>tr.locate_nonfinite()</code> names the module")
    foot = "".join(f"<div>{n}</div>" for n in notes)
    return (f'<div class="qwen3vl-trace"><div>{head}</div><table style="border-collapse:collapse">{"".join(rows)}'
            f"</table>{foot}</div>")


def stats_html(stats: TensorStats | None) -> str:
    if stats is None:
        return "<i>no tensor kept for this stage</i>"
    cells = [("shape", fmt_shape(stats.shape)), ("dtype", stats.dtype), ("min", fmt_float(stats.min)),
             ("max", fmt_float(stats.max)), ("mean", fmt_float(stats.mean)), ("std", fmt_float(stats.std)),
             ("zeros", "—" if stats.zero_fraction is None else f"{stats.zero_fraction:.2%}")]
    body = "".join(f'<tr><th style="{LEFT}">{_e(k)}</th><td style="{CELL}">{_e(v)}</td></tr>' for k, v in cells)
    body += (f'<tr><th style="{LEFT}">NaN / Inf</th><td style="{CELL}">'
             f"{nonfinite_html(stats.nan_count, stats.posinf_count, stats.neginf_count)}</td></tr>")
    return f'<table style="border-collapse:collapse">{body}</table>'


def stage_html(stage: Stage) -> str:
    """One stage: title, where it is computed, shapes, stats (NaN/Inf in red) and what it does."""
    shapes = " ".join(fmt_shape(s) for s in stage.input_shapes) + " → " + fmt_shape(stage.output_shape)
    where = f" · module <code>{_e(stage.module)}</code>" if stage.module else ""
    stats = stage.stats
    flag = ""
    if stats is not None and not stats.is_finite:
        counts = nonfinite_html(stats.nan_count, stats.posinf_count, stats.neginf_count)
        flag = f'<div style="{RED}">this stage holds NaN/Inf: {counts}</div>'
    return (f'<div class="qwen3vl-stage"><div><b>{_e(stage.title)}</b> <code>{_e(stage.name)}</code>{where}</div>'
            f'<div style="font-family:monospace">{_e(shapes)} · {_e(stage.dtype)}</div>{flag}'
            f"{stats_html(stats)}<p style=\"max-width:60em\">{_e(stage.explanation)}</p></div>")


def stats_rows_html(rows: list[StatsRow], tr: Trace | None = None) -> str:
    """The StatsTable: every row's numbers, NaN/Inf rows tinted and their counts in red."""
    table = [_header(("stage", "title", "shape", "dtype", "min", "max", "mean", "std", "NaN", "Inf", "zeros"))]
    for r in rows:
        name = ("&nbsp;&nbsp;" if r.substage else "") + _e(r.name)
        table.append(_row([
            _nowrap(name), _e(r.title), _nowrap(_e(fmt_shape(r.shape))), _e(r.dtype), fmt_float(r.min), fmt_float(r.max),
            fmt_float(r.mean), fmt_float(r.std),
            nonfinite_html(r.nan) if r.nan else "0", nonfinite_html(0, r.inf) if r.inf else "0",
            "—" if r.zero_fraction is None else f"{r.zero_fraction:.1%}",
        ], left=4, style="background:#fee" if r.nonfinite else ""))
    foot = ""
    if tr is not None and not tr.done:
        foot = f"<div>{len(tr.stages)} of {len(tr.stage_names)} stages computed</div>"
    if not rows:
        foot += "<div><i>no rows</i></div>"
    return f'<div class="qwen3vl-stats"><table style="border-collapse:collapse">{"".join(table)}</table>{foot}</div>'
