"""The building blocks of the vision tower, with transformers' parameter names.

Each class mirrors one in transformers' `modeling_qwen3_vl.py` (Qwen3VLVision*), so that a
state dict loads 1:1. Attention has two paths: SDPA (fast, no probabilities) and an explicit
softmax(QKᵀ·scale) in float32 whose probabilities pass through `attn.probs`, an identity
`HookPoint` that forward hooks can read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from qwen3vl_inspect.config import VisionConfig

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "silu": F.silu,
}

ATTENTION_IMPLEMENTATIONS = ("sdpa", "explicit")


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act {name!r}; supported: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class HookPoint(nn.Identity):
    """An identity module placed where a tensor has no module of its own (TransformerLens' idea):
    `register_forward_hook` on it sees the tensor, and the math is unchanged."""


class PatchEmbed(nn.Module):
    """Conv3d over (temporal 2 × 16 × 16) patches. Stride equals kernel, so the convolution is one
    matrix product per patch; `forward` computes it as such (same numbers, faster on CPU)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        kernel = (config.temporal_patch_size, config.patch_size, config.patch_size)
        self.proj = nn.Conv3d(config.in_channels, config.hidden_size, kernel_size=kernel, stride=kernel, bias=True)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.proj.weight.flatten(1)  # (hidden, C·T·P·P)
        return F.linear(pixel_values.to(weight.dtype), weight, self.proj.bias)  # (N, hidden)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each head's vector by its patch's (row, col) angles, in float32 like transformers."""
    x32 = x.float()
    cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()  # (N, 1, head_dim): same for every head
    return (x32 * cos + rotate_half(x32) * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention confined to each segment of `cu_seqlens` (one image frame each)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=True)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.probs = HookPoint()  # sees [heads, n, n] float32 probabilities per segment (explicit path only)
        self.implementation = "sdpa"

    def project_qkv(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries and keys (rotated) and values, each (heads, N, head_dim)."""
        seq = x.shape[0]
        qkv = self.qkv(x).reshape(seq, 3, self.num_heads, self.head_dim)  # (N, 3, heads, hd)
        cos, sin = (t[:, None] for t in rotary)  # (N, 1, hd): one rotation for queries and keys alike
        q, k = apply_rotary(qkv[:, :2], cos, sin).unbind(1)  # 2×(N, heads, hd), rotated in one pass
        return q.transpose(0, 1), k.transpose(0, 1), qkv[:, 2].transpose(0, 1)  # (heads, N, hd)

    def project_qk(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], heads: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated queries and keys of only the chosen heads, each (len(heads), N, head_dim).

        Uses the rows of `qkv` that produce those heads, so one head costs 1/num_heads of the projection.
        """
        hidden = self.num_heads * self.head_dim
        rows = torch.cat([torch.arange(h * self.head_dim, (h + 1) * self.head_dim) for h in heads]).to(x.device)
        rows = torch.cat([rows, rows + hidden])  # query rows, then key rows
        qk = F.linear(x, self.qkv.weight[rows], self.qkv.bias[rows])  # (N, 2·len(heads)·hd)
        q, k = qk.reshape(x.shape[0], 2, len(heads), self.head_dim).permute(1, 0, 2, 3).unbind(0)  # 2×(N, h, hd)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        return q.transpose(0, 1), k.transpose(0, 1)  # (h, N, hd)

    def probabilities(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """softmax(Q Kᵀ · scale) in float32 for one segment: (heads, n, n), rows sum to 1."""
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * self.scale  # (heads, n, n)
        return torch.softmax(scores, dim=-1)

    def forward(
        self, x: torch.Tensor, cu_seqlens: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        q, k, v = self.project_qkv(x, rotary)
        lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
        outputs = []
        segments = zip(torch.split(q, lengths, 1), torch.split(k, lengths, 1), torch.split(v, lengths, 1))
        for q_seg, k_seg, v_seg in segments:
            if self.implementation == "explicit":
                probs = self.probs(self.probabilities(q_seg, k_seg))
                out = torch.matmul(probs.to(v_seg.dtype), v_seg)  # (heads, n, hd)
            else:
                out = F.scaled_dot_product_attention(q_seg[None], k_seg[None], v_seg[None], scale=self.scale)[0]
            outputs.append(out)
        joined = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)  # (heads, N, hd)
        merged = joined.transpose(0, 1).reshape(x.shape[0], -1)  # (N, heads·hd)
        return self.proj(merged)


class MLP(nn.Module):
    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.linear_fc1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=True)
        self.linear_fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=True)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_fc2(self.act(self.linear_fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=1e-6)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=1e-6)
        self.attn = Attention(config)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, cu_seqlens: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cu_seqlens, rotary)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nn.Module):
    """Fuse each 2×2 block of neighbouring patches into one token of the language model's width.

    Patches arrive in merge order, so a block's four patches are consecutive rows and the
    "2×2 shuffle" is a reshape. The main merger normalises each patch *before* the shuffle
    (LayerNorm(hidden)); DeepStack mergers normalise the concatenation *after* it (LayerNorm(4·hidden)).
    """

    def __init__(self, config: VisionConfig, norm_after_shuffle: bool = False) -> None:
        super().__init__()
        self.merged_size = config.hidden_size * config.merge_unit
        self.norm_after_shuffle = norm_after_shuffle
        self.norm = nn.LayerNorm(self.merged_size if norm_after_shuffle else config.hidden_size, eps=1e-6)
        self.linear_fc1 = nn.Linear(self.merged_size, self.merged_size)
        self.linear_fc2 = nn.Linear(self.merged_size, config.out_hidden_size)

    def shuffle(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.merged_size)  # (N/4, 4·hidden): one row per 2×2 block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.shuffle(x)) if self.norm_after_shuffle else self.shuffle(self.norm(x))
        return self.linear_fc2(F.gelu(self.linear_fc1(x)))  # (N/4, out_hidden)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """transformers' initialisation: normal(0, std) weights, zero biases, unit LayerNorm."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv3d)):
            nn.init.normal_(sub.weight, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            nn.init.normal_(sub.weight, std=std)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)

