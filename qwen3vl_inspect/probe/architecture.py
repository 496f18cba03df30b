"""How a model is built: a module tree with parameter counts, and a parameter tally.

`print(model)` lists all 24 identical blocks in full, which buries the structure a learner
is looking for. Here identical siblings fold into one line (`blocks.0–23 ×24 Block`) and
every line carries its subtree's parameter count, so "where do the 400M parameters live?"
is answered at a glance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree
from torch import nn

from qwen3vl_inspect.formatting import fmt_bytes, fmt_count, html_table

_CONTAINERS = (nn.ModuleList, nn.Sequential, nn.ModuleDict)


@dataclass(frozen=True)
class ParameterCount:
    """Parameter totals (shared tensors counted once) and where they live."""

    total: int
    trainable: int
    by_child: dict[str, int]  # top-level children; "(own)" for parameters held by the model itself
    bytes_by_dtype: dict[str, int]

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_dtype.values())

    def __rich__(self) -> RenderableType:
        table = Table(title="Parameters", title_justify="left", show_header=False)
        table.add_column(style="cyan")
        table.add_column(justify="right")
        table.add_column(justify="right", style="dim")
        table.add_row("total", fmt_count(self.total), f"{self.total:,}")
        table.add_row("trainable", fmt_count(self.trainable), f"{self.trainable:,}")
        for name, count in self.by_child.items():
            share = f"{count / self.total:.1%}" if self.total else "—"
            table.add_row(f"  {name}", fmt_count(count), share)
        for dtype, size in self.bytes_by_dtype.items():
            table.add_row(f"bytes ({dtype})", fmt_bytes(size), "")
        return table

    def _repr_html_(self) -> str:
        rows: list[tuple[Any, ...]] = [("total", f"{self.total:,}"), ("trainable", f"{self.trainable:,}")]
        rows += [(name, f"{count:,}") for name, count in self.by_child.items()]
        rows += [(f"bytes ({dtype})", fmt_bytes(size)) for dtype, size in self.bytes_by_dtype.items()]
        return html_table(rows, caption="Parameters")


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _signature(module: nn.Module) -> tuple[Any, ...]:
    """Equal signatures = same module types and parameter shapes/dtypes all the way down."""
    return (
        tuple((name, type(m).__name__) for name, m in module.named_modules()),
        tuple((name, tuple(p.shape), p.dtype) for name, p in module.named_parameters()),
    )


def _runs(children: list[tuple[str, nn.Module]]) -> list[list[tuple[str, nn.Module]]]:
    """Consecutive numerically named children with identical signatures."""
    runs: list[list[tuple[str, nn.Module]]] = []
    last_signature: tuple[Any, ...] | None = None
    for name, module in children:
        signature = _signature(module) if name.isdigit() else None
        if runs and signature is not None and signature == last_signature:
            runs[-1].append((name, module))
        else:
            runs.append([(name, module)])
        last_signature = signature
    return runs


def _label(name: str, module: nn.Module, count: int = 1) -> Text:
    text = Text(name, style="bold cyan")
    if count > 1:
        text.append(f" ×{count}", style="bold")
    text.append(f" {type(module).__name__}" if name else type(module).__name__, style="green")
    params = _param_count(module)
    if params:
        each = " each" if count > 1 else ""
        total = f" ({fmt_count(params * count)} total)" if count > 1 else ""
        text.append(f"  {fmt_count(params)}{each}{total}", style="yellow")
    if not any(True for _ in module.children()):
        extra = module.extra_repr()
        if extra:
            text.append(f"  {extra[:60]}{'…' if len(extra) > 60 else ''}", style="dim")
    return text


class ModelArchitectureInspector:
    """Namespace kept for seed scripts (`ModelArchitectureInspector.print_architecture(model)`)."""

    @staticmethod
    def architecture_tree(model: nn.Module, max_depth: int = 3) -> Tree:
        """The module tree to `max_depth` levels below the model, identical siblings folded."""
        root = Tree(_label("", model))
        ModelArchitectureInspector._add_children(root, model, 1, max_depth)
        return root

    @staticmethod
    def _add_children(node: Tree, module: nn.Module, depth: int, max_depth: int) -> None:
        children = list(module.named_children())
        if not children:
            return
        if depth > max_depth:
            node.add(Text(f"… {len(children)} children", style="dim"))
            return
        for name, child in children:
            grandchildren = list(child.named_children())
            runs = _runs(grandchildren) if isinstance(child, _CONTAINERS) else []
            if len(runs) == 1 and len(runs[0]) > 1:  # a list of identical layers: one line
                first, last = runs[0][0][0], runs[0][-1][0]
                sub = node.add(_label(f"{name}.{first}–{last}", runs[0][0][1], len(runs[0])))
                ModelArchitectureInspector._add_children(sub, runs[0][0][1], depth + 1, max_depth)
            elif runs:
                sub = node.add(_label(name, child))
                if depth + 1 > max_depth:
                    sub.add(Text(f"… {len(grandchildren)} children", style="dim"))
                    continue
                for run in runs:
                    label = run[0][0] if len(run) == 1 else f"{run[0][0]}–{run[-1][0]}"
                    leaf = sub.add(_label(label, run[0][1], len(run)))
                    ModelArchitectureInspector._add_children(leaf, run[0][1], depth + 2, max_depth)
            else:
                sub = node.add(_label(name, child))
                ModelArchitectureInspector._add_children(sub, child, depth + 1, max_depth)

    @staticmethod
    def print_architecture(model: nn.Module, max_depth: int = 3, console: Console | None = None) -> None:
        (console or Console()).print(ModelArchitectureInspector.architecture_tree(model, max_depth))

    @staticmethod
    def count_parameters(model: nn.Module, print_: bool = False, console: Console | None = None) -> ParameterCount:
        """Totals, per top-level child, and bytes per dtype; `print_=True` also prints the table."""
        params = list(model.parameters())  # deduplicated: tied weights count once
        bytes_by_dtype: dict[str, int] = defaultdict(int)
        for p in params:
            bytes_by_dtype[str(p.dtype).removeprefix("torch.")] += p.numel() * p.element_size()
        by_child = {name: _param_count(child) for name, child in model.named_children()}
        own = sum(p.numel() for p in model.parameters(recurse=False))
        if own:
            by_child["(own)"] = own
        result = ParameterCount(
            total=sum(p.numel() for p in params),
            trainable=sum(p.numel() for p in params if p.requires_grad),
            by_child=by_child,
            bytes_by_dtype=dict(bytes_by_dtype),
        )
        if print_:
            (console or Console()).print(result)
        return result
