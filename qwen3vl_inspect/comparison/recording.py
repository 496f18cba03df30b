"""One side of a comparison, recorded: every stage tensor a run exposes, under canonical stage names.

A side is a `VisionEncoder`, transformers' `Qwen3VLVisionModel`, any module with the same submodule
names (a user's modified copy), or an exported ONNX file. Torch sides are recorded with scoped forward
hooks on transformers' module names, so the module's own `forward` runs untouched: whatever it skips
(a DeepStack merger, say) simply never records, and that absence is a finding.

    patch_embed ─► pos_embed (input of blocks.0) ─► rotary (cos table) ─► blocks.i.{norm1, attn,
    residual1, norm2, mlp} and blocks.i (output) ─► deepstack.k ─► merger

plus the integer tensors `position_ids` ([N, 2] rotary row/col) and `cu_seqlens`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qwen3vl_inspect.inputs.image import VisionInputs

INTEGER_STAGES = ("position_ids", "cu_seqlens")
# block steps recorded from a submodule's output (residual1 is norm2's input)
HOOKED_STEPS = ("norm1", "attn", "norm2", "mlp")
# what an ONNX file must expose; other stages (intermediates) are compared when it has them
ONNX_REQUIRED = ("merger", "deepstack.")


@dataclass
class Call:
    """The positional and keyword arguments one module call got (kept for replaying another module)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class Recording:
    """Every stage tensor of one run, in data-flow order, plus what replaying a stage needs."""

    label: str
    tensors: dict[str, torch.Tensor]  # stage name → tensor, firing order = data-flow order
    dtype: torch.dtype | None  # compute dtype (an ONNX file: float16 if its outputs are, else float32)
    module: nn.Module | None = None  # the torch module (None for an ONNX file)
    calls: dict[str, Call] = field(default_factory=dict)  # stage name → the module call that computed it
    patch_size: int = 16
    merge_size: int = 2
    onnx: bool = False
    error: str | None = None  # the forward raised: stages before it are kept, the rest are missing

    def claims(self, name: str) -> bool:
        """Whether this side is expected to have `name`: absent stages it claims are findings.

        A torch module is recorded at every stage; an ONNX file only promises the pooled output and
        every DeepStack output (intermediates are optional at export)."""
        return not self.onnx or name == "merger" or name.startswith("deepstack.")


def module_dtype(module: nn.Module) -> torch.dtype:
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def module_device(module: nn.Module) -> torch.device:
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")


def _geometry(module: nn.Module) -> tuple[int, int]:
    config = getattr(module, "config", None)
    return int(getattr(config, "patch_size", 16)), int(getattr(config, "spatial_merge_size", 2))


def _submodule(module: nn.Module, name: str) -> nn.Module | None:
    try:
        return module.get_submodule(name)
    except AttributeError:
        return None


def _rotary_cos(call: Call) -> torch.Tensor | None:
    """The cos table [N, head_dim] among a block call's arguments (ours: positional; transformers: kwarg)."""
    for value in (*call.args, *call.kwargs.values()):
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, torch.Tensor) for v in value):
            return value[0]
    return None


def _cu_seqlens(call: Call) -> torch.Tensor | None:
    if "cu_seqlens" in call.kwargs:
        return call.kwargs["cu_seqlens"]
    return call.args[1] if len(call.args) > 1 and isinstance(call.args[1], torch.Tensor) else None


def record_module(module: nn.Module, inputs: VisionInputs, label: str,
                  sink: Callable[[str, torch.Tensor], None] | None = None, substages: bool = True) -> Recording:
    """Run `module(pixel_values, grid_thw)` once with scoped hooks on transformers' submodule names.

    With `sink`, each stage tensor goes to `sink(name, tensor)` as it is made and nothing is kept (the
    precision-floor re-run only needs one number per stage, not a second copy of every activation).
    """
    patch_size, merge_size = _geometry(module)
    recording = Recording(label, {}, module_dtype(module), module, {}, patch_size, merge_size)
    kept, calls = recording.tensors, recording.calls
    tensors: Any = kept if sink is None else _Sink(sink)
    device = module_device(module)
    pixel_values, grid_thw = inputs.pixel_values.to(device), inputs.grid_thw.to(device)
    handles: list[Any] = []

    def keep_call(name: str):
        def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
            if name.endswith(".norm2") and args:  # norm2's input is the first residual, as the block made it
                tensors[name.replace(".norm2", ".residual1")] = args[0].detach()
            if sink is not None:
                return  # streaming (the precision floor): nothing is replayed, so no call is kept
            calls[name] = Call(args, dict(kwargs))
        return hook

    def keep_output(name: str):
        def hook(_module: nn.Module, _args: tuple, output: Any) -> None:
            if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                output = output[0]  # modules that also return extras (attention weights, caches)
            if not isinstance(output, torch.Tensor):
                return
            tensors[name] = output.detach()
        return hook

    def block0_input(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        call = Call(args, dict(kwargs))
        tensors["pos_embed"] = args[0].detach()
        for name, value in (("rotary", _rotary_cos(call)), ("cu_seqlens", _cu_seqlens(call))):
            if value is not None:
                tensors[name] = value.detach()

    def rotary_ids(_module: nn.Module, args: tuple) -> None:
        if len(args) > 1 and isinstance(args[1], torch.Tensor) and not args[1].is_floating_point():
            tensors["position_ids"] = args[1].detach()

    targets: list[tuple[str, str]] = [("patch_embed", "patch_embed")]
    blocks = _submodule(module, "blocks")
    for layer in range(len(blocks) if blocks is not None else 0):
        if substages:  # a block's steps: five more tensors per block, kept until the comparison is judged
            targets += [(f"blocks.{layer}.{step}", f"blocks.{layer}.{step}") for step in HOOKED_STEPS]
        targets.append((f"blocks.{layer}", f"blocks.{layer}"))
    mergers = _submodule(module, "deepstack_merger_list")
    targets += [(f"deepstack.{k}", f"deepstack_merger_list.{k}") for k in range(len(mergers) if mergers is not None else 0)]
    targets.append(("merger", "merger"))
    method = getattr(module, "patch_positions", None)
    if callable(method):  # our encoder: rotary ids come from a method, not a module; read what forward got

        def positions_seen(*args: Any, **kwargs: Any) -> Any:
            positions = method(*args, **kwargs)
            tensors["position_ids"] = positions.rotary_ids
            return positions

        module.patch_positions = positions_seen  # instance attribute, removed in `finally`
    try:
        rotary_module = _submodule(module, "rotary_pos_emb")
        if rotary_module is not None:
            handles.append(rotary_module.register_forward_pre_hook(rotary_ids))
        first = _submodule(module, "blocks.0")
        if first is not None:
            handles.append(first.register_forward_pre_hook(block0_input, with_kwargs=True))
        for name, path in targets:
            sub = _submodule(module, path)
            if sub is None:
                continue
            handles.append(sub.register_forward_pre_hook(keep_call(name), with_kwargs=True))
            handles.append(sub.register_forward_hook(keep_output(name)))
        with torch.inference_mode():
            module(pixel_values, grid_thw)
    except Exception as exc:  # a broken modified copy: what ran before the failure is still compared
        last = next(reversed(kept), None) if sink is None else None
        recording.error = f"{type(exc).__name__}: {exc}" + (f" (after {last})" if last else "")
    finally:
        for handle in handles:
            handle.remove()
        if callable(method):
            del module.patch_positions
    return recording


class _Sink:
    """A write-only stand-in for the tensors dict: each assignment is handed to the callback."""

    def __init__(self, callback: Callable[[str, torch.Tensor], None]) -> None:
        self.callback = callback

    def __setitem__(self, name: str, tensor: torch.Tensor) -> None:
        self.callback(name, tensor)


def record_onnx(path: str | Path, inputs: VisionInputs) -> Recording:
    """Run an exported file with onnxruntime; its outputs are already named by stage."""
    from qwen3vl_inspect.export.onnx_export import config_from_metadata
    from qwen3vl_inspect.export.onnx_run import onnx_stage_outputs, open_session, session_metadata

    outputs = onnx_stage_outputs(path, inputs)
    session = open_session(path)
    config = config_from_metadata(session_metadata(session))
    patch_size, merge_size = (config.patch_size, config.spatial_merge_size) if config else (16, 2)
    types = {output.type for output in session.get_outputs()}  # e.g. "tensor(float16)" for a half export
    dtype = torch.float16 if "tensor(float16)" in types else torch.float32
    return Recording(Path(path).name, outputs, dtype, None, {}, patch_size, merge_size, onnx=True)


def record(side: Any, inputs: VisionInputs, label: str, substages: bool = True) -> Recording:
    """A module or an .onnx path, recorded on `inputs`."""
    if isinstance(side, (str, Path)):
        return record_onnx(side, inputs)
    if isinstance(side, nn.Module):
        return record_module(side, inputs, label, substages=substages)
    raise TypeError(f"can't compare a {type(side).__name__}: give a VisionEncoder, a transformers vision "
                    "module (or one with its submodule names), or the path of an .onnx file")
