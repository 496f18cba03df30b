"""Every module call's input/output shapes, in the order calls *start*, with nesting depth.

Call-start order with depth is how code reads (a parent opens, its children run, it closes),
so the table and tree look like the model's source. Only shapes and dtypes are kept, never
values: a trace of a 2B tower is a few hundred small records.

    tracer = ShapeTracer().trace(model, pixel_values, grid_thw)   # runs one no_grad forward
    tracer.print_summary(); tracer.print_tree(max_depth=2); tracer.to_json()
    with ShapeTracer().capture(model) as tracer:                  # or record your own calls
        model.generate(...)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree
from torch import nn
from torch.utils.hooks import RemovableHandle

from qwen3vl_inspect.formatting import fmt_shape, html_table
from qwen3vl_inspect.probe.walk import iter_call_tensors, iter_tensors

_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)")


@dataclass(frozen=True)
class TensorInfo:
    label: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class ShapeRecord:
    index: int  # call-start order
    name: str  # module path; "" is the model itself
    module_type: str
    depth: int  # nesting at call time: 0 for the outermost call
    call_index: int  # 0 for this module's first call
    inputs: list[TensorInfo]
    outputs: list[TensorInfo] = field(default_factory=list)

    @property
    def pattern(self) -> str:
        """The name with list indices as `*`: `blocks.7.attn` → `blocks.*.attn`."""
        return _INDEX.sub("*", self.name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShapeSummaryRow:
    """Calls of one module (or one family, `blocks.*`) grouped: the shapes of the first call."""

    name: str
    module_type: str
    calls: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    shapes_vary: bool  # some call of the family had different shapes than the first


def _infos(pairs: Iterator[tuple[str, torch.Tensor]]) -> list[TensorInfo]:
    return [TensorInfo(label, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for label, t in pairs]


def _shapes(infos: list[TensorInfo], limit: int = 3) -> str:
    text = " ".join(fmt_shape(i.shape) for i in infos[:limit])
    return (text + f" +{len(infos) - limit}") if len(infos) > limit else (text or "—")


class ShapeTracer:
    """Records module calls while attached; `trace` attaches for one forward."""

    def __init__(self) -> None:
        self.records: list[ShapeRecord] = []
        self.output: Any = None
        self.model_type = ""
        self._open: list[ShapeRecord] = []
        self._calls: dict[str, int] = {}

    # ---- recording ----------------------------------------------------------------------------

    @contextmanager
    def capture(self, model: nn.Module) -> Iterator[ShapeTracer]:
        """Record every module call made inside the block; hooks removed in `finally`."""
        self.model_type = type(model).__name__
        handles: list[RemovableHandle] = []
        try:
            for name, module in model.named_modules():
                handles.append(module.register_forward_pre_hook(partial(self._before, name), with_kwargs=True))
                handles.append(module.register_forward_hook(partial(self._after, name), with_kwargs=True))
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._open.clear()

    def trace(self, model: nn.Module, *args: Any, **kwargs: Any) -> ShapeTracer:
        """Run `model(*args, **kwargs)` once without gradients; keep its result in `.output`."""
        with self.capture(model), torch.no_grad():
            self.output = model(*args, **kwargs)
        return self

    def _before(self, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        call = self._calls.get(name, 0)
        self._calls[name] = call + 1
        record = ShapeRecord(
            len(self.records), name, type(module).__name__, len(self._open), call, _infos(iter_call_tensors(args, kwargs))
        )
        self.records.append(record)
        self._open.append(record)

    def _after(self, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any], output: Any) -> None:
        for position in range(len(self._open) - 1, -1, -1):  # normally the top of the stack
            if self._open[position].name == name:
                self._open.pop(position).outputs = _infos(iter_tensors(output, "output"))
                return

    # ---- views --------------------------------------------------------------------------------

    def summary(self, depth: int = 1) -> list[ShapeSummaryRow]:
        """The model call, then each module down to `depth` name levels (indices don't count,
        so `blocks.3` is level 1), families like `blocks.*` folded into one row."""
        groups: dict[str, list[ShapeRecord]] = {}
        for record in self.records:
            levels = [part for part in record.pattern.split(".") if part != "*"] if record.name else []
            if record.name and len(levels) > depth:
                continue
            groups.setdefault(record.pattern if record.name else "(model)", []).append(record)
        rows = []
        for name, records in groups.items():
            first = records[0]
            signature = ([i.shape for i in first.inputs], [o.shape for o in first.outputs])
            vary = any(([i.shape for i in r.inputs], [o.shape for o in r.outputs]) != signature for r in records)
            rows.append(ShapeSummaryRow(name, first.module_type, len(records), first.inputs, first.outputs, vary))
        return rows

    def summary_table(self, depth: int = 1) -> Table:
        table = Table(title=f"Shapes through {self.model_type or 'the model'}", title_justify="left")
        for column in ("module", "type", "calls", "input", "output"):
            table.add_column(
                column, style="cyan" if column == "module" else None,
                justify="right" if column == "calls" else "left", no_wrap=column != "type",
            )
        for row in self.summary(depth):
            out = _shapes(row.outputs) + (" (varies)" if row.shapes_vary else "")
            table.add_row(row.name, row.module_type, str(row.calls), _shapes(row.inputs), out)
        return table

    def print_summary(self, depth: int = 1, console: Console | None = None) -> None:
        (console or Console()).print(self.summary_table(depth))

    def print_table(self, max_depth: int | None = None, console: Console | None = None) -> None:
        """Every call in start order, indented by depth."""
        table = Table(title=f"Module calls ({len(self.records)})", title_justify="left")
        for column in ("#", "module", "type", "input", "output", "dtype"):
            table.add_column(column, justify="right" if column == "#" else "left", no_wrap=column != "type")
        for r in self.records:
            if max_depth is not None and r.depth > max_depth:
                continue
            dtype = (r.outputs or r.inputs or [TensorInfo("", (), "—")])[0].dtype
            label = "  " * r.depth + (r.name or "(model)")
            table.add_row(str(r.index), Text(label, style="cyan"), r.module_type, _shapes(r.inputs), _shapes(r.outputs), dtype)
        (console or Console()).print(table)

    def tree(self, max_depth: int | None = None) -> Tree:
        """Calls as a tree; consecutive sibling calls that differ only by index (and not in
        shapes) fold into one node, `blocks.0–23 ×24`, showing the first one's children."""
        root = Tree(Text(f"{self.model_type or 'model'} ({len(self.records)} calls)", style="bold"))
        children = [r for r in self.records if r.depth == 0]
        self._add_nodes(root, children, "", max_depth)
        return root

    def _children_of(self, record: ShapeRecord) -> list[ShapeRecord]:
        found = []
        for r in self.records[record.index + 1 :]:
            if r.depth <= record.depth:
                break
            if r.depth == record.depth + 1:
                found.append(r)
        return found

    def _add_nodes(self, parent: Tree, records: list[ShapeRecord], parent_name: str, max_depth: int | None) -> None:
        for run in _runs(records):
            first = run[0]
            name = first.name[len(parent_name) + 1 :] if parent_name and first.name.startswith(parent_name + ".") else first.name
            label = Text(name or "(model)", style="cyan")
            if len(run) > 1:
                last = run[-1].name.rsplit(".", 1)[-1]
                label = Text(f"{name}–{last} ×{len(run)}", style="cyan")
            label.append(f" {first.module_type}", style="dim")
            label.append(f"  {_shapes(first.inputs)} → {_shapes(first.outputs)}")
            node = parent.add(label)
            if max_depth is None or first.depth < max_depth:
                self._add_nodes(node, self._children_of(first), first.name, max_depth)

    def print_tree(self, max_depth: int | None = None, console: Console | None = None) -> None:
        (console or Console()).print(self.tree(max_depth))

    def __rich__(self) -> RenderableType:
        return Group(self.summary_table())

    def _repr_html_(self) -> str:
        rows = [(r.name, r.module_type, r.calls, _shapes(r.inputs), _shapes(r.outputs)) for r in self.summary()]
        return html_table(rows, header=("module", "type", "calls", "input", "output"), caption=self.model_type)

    def to_dict(self) -> dict[str, Any]:
        """`{"model": type name, "records": [ShapeRecord as dict, …]}` (JSON-ready)."""
        return {"model": self.model_type, "records": [r.to_dict() for r in self.records]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _runs(records: list[ShapeRecord]) -> list[list[ShapeRecord]]:
    """Consecutive indexed records (`blocks.3`) with the same family name, type and shapes."""
    runs: list[list[ShapeRecord]] = []
    for record in records:
        if runs and record.pattern != record.name and _run_key(runs[-1][0]) == _run_key(record):
            runs[-1].append(record)
        else:
            runs.append([record])
    return runs


def _run_key(record: ShapeRecord) -> tuple[Any, ...]:
    return (record.pattern, record.module_type, [i.shape for i in record.inputs], [o.shape for o in record.outputs])
