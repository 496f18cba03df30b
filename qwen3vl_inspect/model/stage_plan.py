"""The encoder's stage plan: which stages one run goes through, in order, and what computes each.

Known from the config alone, before any weights exist, so a view can list the stages while the
model is still loading. The Trace walks this plan; a different tower would declare its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.stage_name import BLOCK_STEPS, StageName


@dataclass(frozen=True)
class PlannedStage:
    """One top-level stage: its name, its kind (what the Trace does and which teaching text fits), the
    encoder module that computes it (transformers' name, None for data-only steps) and the stage
    method of `VisionEncoder` it calls."""

    name: StageName
    kind: str
    module: str | None
    method: str | None

    @property
    def title(self) -> str:
        return self.name.title()


FIXED_STAGES = (
    # name, module, VisionEncoder method
    ("input", None, None),
    ("patchify", None, "patch_positions"),
    ("patch_embed", "patch_embed", "embed_patches"),
    ("pos_embed", "pos_embed", "position_embedding"),
    ("rotary", None, "rotary_embedding"),
)


def stage_plan(config: VisionConfig) -> list[PlannedStage]:
    """input → patchify → patch_embed → pos_embed → rotary → blocks (DeepStack taps after theirs) → merger."""
    plan = [PlannedStage(StageName(kind), kind, module, method) for kind, module, method in FIXED_STAGES]
    for layer in range(config.depth):
        block = StageName.block(layer)
        plan.append(PlannedStage(block, "block", block.module, "run_block"))
        if layer in config.deepstack_visual_indexes:
            tap = StageName.deepstack(config.deepstack_visual_indexes.index(layer))
            plan.append(PlannedStage(tap, "deepstack", tap.module, "deepstack_merge"))
    plan.append(PlannedStage(StageName("merger"), "merger", "merger", "merge"))
    return plan


def block_steps(layer: int) -> list[StageName]:
    """norm1 → attention → residual → norm2 → MLP → residual of one block."""
    return [StageName.block(layer).at_step(step) for step in BLOCK_STEPS]
