"""Which module made the first NaN/Inf? One hooked forward answers it.

Forward hooks fire when a module *finishes*, so children report before their parents. The
first module to finish with a non-finite output whose inputs were all finite (checked in a
pre-hook, before an in-place op could spoil them) is therefore the innermost module whose own
code, weights included, produced the bad values. If no module fits (the model's inputs were
already non-finite), the report names the first module that showed them, flagged as such.

`inject_nonfinite` plants a NaN on purpose, for teaching and for testing the finder, and
always puts things back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import torch
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from torch import nn
from torch.utils.hooks import RemovableHandle

from qwen3vl_inspect.formatting import html_table
from qwen3vl_inspect.probe.tensors import TensorStats, tensor_stats
from qwen3vl_inspect.probe.walk import get_module, iter_call_tensors, iter_tensors, replace_first_tensor


@dataclass(frozen=True)
class NonFiniteReport:
    """Where NaN/Inf first appeared in one forward, with the evidence."""

    module_name: str  # "" is the model itself: its own code (between submodules) made them
    module_type: str
    call_index: int  # which call of that module (0 = first)
    execution_index: int  # position among all module calls, in order of completion
    inputs: list[TensorStats]
    outputs: list[TensorStats]
    inputs_finite: bool  # False: bad values came in with the model's inputs
    nonfinite_parameters: list[TensorStats] = field(default_factory=list)  # parameters and buffers
    modules_with_nonfinite_output: int = 0  # how far it spread
    forward_error: str | None = None  # the forward raised after the culprit was found

    @property
    def display_name(self) -> str:
        return self.module_name or "(model)"

    @property
    def culprit_parameters(self) -> list[TensorStats]:
        """Non-finite weights owned by the culprit or its children: the likely cause."""
        prefix = f"{self.module_name}." if self.module_name else ""
        return [p for p in self.nonfinite_parameters if p.name.startswith(prefix)]

    def describe(self) -> str:
        """One plain line, for logs and CLI exit messages."""
        where = f"{self.display_name} ({self.module_type}), call {self.call_index}"
        if not self.inputs_finite:
            return f"non-finite values entered with the inputs; first seen in the output of {where}"
        cause = f" (non-finite weight: {', '.join(p.name for p in self.culprit_parameters)})" if self.culprit_parameters else ""
        return f"first non-finite output produced by {where}{cause}"

    def __rich__(self) -> RenderableType:
        head = Text(self.describe(), style="bold red")
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim")
        table.add_column()
        for label, group in (("in", self.inputs), ("out", self.outputs)):
            for stats in group:
                table.add_row(label, stats.one_line())
        parts: list[RenderableType] = [head, table]
        if self.nonfinite_parameters:
            names = Text("non-finite parameters: ", style="dim")
            for stats in self.nonfinite_parameters[:8]:
                names.append(f"{stats.name} ", style="bold red" if stats in self.culprit_parameters else "red")
            parts.append(names)
        parts.append(Text(f"NaN/Inf reached {self.modules_with_nonfinite_output} module output(s)", style="dim"))
        if self.forward_error:
            parts.append(Text(f"the forward then raised: {self.forward_error}", style="yellow"))
        return Panel(Group(*parts), title="NaN/Inf finder", title_align="left", border_style="red")

    def _repr_html_(self) -> str:
        rows = [(label, s.name, s.shape, s.nan_count, s.posinf_count + s.neginf_count)
                for label, group in (("in", self.inputs), ("out", self.outputs)) for s in group]
        rows += [("param", s.name, s.shape, s.nan_count, s.posinf_count + s.neginf_count) for s in self.nonfinite_parameters]
        return html_table(rows, header=("", "tensor", "shape", "NaN", "Inf"), caption=self.describe())


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """One host sync for all of a call's floating tensors."""
    checks = [torch.isfinite(t).all() for t in tensors if t.is_floating_point() or t.is_complex()]
    if not checks:
        return True
    if len({c.device for c in checks}) > 1:  # a model split over devices
        return all(bool(c) for c in checks)
    return bool(torch.stack(checks).all())


@dataclass
class _Hit:
    name: str
    module_type: str
    call_index: int
    execution_index: int
    inputs: list[TensorStats]
    outputs: list[TensorStats]


class _Finder:
    """Hook state for one forward: input finiteness per pending call, first hits."""

    def __init__(self) -> None:
        self.pending: dict[str, list[bool]] = {}
        self.calls: dict[str, int] = {}
        self.finished = 0
        self.bad_outputs = 0
        self.first_any: _Hit | None = None
        self.first_clean: _Hit | None = None

    def before(self, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        finite = _all_finite(t for _, t in iter_call_tensors(args, kwargs))
        self.pending.setdefault(name, []).append(finite)

    def after(self, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any], output: Any) -> None:
        stack = self.pending.get(name)
        inputs_finite = stack.pop() if stack else True
        call = self.calls.get(name, 0)
        self.calls[name] = call + 1
        self.finished += 1
        outputs = list(iter_tensors(output, "output"))
        if _all_finite(t for _, t in outputs):
            return
        self.bad_outputs += 1
        if self.first_clean is not None or (self.first_any is not None and not inputs_finite):
            return
        hit = _Hit(
            name, type(module).__name__, call, self.finished - 1,
            [tensor_stats(label, t) for label, t in iter_call_tensors(args, kwargs)],
            [tensor_stats(label, t) for label, t in outputs],
        )
        self.first_any = self.first_any or hit
        if inputs_finite:
            self.first_clean = hit


def nonfinite_parameters(model: nn.Module) -> list[TensorStats]:
    """Stats of every floating parameter or buffer holding NaN/Inf (a cheap scan, no forward)."""
    found = []
    named = list(model.named_parameters()) + list(model.named_buffers())
    for name, tensor in named:
        if (tensor.is_floating_point() or tensor.is_complex()) and tensor.numel() and not _all_finite([tensor]):
            found.append(tensor_stats(name, tensor))
    return found


def find_first_nonfinite(model: nn.Module, *args: Any, **kwargs: Any) -> NonFiniteReport | None:
    """Run `model(*args, **kwargs)` once under `no_grad` with hooks on every module; report the
    first module that produced NaN/Inf, or None if every module output was finite.

    Hooks are removed in `finally`. If the forward raises after a culprit was found, the report
    is returned with `forward_error` set (NaN often makes later code fail); otherwise it re-raises.
    """
    finder = _Finder()
    handles: list[RemovableHandle] = []
    error: BaseException | None = None
    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(partial(finder.before, name), with_kwargs=True))
            handles.append(module.register_forward_hook(partial(finder.after, name), with_kwargs=True))
        with torch.no_grad():
            model(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised below unless we already have the answer
        error = exc
    finally:
        for handle in handles:
            handle.remove()
    hit = finder.first_clean or finder.first_any
    if hit is None:
        if error is not None:
            raise error
        return None
    return NonFiniteReport(
        module_name=hit.name,
        module_type=hit.module_type,
        call_index=hit.call_index,
        execution_index=hit.execution_index,
        inputs=hit.inputs,
        outputs=hit.outputs,
        inputs_finite=finder.first_clean is not None,
        nonfinite_parameters=nonfinite_parameters(model),
        modules_with_nonfinite_output=finder.bad_outputs,
        forward_error=None if error is None else f"{type(error).__name__}: {error}",
    )


@contextmanager
def inject_nonfinite(
    model: nn.Module,
    module_name: str,
    where: Literal["output", "weight"] = "output",
    value: float = float("nan"),
    index: int = 0,
    param: str = "weight",
) -> Iterator[None]:
    """Make one element non-finite for the duration of a `with` block, then restore it.

    where="output": a forward hook (run before any other hook) returns a copy of the module's
    first floating output with element `index` (flat, row-major) set to `value`; the module's
    tensors are never written. where="weight": element `index` of `module.<param>` is set in
    place and its original value put back exactly in `finally`.
    """
    module = get_module(model, module_name)
    if where == "output":
        def poison(tensor: torch.Tensor) -> torch.Tensor:
            copy = tensor.clone()
            copy[_unravel(index, copy.shape)] = value
            return copy

        def hook(_module: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
            new, replaced = replace_first_tensor(output, poison)
            if not replaced:
                raise ValueError(f"{module_name} returned no floating tensor to make non-finite")
            return new

        handle = module.register_forward_hook(hook, prepend=True)
        try:
            yield
        finally:
            handle.remove()
    elif where == "weight":
        tensor = getattr(module, param, None)
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{module_name} ({type(module).__name__}) has no tensor attribute {param!r}")
        if not tensor.is_floating_point():
            raise ValueError(f"{module_name}.{param} is {tensor.dtype}; only floating tensors can hold NaN/Inf")
        position = _unravel(index, tensor.shape)
        original = tensor.data[position].clone()
        with torch.no_grad():
            tensor.data[position] = value
        try:
            yield
        finally:
            with torch.no_grad():
                tensor.data[position] = original
    else:
        raise ValueError(f"where={where!r}; choose 'output' or 'weight'")


def _unravel(index: int, shape: torch.Size) -> tuple[int, ...]:
    numel = 1
    for size in shape:
        numel *= size
    if not -numel <= index < numel:
        raise IndexError(f"index {index} out of range for a tensor of {numel} elements")
    index %= numel
    position = []
    for size in reversed(shape):
        position.append(index % size)
        index //= size
    return tuple(reversed(position))
