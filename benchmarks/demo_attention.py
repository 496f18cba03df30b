"""Do the demo weights group an object's patches? Same-object attention share, per layer, vs random weights.

    python benchmarks/demo_attention.py [--weights FOLDER] [--scenes 200] [--seed 0]

On held-out generated scenes (`qwen3vl_inspect.demo_scenes`, split "eval": never seen in
training), every patch lying fully inside an object is a query; its share is the attention
(mean over heads, from `trace(...).attention(layer)`) that lands on patches of the same object.
The table gives the mean share per layer for the shipped weights and for random weights of the
same size (`VisionEncoder(config)`), and the share uniform attention would give.
Target: best layer ≥ 0.5 and ≥ 3× the random share.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from qwen3vl_inspect.demo_scenes import format_table, make_scene, same_object_share
from qwen3vl_inspect.model.encoder import VisionEncoder

DEMO_WEIGHTS = Path(__file__).resolve().parents[1] / "qwen3vl_inspect" / "assets" / "demo_weights"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEMO_WEIGHTS)
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="scene seed (the training script's seed)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    trained = VisionEncoder.from_pretrained(args.weights, dtype=torch.float32)
    random = VisionEncoder(trained.config).eval()
    scenes = [make_scene(i, "eval", args.seed) for i in range(args.scenes)]
    share_trained = same_object_share(trained, scenes)
    share_random = same_object_share(random, scenes)
    print(f"weights: {args.weights} (read as float32); random: {random.weights_source}")
    print(format_table(share_trained, share_random))
    best = share_trained.best_layer
    value, ratio = share_trained.per_layer[best], share_trained.per_layer[best] / share_random.per_layer[best]
    ok = value >= 0.5 and ratio >= 3
    print(f"\nbest layer {best}: {value:.3f}, {ratio:.1f}× random — target ≥ 0.5 and ≥ 3×: {'met' if ok else 'NOT met'}")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
