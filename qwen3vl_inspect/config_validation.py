"""Every problem of a vision config's values, found before a single tensor is allocated.

config.json is hand-edited and copied around; a `"depth": "4"`, a `num_heads` of 0 or a depth of
10**7 otherwise surfaces as a traceback deep inside `nn.Linear`, a division by zero, or a build that
never ends. All problems are listed at once (one line each), so a broken file is fixed in one go.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# field -> (smallest, largest) accepted value. The upper bounds are far above any published tower
# (depth 27, hidden 1152, mlp 4304) and only stop typos from allocating or building for hours.
INT_LIMITS: dict[str, tuple[int, int]] = {
    "depth": (1, 512),
    "hidden_size": (1, 32768),
    "intermediate_size": (1, 262144),
    "num_heads": (1, 1024),
    "in_channels": (1, 64),
    "patch_size": (1, 1024),
    "spatial_merge_size": (1, 64),
    "temporal_patch_size": (1, 64),
    "out_hidden_size": (1, 65536),
    "num_position_embeddings": (1, 1 << 22),
}
MAX_DEEPSTACK = 64


def supported_activations() -> tuple[str, ...]:
    from qwen3vl_inspect.model.layers import ACTIVATIONS  # lazily: layers imports config, config imports us

    return tuple(ACTIVATIONS)


def vision_config_problems(values: Mapping[str, Any]) -> list[str]:
    """One line per problem in `values` (VisionConfig field -> raw value from JSON); [] when all is well."""
    problems: list[str] = []
    ints: dict[str, int] = {}
    for name, (low, high) in INT_LIMITS.items():
        if name not in values:
            continue
        problem = int_problem(name, values[name], low, high)
        if problem:
            problems.append(problem)
        else:
            ints[name] = values[name]
    if "hidden_act" in values and values["hidden_act"] not in supported_activations():
        problems.append(f"hidden_act {values['hidden_act']!r} is not supported; use one of {', '.join(supported_activations())}")
    if "rope_theta" in values:
        theta = values["rope_theta"]
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not math.isfinite(theta) or theta <= 0:
            problems.append(f"rope_theta {theta!r} must be a positive number (10000.0 in Qwen3-VL)")
    problems += _deepstack_problems(values.get("deepstack_visual_indexes", ()), ints.get("depth"))
    problems += _cross_field_problems(ints)
    return problems


def int_problem(name: str, value: Any, low: int, high: int | None = None) -> str | None:
    """What is wrong with a JSON value that must be a whole number in low..high (no upper bound: None)."""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f" (write {value}, without quotes)" if isinstance(value, str) and value.strip().isdigit() else ""
        kind = "null" if value is None else f"{type(value).__name__} {value!r}"
        return f"{name} is {kind}; it must be a whole number{hint}"
    if high is None and value < low:
        return f"{name} {value} must be at least {low}"
    if high is not None and not low <= value <= high:
        return f"{name} {value} is outside {low}..{high}"
    return None


def _deepstack_problems(indexes: Any, depth: int | None) -> list[str]:
    if not isinstance(indexes, (list, tuple)) or len(indexes) > MAX_DEEPSTACK:
        return [f"deepstack_visual_indexes must be a list of block numbers (e.g. [8, 16, 24]), got {indexes!r}"]
    bad_type = [i for i in indexes if isinstance(i, bool) or not isinstance(i, int)]
    if bad_type:
        return [f"deepstack_visual_indexes holds non-integers {bad_type!r}"]
    if depth is not None:
        outside = [i for i in indexes if not 0 <= i < depth]
        if outside:
            return [f"deepstack_visual_indexes {outside} are outside 0..{depth - 1} (depth {depth})"]
    return []


def _cross_field_problems(ints: Mapping[str, int]) -> list[str]:
    """Checks that need two fields; each runs only when both fields are themselves valid."""
    problems = []
    hidden, heads = ints.get("hidden_size"), ints.get("num_heads")
    if hidden is not None and heads is not None:
        if hidden % heads:
            problems.append(f"hidden_size {hidden} is not divisible by num_heads {heads}")
        elif (hidden // heads) % 4:
            problems.append(f"head_dim {hidden // heads} (hidden_size/num_heads) must be divisible by 4 for 2D rotary")
    positions = ints.get("num_position_embeddings")
    if positions is not None and math.isqrt(positions) ** 2 != positions:
        problems.append(f"num_position_embeddings {positions} is not a square number (e.g. 2304 = 48x48)")
    return problems
