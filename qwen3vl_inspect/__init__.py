"""qwen3vl_inspect: look inside the Qwen3-VL vision encoder while it runs.

Importing this package loads torch, PIL and safetensors only; transformers, textual and
ipywidgets are imported lazily by the parts that need them.
"""

from qwen3vl_inspect.config import PRESETS, VisionConfig
from qwen3vl_inspect.errors import CheckpointError, ImageError, InputError
from qwen3vl_inspect.inputs.image import load_image, preprocess, smart_resize
from qwen3vl_inspect.model.encoder import VisionEncoder, VisionOutput

__all__ = [
    "PRESETS",
    "CheckpointError",
    "ImageError",
    "InputError",
    "VisionConfig",
    "VisionEncoder",
    "VisionOutput",
    "load_image",
    "preprocess",
    "smart_resize",
]
__version__ = "0.1.0"
