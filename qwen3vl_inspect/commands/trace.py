"""`qwen3vl-inspect trace`: every stage's input → output shapes and dtypes, as a table or JSON."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.commands.common import describe_run, fail_code, image_path, run_trace, stage_failure
from qwen3vl_inspect.formatting import fmt_shape
from qwen3vl_inspect.tracing import Stage, Trace


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes)


def note(stage: Stage, tr: Trace) -> str:
    if stage.nonfinite:
        return f"[bold red]NaN/Inf ({stage.module or stage.name})[/]"
    if stage.kind == "input":
        return "resized: sides to multiples of 32"
    if stage.kind == "patchify":
        return "16×16×2 patches, 2×2 merge order"
    if stage.kind == "pos_embed":
        return f"+ bilinear from the {tr.config.num_grid_per_side}² learned grid"
    if stage.kind == "rotary":
        return "cos/sin from (row, col) ids"
    if stage.kind == "block" and stage.layer in tr.config.deepstack_visual_indexes:
        return "DeepStack tap"
    if stage.kind == "deepstack":
        return f"from block {stage.layer}"
    if stage.kind == "merger":
        return f"2×2 groups: {stage.input_shapes[0][0]} → {stage.output_shape[0]} tokens"
    return ""


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    tr = run_trace(args, err)
    if args.json:
        out.print_json(json.dumps(tr.summary()), ensure_ascii=True)  # escaped: no user string reaches the terminal raw
        return 0 if tr.failure is None else fail_code(tr)
    table = Table(title=describe_run(tr, image_path(args)), title_justify="left")
    for column in ("stage", "input", "output", "dtype", "ms"):
        table.add_column(column, justify="right" if column == "ms" else "left", no_wrap=True)
    table.add_column("note")
    for stage in tr.stages:
        rows = [stage, *stage.substages] if args.substages else [stage]
        for row in rows:
            name = f"  {row.name}" if row is not stage else row.name
            table.add_row(name, _shapes(row.input_shapes), _shapes([row.output_shape]), row.dtype,
                          f"{row.seconds * 1000:.0f}" if row is stage else "", note(row, tr))
    if tr.failure is not None:
        table.add_row(Text(tr.failure.stage, style="bold red"), "", "", "", "",
                      Text(f"failed: {stage_failure(tr.failure)}", style="bold red"))
    out.print(table)
    return 0 if tr.failure is None else fail_code(tr)
