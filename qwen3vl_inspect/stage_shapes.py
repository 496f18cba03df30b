"""Run the encoder stage by stage and record each stage's shapes: the non-interactive walk-through.

Uses the encoder's own stage methods, so the shapes are those `forward` produces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.model.encoder import VisionEncoder


@dataclass(frozen=True)
class StageShape:
    name: str
    inputs: str
    output: str
    dtype: str
    seconds: float
    note: str = ""


def _shape(tensor: torch.Tensor) -> str:
    return "[" + ", ".join(str(d) for d in tensor.shape) + "]"


def stage_shapes(
    encoder: VisionEncoder, inputs: VisionInputs, on_stage: Callable[[str], None] = lambda name: None
) -> list[StageShape]:
    """Every stage of one forward pass, in order, with input → output shapes and wall time."""
    rows: list[StageShape] = []
    device = next(encoder.parameters()).device
    pixels, grid = inputs.pixel_values.to(device), inputs.grid_thw.to(device)

    def record(name: str, before: str, after: torch.Tensor, started: float, note: str = "") -> None:
        rows.append(StageShape(name, before, _shape(after), str(after.dtype).removeprefix("torch."), time.perf_counter() - started, note))
        on_stage(name)

    sizes = ", ".join(f"{w}×{h}" for h, w in inputs.original_sizes)
    resized = ", ".join(f"{t}×{h}×{w}" for t, h, w in grid.tolist())
    rows.append(StageShape("input & resize", f"image {sizes} (w×h)", f"grid_thw {resized}", "int64", 0.0,
                           "sides rounded to multiples of 32"))
    rows.append(StageShape("patchify", "resized image", _shape(pixels), "float32", 0.0,
                           "16×16 patches × 2 frames × 3 channels, 2×2 merge order"))
    with torch.inference_mode():
        started = time.perf_counter()
        positions = encoder.patch_positions(grid)
        hidden = encoder.embed_patches(pixels)
        record("patch embedding", _shape(pixels), hidden, started, "Conv3d(3→hidden, kernel 2×16×16)")
        started = time.perf_counter()
        hidden = hidden + encoder.position_embedding(positions, hidden.dtype)
        side = encoder.config.num_grid_per_side
        record("position embedding", _shape(hidden), hidden, started, f"bilinear from the {side}×{side} learned grid")
        started = time.perf_counter()
        rotary = encoder.rotary_embedding(positions)
        record("rotary embedding", f"ids {_shape(positions.rotary_ids)}", rotary[0], started, "cos/sin per (row, col)")
        for index in range(len(encoder.blocks)):
            started = time.perf_counter()
            before = _shape(hidden)
            hidden = encoder.run_block(index, hidden, positions, rotary)
            tap = encoder.deepstack_merge(index, hidden)
            note = "" if tap is None else f"DeepStack tap → {_shape(tap)}"
            record(f"blocks.{index}", before, hidden, started, note)
        started = time.perf_counter()
        merged = encoder.merge(hidden)
        record("merger", _shape(hidden), merged, started, f"2×2 groups: {hidden.shape[0]} → {merged.shape[0]} tokens")
    return rows
