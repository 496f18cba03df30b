"""What `fuse` returns: the language model's inputs plus a description of every position.

`FusionResult` holds the tensors transformers hands its language model (input_ids, inputs_embeds,
visual_pos_mask, position_ids, DeepStack features) and what a person needs to read them: each
token's text or image cell, the sources of the embeddings and tokens, the MRoPE split and the
DeepStack plan. Display lives in `fusion.display`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from qwen3vl_inspect.fusion.deepstack import DeepStackPlan
from qwen3vl_inspect.fusion.mrope import MRopeLayout
from qwen3vl_inspect.fusion.text_config import TextSide
from qwen3vl_inspect.fusion.tokens import IMAGE_PAD, VIDEO_PAD

if TYPE_CHECKING:
    from rich.console import RenderableType

MEDIA_KINDS = ("image", "video")


@dataclass(frozen=True)
class TokenInfo:
    """One position of the sequence: a text piece, or a merged visual token and where it sits on its image."""

    index: int
    token_id: int
    kind: str  # "text" | "special" | "image" | "video"
    text: str
    position: tuple[int, int, int]  # MRoPE (t, h, w)
    media: int | None = None  # row of grid_thw
    media_token: int | None = None  # merged-token index within that image/video (= its feature row)
    frame: int | None = None  # temporal patch
    row: int | None = None  # on the merged grid
    col: int | None = None
    box: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) pixels on the resized image

    @property
    def is_visual(self) -> bool:
        return self.kind in MEDIA_KINDS

    def describe(self) -> str:
        if not self.is_visual:
            return repr(self.text)
        frame = f" frame {self.frame}" if self.kind == "video" else ""
        return f"{self.kind} {self.media}{frame} token {self.media_token} (row {self.row}, col {self.col})"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class TokenRun:
    """Consecutive tokens shown as one line: a single text token, or all pads of one image / video frame."""

    start: int
    stop: int  # exclusive
    kind: str
    label: str
    media: int | None = None
    frame: int | None = None

    @property
    def count(self) -> int:
        return self.stop - self.start


@dataclass
class FusionResult:
    input_ids: torch.Tensor  # [1, S] int64
    inputs_embeds: torch.Tensor  # [1, S, D]: what the language model's first layer receives
    visual_pos_mask: torch.Tensor  # [1, S] bool
    position_ids: torch.Tensor  # [3, 1, S] (t, h, w)
    rope_delta: int
    mm_token_type_ids: torch.Tensor  # [1, S] 0 text, 1 image, 2 video
    deepstack_features: list[torch.Tensor]  # each [Nv, D], visual-position order (as transformers passes them)
    deepstack: DeepStackPlan
    tokens: list[TokenInfo]
    grid_thw: torch.Tensor  # [M, 3]
    media: tuple[str, ...]
    embeddings_source: str
    tokenizer_source: str
    text_side: TextSide
    mrope: MRopeLayout
    prompt: str | None = None  # the chat text before pad expansion (None when input_ids were given)
    checkpoint: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def random_embeddings(self) -> bool:
        return self.embeddings_source.startswith("random")

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    def runs(self) -> list[TokenRun]:
        """The sequence with each image's (or video frame's) pads collapsed into one run."""
        out: list[TokenRun] = []
        for token in self.tokens:
            last = out[-1] if out else None
            if (token.is_visual and last is not None and last.kind == token.kind and last.media == token.media
                    and last.frame == token.frame and last.stop == token.index):
                out[-1] = TokenRun(last.start, token.index + 1, last.kind, last.label, last.media, last.frame)
            elif token.is_visual:
                pad = IMAGE_PAD if token.kind == "image" else VIDEO_PAD
                out.append(TokenRun(token.index, token.index + 1, token.kind, pad, token.media, token.frame))
            else:
                out.append(TokenRun(token.index, token.index + 1, token.kind, token.text))
        return out

    def to_dict(self) -> dict[str, Any]:
        from qwen3vl_inspect.fusion.display import result_to_dict

        return result_to_dict(self)

    def __rich__(self) -> RenderableType:
        from qwen3vl_inspect.fusion.display import render_result

        return render_result(self)
