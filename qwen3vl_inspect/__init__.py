"""qwen3vl_inspect: look inside the Qwen3-VL vision encoder while it runs.

Importing this package loads torch, PIL and safetensors only; transformers, textual and
ipywidgets are imported lazily by the parts that need them.
"""

from qwen3vl_inspect.comparison import Comparison, compare
from qwen3vl_inspect.config import PRESETS, VisionConfig
from qwen3vl_inspect.errors import CheckpointError, ImageError, InputError
from qwen3vl_inspect.fusion import FusionResult, fuse, fuse_trace
from qwen3vl_inspect.inputs.image import load_image, preprocess, smart_resize
from qwen3vl_inspect.inputs.processor_config import ProcessorConfig
from qwen3vl_inspect.model.encoder import VisionEncoder, VisionOutput
from qwen3vl_inspect.probe import (
    ForwardHookManager,
    ModelArchitectureInspector,
    NonFiniteReport,
    ShapeTracer,
    TensorInspector,
    TensorStats,
    find_first_nonfinite,
    inject_nonfinite,
    monitor_memory,
    print_shapes,
    quick_inspect,
)
from qwen3vl_inspect.stage import Stage, StageError
from qwen3vl_inspect.tracing import Trace, trace

__all__ = [
    "PRESETS",
    "Comparison",
    "compare",
    "ForwardHookManager",
    "FusionResult",
    "ModelArchitectureInspector",
    "NonFiniteReport",
    "ShapeTracer",
    "Stage",
    "StageError",
    "TensorInspector",
    "TensorStats",
    "Trace",
    "find_first_nonfinite",
    "fuse",
    "fuse_trace",
    "inject_nonfinite",
    "monitor_memory",
    "print_shapes",
    "quick_inspect",
    "trace",
    "CheckpointError",
    "ImageError",
    "InputError",
    "VisionConfig",
    "VisionEncoder",
    "VisionOutput",
    "load_image",
    "preprocess",
    "ProcessorConfig",
    "smart_resize",
]
__version__ = "0.1.0"
