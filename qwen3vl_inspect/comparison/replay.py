"""Introduced here, or inherited? Replay b's module for one stage on a's input for that stage.

If b's module, fed exactly what a's module was fed, already lands beyond tolerance, the error is made
here (a changed weight, a changed function). If it lands within, b's stage is fine and the difference
came in with its input. Modules of the same class get a's whole call (hidden states, cu_seqlens,
rotary tables); modules of another class (ours vs transformers) keep their own call and get only a's
hidden states, since their signatures differ.
"""

from __future__ import annotations

from typing import Any

import torch

from qwen3vl_inspect.comparison.metrics import max_abs_error
from qwen3vl_inspect.comparison.recording import Call, Recording, module_device, module_dtype
from qwen3vl_inspect.stage_name import StageName

REPLAY, UPSTREAM, NO_UPSTREAM = "replay", "upstream", "no upstream"


def _cast(value: Any, dtype: torch.dtype, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype) if value.is_floating_point() else value.to(device)
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype, device) for v in value)
    if isinstance(value, list):
        return [_cast(v, dtype, device) for v in value]
    return value


def local_error(name: str, a: Recording, b: Recording) -> tuple[float | None, str]:
    """(max abs error of b's stage replayed on a's input, how); error None when no replay is possible."""
    if name in ("rotary", "position_ids", "cu_seqlens"):
        return None, NO_UPSTREAM  # a function of grid_thw alone: nothing upstream to inherit from
    if name.endswith(".residual1"):
        return None, UPSTREAM  # no module of its own: introduced only if the attention before it is fine
    if name == "pos_embed":
        needed = ("patch_embed", "pos_embed")
        if all(n in a.tensors and n in b.tensors for n in needed):
            added_b = b.tensors["pos_embed"].float().cpu() - b.tensors["patch_embed"].float().cpu()
            replayed = a.tensors["patch_embed"].float().cpu() + added_b  # a's patches + b's position embedding
            return max_abs_error(a.tensors["pos_embed"], replayed), REPLAY
        return None, UPSTREAM
    path = StageName.parse(name).module
    if b.module is None or path is None or name not in a.calls:
        return None, UPSTREAM
    try:
        target = b.module.get_submodule(path)
        source = a.module.get_submodule(path) if a.module is not None else None
    except AttributeError:
        return None, UPSTREAM
    call = _replay_call(a.calls[name], b.calls.get(name), same_class=type(target) is type(source))
    if call is None:
        return None, UPSTREAM
    dtype, device = module_dtype(target), module_device(target)
    with torch.inference_mode():
        output = target(*_cast(call.args, dtype, device), **_cast(call.kwargs, dtype, device))
    return max_abs_error(a.tensors[name], output), REPLAY


def _replay_call(a_call: Call, b_call: Call | None, same_class: bool) -> Call | None:
    """a's call for a module of the same class; else b's own call carrying a's hidden states, a's rotary
    (cos, sin) pair and a's cu_seqlens wherever b's call has its own."""
    if same_class:
        return a_call
    if b_call is None or not b_call.args:
        return None
    a_values = (*a_call.args, *a_call.kwargs.values())
    a_rotary = next((v for v in a_values if _is_pair(v)), None)
    a_cu = a_call.kwargs.get("cu_seqlens", a_call.args[1] if len(a_call.args) > 1 else None)

    def swap(key: object, value: Any) -> Any:
        if _is_pair(value) and a_rotary is not None:
            return a_rotary
        if key in ("cu_seqlens", 1) and isinstance(value, torch.Tensor) and isinstance(a_cu, torch.Tensor):
            return a_cu
        return value

    args = (a_call.args[0], *(swap(i, v) for i, v in enumerate(b_call.args) if i > 0))
    return Call(args, {k: swap(k, v) for k, v in b_call.kwargs.items()})


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, torch.Tensor) for v in value)
