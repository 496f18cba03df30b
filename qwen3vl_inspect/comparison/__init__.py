"""Compare two runs of the vision tower stage by stage and name the first divergence.

Golden vs modified, fp32 vs bf16, ours vs transformers, PyTorch vs ONNX: see `comparison.run.compare`.
"""

from qwen3vl_inspect.comparison.result import Comparison, StageComparison
from qwen3vl_inspect.comparison.run import compare

__all__ = ["Comparison", "StageComparison", "compare"]
