"""`qwen3vl-inspect stats`: every stage's tensor stats; exit code 3 when NaN/Inf appear, naming the module."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from qwen3vl_inspect.commands.common import describe_run, fail_code, image_path, run_trace
from qwen3vl_inspect.errors import EXIT_BAD_INPUT, EXIT_NONFINITE, OutOfMemory
from qwen3vl_inspect.formatting import fmt_float
from qwen3vl_inspect.memory_errors import guard
from qwen3vl_inspect.tracing import Trace


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    tr = run_trace(args, err)
    short: OutOfMemory | None = None  # memory ran out after the run: what was computed is still printed
    try:
        for stage in tr.stages:
            if stage.substages:
                with guard(f"computing the stats of block {stage.layer}'s steps"):
                    tr.compute_step_stats(stage.layer)  # the table lists every block's steps too
        with guard("locating the first NaN/Inf"):
            found = tr.locate_nonfinite()
    except OutOfMemory as exc:
        short, found = exc, None
    if args.json:
        summary = tr.summary()
        if found is not None:
            summary["first_nonfinite"] = {"stage": found[0].name, "module": found[1],
                                          "detail": None if found[2] is None else found[2].describe()}
        out.print_json(json.dumps(summary), ensure_ascii=True)  # escaped: no user string reaches the terminal raw
    else:
        try:
            with guard("drawing the stats table"):
                out.print(_table(tr, args))
        except OutOfMemory as exc:
            short = short or exc
            for line in _plain_rows(tr):  # the numbers are computed: print them without the table
                out.print(line, markup=False, highlight=False)
    if found is not None:
        stage, module, report = found
        weights = [f"{stage.module}.{p.name}" for p in report.culprit_parameters] if report is not None else []
        detail = f" (non-finite weight: {', '.join(weights)})" if weights else ""
        err.print(f"NaN/Inf first appears at stage {stage.name}, produced by module {module}{detail}",
                  style="bold red", markup=False, soft_wrap=True)
    if short is not None:
        err.print(f"error: {short}", style="bold red", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    if found is not None:
        return EXIT_NONFINITE
    return 0 if tr.failure is None else fail_code(tr)


def _table(tr: Trace, args: argparse.Namespace) -> Table:
    table = Table(title=describe_run(tr, image_path(args)), title_justify="left")
    for column in ("stage", "shape", "min", "max", "mean", "std", "NaN", "Inf"):
        table.add_column(column, justify="left" if column in ("stage", "shape") else "right", no_wrap=True,
                         min_width=3)
    for stage in tr.all_stages():
        st = stage.stats
        if st is None:
            continue
        nan = f"[bold red]{st.nan_count}[/]" if st.nan_count else "0"
        inf_count = st.posinf_count + st.neginf_count
        inf = f"[bold red]{inf_count}[/]" if inf_count else "0"
        top = stage.substages or "." not in stage.name or stage.kind in ("block", "deepstack")
        name = stage.name if top else f"  {stage.name}"
        table.add_row(name, "×".join(map(str, stage.output_shape)), fmt_float(st.min, 3), fmt_float(st.max, 3),
                      fmt_float(st.mean, 3), fmt_float(st.std, 3), nan, inf, style="red" if stage.nonfinite else None)
    return table


def _plain_rows(tr: Trace) -> list[str]:
    """One line per stage with stats, for when even drawing the table ran out of memory."""
    return [f"{stage.name} {'×'.join(map(str, stage.output_shape))} min {fmt_float(stage.stats.min, 3)} "
            f"max {fmt_float(stage.stats.max, 3)} mean {fmt_float(stage.stats.mean, 3)} "
            f"std {fmt_float(stage.stats.std, 3)} "
            f"NaN {stage.stats.nan_count} Inf {stage.stats.posinf_count + stage.stats.neginf_count}"
            for stage in tr.all_stages() if stage.stats is not None]
