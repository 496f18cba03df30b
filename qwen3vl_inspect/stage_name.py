"""Stage names: the one place that knows how "blocks.3.attn" is spelled, split and titled.

Every view, command and the Trace name stages with these strings; code that needs the layer, the
block step or the DeepStack index asks a `StageName` instead of splitting the string itself.

    input · patchify · patch_embed · pos_embed · rotary ·
    blocks.{i} (steps blocks.{i}.norm1 | attn | residual1 | norm2 | mlp | residual2) ·
    deepstack.{k} (right after the block it taps) · merger · fusion (a view over the finished run)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qwen3vl_inspect.errors import InputError

if TYPE_CHECKING:
    from qwen3vl_inspect.config import VisionConfig

FIXED_TITLES = {
    "input": "input & resize",
    "patchify": "patchify",
    "patch_embed": "patch embedding",
    "pos_embed": "position embedding",
    "rotary": "rotary embedding",
    "merger": "patch merger",
    "fusion": "vision-to-text fusion",
}
BLOCK_STEPS = ("norm1", "attn", "residual1", "norm2", "mlp", "residual2")
STEP_TITLES = dict(norm1="norm1", attn="attention", residual1="residual", norm2="norm2", mlp="MLP", residual2="residual")
# the module inside a block that computes each step (residual sums have none)
STEP_MODULES = dict(norm1="norm1", attn="attn", norm2="norm2", mlp="mlp")
BLOCK, STEP, DEEPSTACK = "block", "step", "deepstack"


@dataclass(frozen=True)
class StageName:
    """A parsed stage name. `kind` is a fixed name ("patch_embed", "merger", …), "block", "step" or "deepstack"."""

    kind: str
    layer: int | None = None  # the block, for "block" and "step"
    step: str | None = None  # one of BLOCK_STEPS, for "step"
    index: int | None = None  # the DeepStack merger, for "deepstack"

    @classmethod
    def parse(cls, text: str | StageName) -> StageName:
        if isinstance(text, StageName):
            return text
        parts = str(text).split(".")
        try:
            if len(parts) == 1 and parts[0] in FIXED_TITLES:
                return cls(parts[0])
            if parts[0] == "blocks" and len(parts) == 2:
                return cls.block(_number(parts[1]))
            if parts[0] == "blocks" and len(parts) == 3 and parts[2] in BLOCK_STEPS:
                return cls.block(_number(parts[1])).at_step(parts[2])
            if parts[0] == "deepstack" and len(parts) == 2:
                return cls(DEEPSTACK, index=_number(parts[1]))
        except ValueError:
            pass
        raise InputError(f"{text!r} is not a stage name; stages are named like patch_embed, blocks.3, "
                         f"blocks.3.attn, deepstack.0, merger")

    @classmethod
    def block(cls, layer: int) -> StageName:
        return cls(BLOCK, layer=layer)

    @classmethod
    def deepstack(cls, index: int) -> StageName:
        return cls(DEEPSTACK, index=index)

    def __str__(self) -> str:
        if self.kind == BLOCK:
            return f"blocks.{self.layer}"
        if self.kind == STEP:
            return f"blocks.{self.layer}.{self.step}"
        if self.kind == DEEPSTACK:
            return f"deepstack.{self.index}"
        return self.kind

    # ---- relations --------------------------------------------------------------------------------

    @property
    def in_block(self) -> bool:
        """A block or one of its steps."""
        return self.kind in (BLOCK, STEP)

    @property
    def block_number(self) -> int:
        """The block of a block or step name, for code that has already checked `in_block`."""
        if self.layer is None or not self.in_block:
            raise ValueError(f"{self} is not in a block")
        return self.layer

    @property
    def block_step(self) -> str:
        """The step of a "step" name (one of BLOCK_STEPS)."""
        if self.step is None or self.kind != STEP:
            raise ValueError(f"{self} is not a block step")
        return self.step

    @property
    def deepstack_number(self) -> int:
        """The DeepStack merger of a "deepstack" name."""
        if self.index is None or self.kind != DEEPSTACK:
            raise ValueError(f"{self} is not a DeepStack merger")
        return self.index

    @property
    def top(self) -> StageName:
        """The top-level stage: a step's block, else itself."""
        return StageName.block(self.block_number) if self.kind == STEP else self

    def at_step(self, step: str | None) -> StageName:
        """This name's block at `step` (None: the block itself)."""
        layer = self.block_number
        return StageName(STEP, layer, step) if step is not None else StageName.block(layer)

    def in_layer(self, layer: int) -> StageName:
        """The same step of another block (`blocks.3.mlp` → `blocks.4.mlp`)."""
        return StageName.block(layer).at_step(self.step)

    @property
    def module(self) -> str | None:
        """The encoder module path that computes this stage (transformers' names), if one does."""
        if self.kind == BLOCK:
            return f"blocks.{self.layer}"
        if self.kind == STEP:
            sub = STEP_MODULES.get(self.step or "")
            return None if sub is None else f"blocks.{self.layer}.{sub}"
        if self.kind == DEEPSTACK:
            return f"deepstack_merger_list.{self.index}"
        return {"patch_embed": "patch_embed", "pos_embed": "pos_embed", "merger": "merger"}.get(self.kind)

    # ---- titles ---------------------------------------------------------------------------------------

    def short_title(self, config: VisionConfig | None = None) -> str:
        """What a list row under its block says: a step's own title ("attention")."""
        return STEP_TITLES[self.step or ""] if self.kind == STEP else self.title(config)

    def title(self, config: VisionConfig | None = None) -> str:
        if self.kind == BLOCK:
            return f"block {self.layer}"
        if self.kind == STEP:
            return f"block {self.layer} · {STEP_TITLES[self.step or '']}"
        if self.kind == DEEPSTACK:
            tapped = "" if config is None else f" (block {config.deepstack_visual_indexes[self.deepstack_number]})"
            return f"DeepStack merger {self.index}{tapped}"
        return FIXED_TITLES[self.kind]


def _number(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    return int(text)

