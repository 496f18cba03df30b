"""Record what chosen modules receive and return, via forward hooks that are always removed.

Two spellings, same machinery:

    with capture(model, ["blocks.*.attn", "merger"]) as hooks:   # scoped (preferred)
        model(pixel_values, grid_thw)
    hooks.print_summary()

    hooks = ForwardHookManager()                                  # seed-script style
    hooks.register_module_hooks(model, ["visual.blocks.0", "lm_head"])
    model(...); hooks.print_summary(); hooks.remove_hooks()

`manager.capture(model, names)` is the scoped form on an existing manager. A forgotten hook
keeps costing time and memory on every later forward, so the scoped form removes its handles
in `finally`, also when the forward raises. Records keep stats only; tensors (detached, on
CPU) only with `keep_tensors=True`, because holding every activation is what runs a box out
of memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text
from torch import nn
from torch.utils.hooks import RemovableHandle

from qwen3vl_inspect.formatting import fmt_float, fmt_shape, html_table
from qwen3vl_inspect.probe.tensors import TensorStats, tensor_stats
from qwen3vl_inspect.probe.walk import glob_match, is_glob, iter_call_tensors, iter_tensors, resolve_module_names


@dataclass
class HookRecord:
    """One call of one hooked module. `inputs`/`outputs` are stats named by access path
    (`input[0]`, `hidden_states`, `output[0]`, `output.last_hidden_state`)."""

    module_name: str
    module_type: str
    call_index: int  # 0 for the module's first call in this recording, 1 for the next, …
    inputs: list[TensorStats]
    outputs: list[TensorStats]
    input_tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # keep_tensors=True only
    output_tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [s.shape for s in self.inputs]

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [s.shape for s in self.outputs]

    @property
    def output(self) -> torch.Tensor | None:
        """The first kept output tensor (the usual case of a module returning one tensor)."""
        return next(iter(self.output_tensors.values()), None)

    @property
    def has_nonfinite(self) -> bool:
        return any(not s.is_finite for s in self.outputs)


class ForwardHookManager:
    """Hooks on modules chosen by path or glob; a list of `HookRecord`s per call."""

    def __init__(self, keep_tensors: bool = False, detailed: bool = False) -> None:
        self.keep_tensors = keep_tensors
        self.detailed = detailed
        self.records: list[HookRecord] = []
        self._handles: list[RemovableHandle] = []
        self._calls: dict[str, int] = {}

    # ---- registration -------------------------------------------------------------------------

    def register_module_hooks(
        self, model: nn.Module, names: str | Sequence[str], keep_tensors: bool | None = None
    ) -> list[str]:
        """Hook every module matching `names` (paths or fnmatch globs); returns the matched paths.

        Raises ValueError (with the closest paths) if a name matches nothing: a typo must not
        silently record an empty run.
        """
        if keep_tensors is not None:
            self.keep_tensors = keep_tensors
        matched = resolve_module_names(model, names)
        modules = dict(model.named_modules())
        for name in matched:
            hook = partial(self._on_forward, name)
            self._handles.append(modules[name].register_forward_hook(hook, with_kwargs=True))
        return matched

    def remove_hooks(self) -> None:
        """Remove every handle this manager registered; records stay."""
        while self._handles:
            self._handles.pop().remove()

    def clear(self) -> None:
        """Forget records and call counters (hooks stay registered)."""
        self.records.clear()
        self._calls.clear()

    @contextmanager
    def capture(
        self, model: nn.Module, names: str | Sequence[str], keep_tensors: bool | None = None
    ) -> Iterator[ForwardHookManager]:
        """Hooks for the duration of a `with` block; removed in `finally`, even on error."""
        try:
            self.register_module_hooks(model, names, keep_tensors=keep_tensors)
            yield self
        finally:
            self.remove_hooks()

    def __enter__(self) -> ForwardHookManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove_hooks()

    # ---- the hook -----------------------------------------------------------------------------

    def _on_forward(
        self, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any], output: Any
    ) -> None:
        call = self._calls.get(name, 0)
        self._calls[name] = call + 1
        inputs = list(iter_call_tensors(args, kwargs))
        outputs = list(iter_tensors(output, "output"))
        record = HookRecord(
            module_name=name,
            module_type=type(module).__name__,
            call_index=call,
            inputs=[tensor_stats(label, t, self.detailed) for label, t in inputs],
            outputs=[tensor_stats(label, t, self.detailed) for label, t in outputs],
        )
        if self.keep_tensors:
            record.input_tensors = {label: t.detach().to("cpu", copy=True) for label, t in inputs}
            record.output_tensors = {label: t.detach().to("cpu", copy=True) for label, t in outputs}
        self.records.append(record)

    # ---- queries and display ------------------------------------------------------------------

    def records_for(self, name: str) -> list[HookRecord]:
        """Records of one module path, or of every path matching a glob, in call order."""
        if is_glob(name):
            return [r for r in self.records if glob_match(r.module_name, name)]
        return [r for r in self.records if r.module_name == name]

    def summary_table(self, title: str = "Forward hooks") -> Table:
        """One row per call: first input/output shape (the activation, usually), output range."""
        table = Table(title=title, title_justify="left")
        table.add_column("module", style="cyan", no_wrap=True, overflow="fold")
        table.add_column("call", justify="right")
        table.add_column("type", overflow="ellipsis", no_wrap=True, max_width=24)
        table.add_column("input", no_wrap=True)
        table.add_column("output", no_wrap=True)
        table.add_column("min … max", justify="right", no_wrap=True)
        table.add_column("mean", justify="right")
        table.add_column("NaN/Inf", justify="right")
        for r in self.records:
            first = r.outputs[0] if r.outputs else None
            bad = sum(s.nonfinite_count for s in r.outputs)
            table.add_row(
                r.module_name or "(model)",
                str(r.call_index),
                r.module_type,
                _shapes(r.inputs),
                _shapes(r.outputs),
                f"{fmt_float(first.min, 3)} … {fmt_float(first.max, 3)}" if first else "—",
                fmt_float(first.mean if first else None, 3),
                Text(str(bad), style="bold red") if bad else Text("0", style="green"),
            )
        return table

    def __rich__(self) -> RenderableType:
        return self.summary_table()

    def _repr_html_(self) -> str:
        rows = [
            (r.module_name, r.call_index, r.module_type, " ".join(fmt_shape(s.shape) for s in r.outputs),
             sum(s.nonfinite_count for s in r.outputs))
            for r in self.records
        ]
        return html_table(rows, header=("module", "call", "type", "outputs", "non-finite"))

    def print_summary(self, console: Console | None = None) -> None:
        (console or Console()).print(self.summary_table())


def _shapes(group: list[TensorStats]) -> str:
    """First tensor's shape, and how many more there are (masks, rotary tables, …)."""
    if not group:
        return "—"
    more = f" +{len(group) - 1}" if len(group) > 1 else ""
    return fmt_shape(group[0].shape) + more


@contextmanager
def capture(
    model: nn.Module, names: str | Sequence[str], keep_tensors: bool = False, detailed: bool = False
) -> Iterator[ForwardHookManager]:
    """`with capture(model, ["blocks.*.mlp"]) as hooks: model(...)` — a fresh, scoped manager."""
    manager = ForwardHookManager(keep_tensors=keep_tensors, detailed=detailed)
    with manager.capture(model, names):
        yield manager
