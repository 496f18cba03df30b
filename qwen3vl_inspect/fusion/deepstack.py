"""The DeepStack plan: which vision layer's features are added after which text decoder layer, and how big.

DeepStack feature k (merged from vision block `deepstack_visual_indexes[k]`) is added to the hidden
states coming out of text decoder layer k, at the visual positions only. Norms say whether an
injection is a nudge or a shove: each feature's mean per-token L2 norm next to the visual tokens'
input embeddings (the merger output) and the text tokens' embeddings; with a language model run
(`fusion.decoder`), next to the hidden states right before and after each addition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from rich.console import Group
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.formatting import fmt_float


def mean_norm(rows: torch.Tensor) -> float | None:
    """Mean per-row L2 norm, in float32; None for no rows."""
    if rows.numel() == 0:
        return None
    return float(rows.float().norm(dim=-1).mean())


@dataclass(frozen=True)
class Injection:
    index: int  # k: position in deepstack_features
    vision_layer: int | None  # vision block the feature was merged from (None: unknown)
    text_layer: int  # added to the output of this decoder layer
    feature_norm: float | None
    hidden_before: float | None = None  # mean norm at visual positions, layer output before the addition
    hidden_after: float | None = None
    text_hidden: float | None = None  # mean norm at text positions (untouched by the addition)

    @property
    def ratio(self) -> float | None:
        """feature norm / hidden norm it joins (from the decoder run when there is one)."""
        if self.feature_norm is None or not self.hidden_before:
            return None
        return self.feature_norm / self.hidden_before

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "vision_layer": self.vision_layer, "text_layer": self.text_layer,
                "feature_norm": self.feature_norm, "hidden_before": self.hidden_before,
                "hidden_after": self.hidden_after, "text_hidden": self.text_hidden, "ratio": self.ratio}


@dataclass(frozen=True)
class DeepStackPlan:
    injections: tuple[Injection, ...]
    visual_tokens: int
    visual_embed_norm: float | None  # merger output at the visual positions (layer-0 input)
    text_embed_norm: float | None  # text-token embeddings
    num_text_layers: int | None = None
    measured_with: str | None = None  # what produced hidden_before/after, when measured
    notes: tuple[str, ...] = field(default_factory=tuple)

    def with_measurements(self, rows: Sequence[dict[str, float | None]], how: str) -> DeepStackPlan:
        """Copy with hidden-state norms per injection (`rows[k]` has hidden_before/hidden_after/text_hidden)."""
        injections = tuple(replace(inj, **rows[inj.index]) for inj in self.injections)
        return replace(self, injections=injections, measured_with=how)

    def to_dict(self) -> dict[str, Any]:
        return {"injections": [i.to_dict() for i in self.injections], "visual_tokens": self.visual_tokens,
                "visual_embed_norm": self.visual_embed_norm, "text_embed_norm": self.text_embed_norm,
                "num_text_layers": self.num_text_layers, "measured_with": self.measured_with, "notes": list(self.notes)}

    def __rich__(self) -> Group:
        layers = f" of {self.num_text_layers}" if self.num_text_layers else ""
        table = Table(title=f"DeepStack: {len(self.injections)} injections into the first text layers{layers}",
                      title_justify="left")
        for column in ("feature", "from vision block", "added after text layer", "‖feature‖", "‖hidden‖ before",
                       "‖hidden‖ after", "ratio"):
            table.add_column(column, justify="left" if column == "feature" else "right")

        for inj in self.injections:
            vision = "?" if inj.vision_layer is None else str(inj.vision_layer)
            table.add_row(f"deepstack.{inj.index}", vision, str(inj.text_layer), fmt_float(inj.feature_norm, 3),
                          fmt_float(inj.hidden_before, 3), fmt_float(inj.hidden_after, 3), fmt_float(inj.ratio, 3))
        lines = Text(f"norms are mean per-token L2 over the {self.visual_tokens} visual positions; "
                     f"visual input embeddings (merger output) {fmt_float(self.visual_embed_norm, 3)}, "
                     f"text embeddings {fmt_float(self.text_embed_norm, 3)}", style="dim")
        lines.append("\nhidden norms: " + (self.measured_with or "not measured (needs the language model: --decoder)"),
                     style="dim")
        for note in self.notes:
            lines.append(f"\n{note}", style="yellow")
        return Group(table, lines)


def deepstack_plan(
    features: Sequence[torch.Tensor],
    visual_indexes: Sequence[int],
    inputs_embeds: torch.Tensor,
    visual_pos_mask: torch.Tensor,
    num_text_layers: int | None = None,
) -> DeepStackPlan:
    """The plan for features [Nv, D] each, given the fused inputs_embeds [1, S, D] and mask [1, S]."""
    mask = visual_pos_mask.reshape(-1).to(inputs_embeds.device)
    embeds = inputs_embeds.reshape(-1, inputs_embeds.shape[-1])  # (S, D)
    notes = []
    if visual_indexes and len(visual_indexes) != len(features):
        notes.append(f"{len(features)} DeepStack features but deepstack_visual_indexes has {len(visual_indexes)} "
                     "entries: the vision config and its output disagree")
    if num_text_layers is not None and len(features) > num_text_layers:
        notes.append(f"{len(features)} DeepStack features but only {num_text_layers} text layers: "
                     f"transformers skips features {num_text_layers}…{len(features) - 1}")
    injections = tuple(
        Injection(k, int(visual_indexes[k]) if k < len(visual_indexes) else None, k, mean_norm(feature))
        for k, feature in enumerate(features)
    )
    return DeepStackPlan(injections, int(mask.sum()), mean_norm(embeds[mask]), mean_norm(embeds[~mask]),
                         num_text_layers, None, tuple(notes))
