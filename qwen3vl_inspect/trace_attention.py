"""Attention queries of a Trace: maps, head means, rollout and head metrics, computed on demand.

A mixin so `tracing.py` stays about stepping; it needs the Trace's `encoder`, `config`, `grid_thw`,
`attention_budget`, `block_input(layer)`, `_rotary` and `_attention_cache`.
"""

from __future__ import annotations

from typing import Any

import torch

from qwen3vl_inspect import attention as attn_maps
from qwen3vl_inspect.errors import InputError

ATTENTION_CACHE_BYTES = 512 * 2**20


class AttentionQueries:
    def attention(self, layer: int, head: int | None = None, image: int = 0, frame: int = 0) -> torch.Tensor:
        """Attention probabilities of block `layer` for one image (frame), raster order, float32.

        [heads, n, n], or [n, n] for one head. Rows sum to 1. Cached (LRU, bounded by bytes).
        """
        if not 0 <= layer < self.config.depth:
            raise InputError(f"layer {layer} does not exist: blocks are numbered 0..{self.config.depth - 1}")
        if head is not None and not 0 <= head < self.config.num_heads:
            raise InputError(f"head {head} does not exist: heads are numbered 0..{self.config.num_heads - 1}")
        segment = attn_maps.find_segment(self.grid_thw, image, frame)
        heads = list(range(self.config.num_heads)) if head is None else [head]
        key = (layer, head, image, frame)
        if key in self._attention_cache:
            self._attention_cache.move_to_end(key)
            return self._attention_cache[key]
        all_heads = (layer, None, image, frame)
        if head is not None and all_heads in self._attention_cache:  # a slice of a map we already have
            self._attention_cache.move_to_end(all_heads)
            return self._attention_cache[all_heads][head]
        attn_maps.check_attention_budget(segment.size, len(heads), self.attention_budget, f"attention of layer {layer}")
        hidden = self.block_input(layer)
        with torch.inference_mode():
            probs = attn_maps.layer_probabilities(self.encoder.blocks[layer], hidden, self._rotary, segment, heads,
                                                  self.config.spatial_merge_size)
        result = probs[0] if head is not None else probs
        self._cache_attention(key, result)
        return result

    def _cache_attention(self, key: tuple, value: torch.Tensor) -> None:
        self._attention_cache[key] = value
        total = sum(t.numel() * t.element_size() for t in self._attention_cache.values())
        while total > ATTENTION_CACHE_BYTES and len(self._attention_cache) > 1:
            _, dropped = self._attention_cache.popitem(last=False)
            total -= dropped.numel() * dropped.element_size()

    def head_mean_attention(self, layer: int, image: int = 0, frame: int = 0) -> torch.Tensor:
        """[n, n] mean over heads, computed one head at a time so at most one head's map is extra."""
        total = None
        for head in range(self.config.num_heads):
            probs = self.attention(layer, head, image, frame)
            total = probs.clone() if total is None else total.add_(probs)
        return total / self.config.num_heads

    def rollout(self, layer: int | None = None, image: int = 0, frame: int = 0) -> torch.Tensor:
        """Attention rollout from block 0 up to `layer` (default: the last), raster order, [n, n]."""
        last = self.config.depth - 1 if layer is None else layer
        return attn_maps.rollout([self.head_mean_attention(i, image, frame) for i in range(last + 1)])

    def head_summary(self, layer: int, image: int = 0, frame: int = 0) -> dict[str, Any]:
        """Per-head entropy and mean attention distance (patches), and the layer's sink patches."""
        segment = attn_maps.find_segment(self.grid_thw, image, frame)
        entropy, distance, mean = [], [], None
        for head in range(self.config.num_heads):
            probs = self.attention(layer, head, image, frame)
            entropy.append(float(attn_maps.head_entropy(probs)))
            distance.append(float(attn_maps.mean_attention_distance(probs, segment.grid_h, segment.grid_w)))
            mean = probs.clone() if mean is None else mean.add_(probs)
        sinks = attn_maps.attention_sinks(mean / self.config.num_heads, segment.grid_w)
        return {"layer": layer, "entropy": entropy, "mean_distance": distance, "sinks": sinks,
                "uniform_entropy": float(torch.log(torch.tensor(float(segment.size))))}
