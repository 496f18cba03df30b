"""Vision-to-text fusion: how the merger's output becomes part of Qwen3-VL's language-model input.

    result = fuse(vision_output, grid_thw, text="Describe this image.", checkpoint=folder_or_preset)
    result = fuse_trace(trace)            # the same from a (finished or not) Trace

Real Qwen tokens (offline), placeholder expansion and the count check, embedding rows read straight
from safetensors, the scatter, DeepStack's plan and 3D MRoPE positions, all equal to transformers.
Nothing here imports transformers except `fusion.decoder` (the optional language-model run).
"""

from qwen3vl_inspect.fusion.deepstack import DeepStackPlan, Injection, deepstack_plan
from qwen3vl_inspect.fusion.fuse import DEFAULT_TEXT, fuse, fuse_trace
from qwen3vl_inspect.fusion.mrope import MRopeLayout, modality_types, mrope_layout, rope_index
from qwen3vl_inspect.fusion.result import FusionResult, TokenInfo, TokenRun
from qwen3vl_inspect.fusion.text_config import TextSide, text_side_for
from qwen3vl_inspect.fusion.tokens import (
    SPECIAL_TOKENS,
    QwenTokenizer,
    chat_prompt,
    expand_placeholders,
    load_tokenizer,
    video_timestamps,
)

__all__ = [
    "DEFAULT_TEXT",
    "DeepStackPlan",
    "FusionResult",
    "Injection",
    "MRopeLayout",
    "QwenTokenizer",
    "SPECIAL_TOKENS",
    "TextSide",
    "TokenInfo",
    "TokenRun",
    "chat_prompt",
    "deepstack_plan",
    "expand_placeholders",
    "fuse",
    "fuse_trace",
    "load_tokenizer",
    "modality_types",
    "mrope_layout",
    "rope_index",
    "text_side_for",
    "video_timestamps",
]
