"""The Trace's one store of attention-derived arrays: head maps, head means, rollouts, head summaries.

Views and controllers keep only the user's choices and ask the Trace; every map lives here, under
one byte budget (least recently used first out), so nothing outside can pin gigabytes the store
cannot free. Requests are priced before they run (`request_bytes`): a request whose peak would pass
the attention budget is refused with advice that fits what was asked, before any work.

Peaks, in n×n float32 maps of one segment (n patches): one head 2 (scores, then probabilities);
all heads H+2 (filled one head at a time); mean of heads 3 (a sum and one head at a time); rollout
5 (the running product, one layer's mean, the mixed map and the new product).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from qwen3vl_inspect import attention_maps
from qwen3vl_inspect.attention_maps import BYTES_PER_PROB, Segment
from qwen3vl_inspect.errors import InputError

STORE_BYTES = 512 * 2**20
HEAD, HEADS, MEAN, ROLLOUT = "head", "heads", "mean", "rollout"
PEAK_MAPS = {HEAD: 2, MEAN: 3, ROLLOUT: 5}  # HEADS: num_heads + 2

# computes the probabilities of `heads` of block `layer` over one segment: (len(heads), n, n) float32, raster order
ComputeHeads = Callable[[int, list[int], Segment], torch.Tensor]


def request_bytes(what: str, tokens: int, num_heads: int) -> int:
    """Peak bytes of one request over a segment of `tokens` patches (see the module docstring)."""
    maps = num_heads + 2 if what == HEADS else PEAK_MAPS[what]
    return maps * tokens * tokens * BYTES_PER_PROB


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def check_request(what: str, tokens: int, num_heads: int, budget: int, patch_size: int = 16) -> None:
    """Refuse a request whose peak passes `budget`, with advice for this request (maps grow as n²)."""
    needed = request_bytes(what, tokens, num_heads)
    if needed <= budget:
        return
    maps = needed // (tokens * tokens * BYTES_PER_PROB)
    fitting = int((budget / (maps * BYTES_PER_PROB)) ** 0.5)  # patches that would fit
    max_pixels = max(fitting * patch_size * patch_size // 1024 * 1024, 32 * 32)
    label = {HEAD: "one head's map", HEADS: f"all {num_heads} heads' maps", MEAN: "the mean of heads",
             ROLLOUT: "attention rollout"}[what]
    advice = f"re-run with --max-pixels {max_pixels} or less"
    one_head = request_bytes(HEAD, tokens, num_heads)
    if what in (HEADS, MEAN) and one_head <= budget:
        advice = f"ask for one head (--head H, {_size(one_head)}), or {advice}"
    raise InputError(f"{label} over {tokens} patches needs {_size(needed)} at its peak, over the "
                     f"{_size(budget)} attention budget; {advice}")


class AttentionStore:
    """Maps keyed by (what, layer, head, image, frame); summaries beside them (a few numbers each)."""

    def __init__(self, compute_heads: ComputeHeads, num_heads: int, budget: int, store_bytes: int = STORE_BYTES) -> None:
        self.compute_heads, self.num_heads = compute_heads, num_heads
        self.budget, self.store_bytes = budget, store_bytes
        self._maps: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._summaries: dict[tuple, dict[str, Any]] = {}

    # ---- the cache ----------------------------------------------------------------------------------

    def _get(self, key: tuple) -> torch.Tensor | None:
        found = self._maps.get(key)
        if found is not None:
            self._maps.move_to_end(key)
        return found

    def _put(self, key: tuple, value: torch.Tensor) -> torch.Tensor:
        self._maps[key] = value
        total = sum(t.numel() * t.element_size() for t in self._maps.values())
        while total > self.store_bytes and len(self._maps) > 1:
            _, dropped = self._maps.popitem(last=False)
            total -= dropped.numel() * dropped.element_size()
        return value

    @property
    def bytes_held(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._maps.values())

    def holds(self, what: str, layer: int, segment: Segment, head: int | None = None) -> bool:
        """True when the request is answered from memory (a slice or a mean of a held all-heads map counts)."""
        where = (layer, segment.image, segment.frame)
        if (HEADS, None, *where) in self._maps:
            return what in (HEAD, HEADS, MEAN)
        return (what, head, *where) in self._maps

    # ---- requests -----------------------------------------------------------------------------------

    def heads(self, layer: int, segment: Segment) -> torch.Tensor:
        """[heads, n, n]: every head of one block, filled one head at a time."""
        key = (HEADS, None, layer, segment.image, segment.frame)
        found = self._get(key)
        if found is not None:
            return found
        check_request(HEADS, segment.size, self.num_heads, self.budget)
        maps = torch.empty(self.num_heads, segment.size, segment.size)
        for head in range(self.num_heads):
            maps[head] = self.compute_heads(layer, [head], segment)[0]
        return self._put(key, maps)

    def head(self, layer: int, head: int, segment: Segment) -> torch.Tensor:
        """[n, n]: one head (a view into the all-heads map when that is held)."""
        every = self._get((HEADS, None, layer, segment.image, segment.frame))
        if every is not None:
            return every[head]
        key = (HEAD, head, layer, segment.image, segment.frame)
        found = self._get(key)
        if found is not None:
            return found
        check_request(HEAD, segment.size, self.num_heads, self.budget)
        return self._put(key, self.compute_heads(layer, [head], segment)[0])

    def mean(self, layer: int, segment: Segment) -> torch.Tensor:
        """[n, n]: mean over heads, summed one head at a time (single heads are not kept on the way)."""
        key = (MEAN, None, layer, segment.image, segment.frame)
        found = self._get(key)
        if found is not None:
            return found
        every = self._get((HEADS, None, layer, segment.image, segment.frame))
        if every is not None:
            return self._put(key, every.mean(0))
        check_request(MEAN, segment.size, self.num_heads, self.budget)
        return self._put(key, self._uncached_mean(layer, segment))

    def rollout(self, layer: int, segment: Segment) -> torch.Tensor:
        """[n, n]: rollout from block 0 to `layer`, multiplied as it goes (one layer's mean alive at a time)."""
        key = (ROLLOUT, None, layer, segment.image, segment.frame)
        found = self._get(key)
        if found is not None:
            return found
        check_request(ROLLOUT, segment.size, self.num_heads, self.budget)
        result = None
        for below in range(layer + 1):
            held = self._maps.get((MEAN, None, below, segment.image, segment.frame))
            mean = held if held is not None else self._uncached_mean(below, segment)
            result = attention_maps.rollout_step(result, mean)
            del mean, held  # this layer's mean is folded in: free it before the next layer's is computed
        return self._put(key, result)

    def _uncached_mean(self, layer: int, segment: Segment) -> torch.Tensor:
        """Mean of heads without storing it: from a held all-heads map, else one head at a time."""
        every = self._maps.get((HEADS, None, layer, segment.image, segment.frame))
        if every is not None:
            return every.mean(0)
        total = None
        for head in range(self.num_heads):
            probs = self.compute_heads(layer, [head], segment)[0]
            total = probs if total is None else total.add_(probs)
            del probs  # else the last head's map stays alive while the next one is computed: a 4th map at the peak
        return total.div_(self.num_heads)

    def summary_at_hand(self, layer: int, image: int = 0, frame: int = 0) -> dict[str, Any] | None:
        return self._summaries.get((layer, image, frame))

    def summary(self, layer: int, segment: Segment) -> dict[str, Any]:
        """Per-head entropy and mean distance (patches) and the block's sink patches; computed once."""
        key = (layer, segment.image, segment.frame)
        if key in self._summaries:
            return self._summaries[key]
        every = self.heads(layer, segment)
        entropy, distance = [], []
        for probs in every:
            entropy.append(float(attention_maps.head_entropy(probs)))
            distance.append(float(attention_maps.mean_attention_distance(probs, segment.grid_h, segment.grid_w)))
        mean = self.mean(layer, segment)
        self._summaries[key] = {
            "layer": layer, "entropy": entropy, "mean_distance": distance,
            "sinks": attention_maps.attention_sinks(mean, segment.grid_w),
            "uniform_entropy": float(torch.log(torch.tensor(float(segment.size)))),
        }
        return self._summaries[key]
