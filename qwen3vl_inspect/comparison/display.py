"""A Comparison as a rich table (terminal) and as HTML (Jupyter): the same columns in both.

Status words are spelled out (not only coloured), so the table reads without colour too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.comparison.result import DIVERGED, EQUAL, MISSING_A, MISSING_B, SHAPE_MISMATCH, WITHIN
from qwen3vl_inspect.formatting import fmt_float, fmt_shape, html_table, nonfinite_parts

if TYPE_CHECKING:
    from qwen3vl_inspect.comparison.result import Comparison, StageComparison

STYLES = {EQUAL: "green", WITHIN: "green", DIVERGED: "bold red", MISSING_A: "bold magenta", MISSING_B: "bold magenta",
          SHAPE_MISMATCH: "bold red"}
HEADER = ("stage", "status", "shape a → b", "max abs err", "tolerance", "worst (t,h,w)",
          "rel err", "cos min/mean", "SQNR dB", "NaN/Inf a·b")


def row_cells(row: StageComparison) -> list[str]:
    """The cells of one stage, as plain text (shared by the rich table, HTML and the TUI)."""
    shape = fmt_shape(row.shape_a) if row.shape_a == row.shape_b else f"{fmt_shape(row.shape_a)} → {fmt_shape(row.shape_b)}"
    d = row.diff
    where = ""
    if row.location is not None and d is not None and d.max_abs > 0:
        box = row.location
        grid = "2×2 " if row.merged else ""
        image = f"img {box.image} " if box.image else ""
        where = f"{image}{grid}({box.frame},{box.row},{box.col}) px {box.left},{box.top}"  # box's top-left pixel
    status = row.status + (f", {row.origin}" if row.origin else "")
    if row.integer:
        numbers = ["exact" if row.status == EQUAL else "differs", "0", "", "", "", "", ""]
    elif d is None:
        numbers = ["—"] * 7
    else:
        bad = " ".join(nonfinite_parts(d.nonfinite_a.nan, d.nonfinite_a.inf)) or "0"
        bad_b = " ".join(nonfinite_parts(d.nonfinite_b.nan, d.nonfinite_b.inf)) or "0"
        numbers = [fmt_float(d.max_abs, 3), fmt_float(row.tolerance, 2), where, fmt_float(d.rel_error, 3),
                   f"{d.cos_min:.5f}/{d.cos_mean:.5f}", fmt_float(d.sqnr_db, 3), f"{bad}·{bad_b}"]
    return [row.name, status, shape, *numbers]


def comparison_table(result: Comparison) -> Table:
    table = Table(title=f"a = {result.a_label}   b = {result.b_label}   grid {result.grid_thw.tolist()}",
                  title_justify="left", caption=f"tolerance: {result.tolerance_note}", caption_justify="left")
    for column in HEADER:
        table.add_column(column, justify="right" if column in ("max abs err", "tolerance", "rel err", "SQNR dB") else "left",
                         min_width=20 if column == "status" else None,
                         no_wrap=column in ("stage", "shape a → b", "worst (t,h,w)"))
    first = result.first_divergence
    for row in result.stages:
        cells = row_cells(row)
        style = STYLES.get(row.status, "")
        table.add_row(*[Text(c, style=style if i == 1 else "", no_wrap=i == 1) for i, c in enumerate(cells)],
                      style="on grey15" if row is first else None)
    return table


def verdict_text(result: Comparison) -> Text:
    return Text(result.verdict, style="bold green" if result.ok else "bold red")


def comparison_renderable(result: Comparison) -> Group:
    findings = [Text(f"• {line}") for line in result.findings()]
    return Group(comparison_table(result), *findings, verdict_text(result))


def comparison_html(result: Comparison) -> str:
    rows = [row_cells(row) for row in result.stages]
    caption = (f"a = {result.a_label} · b = {result.b_label} · grid {result.grid_thw.tolist()} · "
               f"tolerance: {result.tolerance_note}")
    table = html_table(rows, HEADER, caption)
    import html

    colour = "#080" if result.ok else "#d00"
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in result.findings())
    return (f'<div class="qwen3vl-compare">{table}<ul>{notes}</ul>'
            f'<div style="color:{colour};font-weight:bold">{html.escape(result.verdict)}</div></div>')
