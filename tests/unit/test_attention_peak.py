"""The attention store's real peak matches its price: no n×n map outlives its use while the next is made.

Counted with weak references to every map `compute_heads` returns (memory counters would depend on
the allocator): when a head is computed, at most the running sum may still be alive.
"""

from __future__ import annotations

import weakref

import torch

from qwen3vl_inspect.attention_maps import Segment
from qwen3vl_inspect.attention_store import AttentionStore

N, HEADS = 64, 6


def counting_store() -> tuple[AttentionStore, list[int]]:
    made: list[weakref.ref] = []
    alive_when_called: list[int] = []

    def compute_heads(layer: int, heads: list[int], segment: Segment) -> torch.Tensor:
        alive_when_called.append(sum(ref() is not None for ref in made))
        probs = torch.softmax(torch.randn(len(heads), segment.size, segment.size), dim=-1)
        made.append(weakref.ref(probs))
        return probs

    return AttentionStore(compute_heads, HEADS, budget=2**30), alive_when_called


def test_mean_of_heads_keeps_only_the_running_sum():
    store, alive = counting_store()
    segment = Segment(0, 0, 0, N, 8, 8)
    mean = store.mean(0, segment)
    assert torch.allclose(mean.sum(-1), torch.ones(N))
    assert alive == [0, 1, 1, 1, 1, 1]  # the first head's map is the running sum; no other map lingers


def test_rollout_keeps_one_layer_mean_at_a_time():
    store, alive = counting_store()
    store.rollout(2, Segment(0, 0, 0, N, 8, 8))
    assert max(alive) == 1 and len(alive) == 3 * HEADS
