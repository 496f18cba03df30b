"""Model-agnostic probes: they work on any `nn.Module` (ours or transformers') and never import
transformers, the Trace, or a view. Stats are dataclasses; display lives in `__rich__`.

Scoped forms remove their hooks in `finally`: `capture(model, names)` /
`ForwardHookManager().capture(...)`, `ShapeTracer().trace(model, *inputs)` /
`ShapeTracer().capture(model)`, `find_first_nonfinite(model, *inputs)`, `inject_nonfinite(...)`.
"""

from qwen3vl_inspect.probe.architecture import ModelArchitectureInspector, ParameterCount
from qwen3vl_inspect.probe.hooks import ForwardHookManager, HookRecord, capture
from qwen3vl_inspect.probe.memory import MemorySnapshot, memory_snapshot, monitor_memory
from qwen3vl_inspect.probe.numerics import NonFiniteReport, find_first_nonfinite, inject_nonfinite, nonfinite_parameters
from qwen3vl_inspect.probe.shapes import ShapeRecord, ShapeTracer
from qwen3vl_inspect.probe.tensors import Histogram, TensorInspector, TensorStats, print_shapes, quick_inspect, tensor_stats

__all__ = [
    "ForwardHookManager",
    "Histogram",
    "HookRecord",
    "MemorySnapshot",
    "ModelArchitectureInspector",
    "NonFiniteReport",
    "ParameterCount",
    "ShapeRecord",
    "ShapeTracer",
    "TensorInspector",
    "TensorStats",
    "capture",
    "find_first_nonfinite",
    "inject_nonfinite",
    "memory_snapshot",
    "monitor_memory",
    "nonfinite_parameters",
    "print_shapes",
    "quick_inspect",
    "tensor_stats",
]
