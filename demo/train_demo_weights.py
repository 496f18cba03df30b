"""Train the demo weights: a small encoder with Qwen3-VL's exact architecture, on procedural shapes.

    python demo/train_demo_weights.py                       # the shipped run → qwen3vl_inspect/assets/demo_weights/
    python demo/train_demo_weights.py --steps 3 --out /tmp/w --eval-scenes 2   # smoke test

Objective (dense, one answer per patch): every patch predicts the shape class of the object it
shows (or background), the offset from itself to that object's centre and the object's size
(log patch count). A patch in the middle of a uniformly coloured shape sees only colour: to
answer it must gather the rest of its object. The centre/size terms carry most of the weight:
averaging the positions of one's own object's patches is exactly what an attention head can do,
and it is what makes the maps group objects. Shape class is the harder half (it needs edge and
corner features gathered from the object's rim) and within this budget it is learned only
partly; the log prints its accuracy on object patches. The per-patch classes are also read from
the main merger and each DeepStack merger (four patch labels per merged token), so every shipped
tensor is trained. The heads are training-only and not saved.

Scenes come from `qwen3vl_inspect.demo_scenes` (train split), go through the real `preprocess`,
and are packed several to a sequence with `cu_seqlens`, as the real model packs images.
Deterministic for a seed (same scenes, same initialisation, same order), on a fixed thread count.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.demo_scenes import (
    CLASS_NAMES,
    PatchLabels,
    format_table,
    make_scene,
    same_object_share,
    scene_inputs,
)
from qwen3vl_inspect.inputs.layout import raster_to_merge
from qwen3vl_inspect.model.encoder import VisionEncoder

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "qwen3vl_inspect" / "assets" / "demo_weights"
NUM_CLASSES = len(CLASS_NAMES)
GEOMETRY_WEIGHT = 2.0  # the centre-offset / size terms are what make attention gather the object

# Qwen3-VL's vision tower, shrunk: same patching (16 px, temporal 2), 2×2 merger, learned position
# grid + 2D rotary, three DeepStack taps (at the same relative depths as the 2B model's 5/11/17 of 24).
DEMO_CONFIG = VisionConfig(
    depth=6,
    hidden_size=128,
    intermediate_size=512,
    num_heads=4,  # head_dim 32
    out_hidden_size=256,
    num_position_embeddings=256,  # 16×16 grid: the training images are up to 16 patches a side
    deepstack_visual_indexes=(1, 3, 4),
    source="demo",
)


class Heads(nn.Module):
    """Training-only read-outs: per patch from `last_hidden_state`, four patches per merged token."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.patch = nn.Sequential(nn.LayerNorm(config.hidden_size), nn.Linear(config.hidden_size, NUM_CLASSES + 3))
        unit = config.merge_unit
        self.merged = nn.ModuleList(
            nn.Linear(config.out_hidden_size, unit * NUM_CLASSES) for _ in range(1 + len(config.deepstack_visual_indexes))
        )


def targets(labels: list[PatchLabels], grid_thw: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-patch targets, packed and in merge order: class, offset to the object's centre, log size."""
    classes, geometry, is_object = [], [], []
    for lab in labels:
        gh, gw = lab.instance.shape
        rows, cols = np.mgrid[0:gh, 0:gw].astype(np.float32)
        geo = np.zeros((gh, gw, 3), np.float32)
        for obj in np.unique(lab.instance[lab.instance > 0]):
            where = lab.instance == obj
            geo[where, 0] = (rows[where].mean() - rows[where]) / 4  # (dy, dx) in units of 4 patches
            geo[where, 1] = (cols[where].mean() - cols[where]) / 4
            geo[where, 2] = np.log(where.sum()) - 3  # object size, log patches, roughly centred
        classes.append(lab.shape_class.reshape(-1))
        geometry.append(geo.reshape(-1, 3))
        is_object.append((lab.instance > 0).reshape(-1))
    packed = {
        "classes": torch.from_numpy(np.concatenate(classes)),  # (N,) raster order
        "geometry": torch.from_numpy(np.concatenate(geometry)),  # (N, 3)
        "is_object": torch.from_numpy(np.concatenate(is_object)),  # (N,)
    }
    return {name: raster_to_merge(t, grid_thw, 2) for name, t in packed.items()}


def loss_and_accuracy(encoder: VisionEncoder, heads: Heads, scenes: list) -> tuple[torch.Tensor, float]:
    inputs, labels = scene_inputs(scenes)
    target = targets(labels, inputs.grid_thw)
    out = encoder(inputs.pixel_values, inputs.grid_thw)
    patch = heads.patch(out.last_hidden_state)  # (N, classes + 3)
    logits = patch[:, :NUM_CLASSES]
    loss = F.cross_entropy(logits, target["classes"])
    obj = target["is_object"]
    if obj.any():
        loss = loss + GEOMETRY_WEIGHT * F.smooth_l1_loss(patch[obj, NUM_CLASSES:], target["geometry"][obj])
    merged_targets = target["classes"]  # merge order: rows 4k..4k+3 are merged token k's patches
    for weight, head, features in zip((0.5, 0.2, 0.2, 0.2), heads.merged, [out.pooler_output, *out.deepstack_features]):
        merged_logits = head(features).reshape(-1, NUM_CLASSES)  # (N, classes): token k → its 4 patches
        loss = loss + weight * F.cross_entropy(merged_logits, merged_targets)
    # accuracy on object patches only: background is easy and would hide whether shapes are learned
    accuracy = float((logits[obj].argmax(-1) == target["classes"][obj]).float().mean()) if obj.any() else 0.0
    return loss, accuracy


def learning_rate(step: int, steps: int, peak: float) -> float:
    warmup = max(1, steps // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train(
    steps: int = 1500,
    batch: int = 12,
    lr: float = 1e-3,
    seed: int = 0,
    out: Path = DEFAULT_OUT,
    eval_scenes: int = 200,
    log_every: int = 50,
    dtype: torch.dtype = torch.float16,
) -> dict:
    """Train, save with `save_pretrained` (weights cast to `dtype`), reload and evaluate; returns a summary."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    encoder = VisionEncoder(DEMO_CONFIG, seed=seed).train()
    heads = Heads(DEMO_CONFIG)
    params = list(encoder.parameters()) + list(heads.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98)
    )
    print(f"demo encoder: {DEMO_CONFIG.describe()}, {sum(p.numel() for p in encoder.parameters()):,} parameters")
    print(f"training {steps} steps × {batch} scenes, lr {lr}, seed {seed}, {torch.get_num_threads()} threads")
    running_loss, running_acc = 0.0, 0.0
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr)
        scenes = [make_scene(step * batch + i, "train", seed) for i in range(batch)]
        loss, accuracy = loss_and_accuracy(encoder, heads, scenes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running_loss += float(loss.detach())
        running_acc += accuracy
        if (step + 1) % log_every == 0 or step + 1 == steps:
            count = (step % log_every) + 1
            print(f"step {step + 1:5d}  loss {running_loss / count:.3f}  shape accuracy {running_acc / count:.3f}"
                  f"  {time.perf_counter() - started:6.0f} s", flush=True)
            running_loss, running_acc = 0.0, 0.0
    train_seconds = time.perf_counter() - started

    encoder.to(dtype).save_pretrained(out)
    size = (Path(out) / "model.safetensors").stat().st_size
    print(f"saved {out} (model.safetensors {size / 2**20:.1f} MiB, {str(dtype).removeprefix('torch.')}); "
          f"training took {train_seconds:.0f} s")
    summary = {"train_seconds": train_seconds, "bytes": size, "out": str(out)}
    if eval_scenes:
        summary.update(evaluate(out, eval_scenes, seed))
    summary["total_seconds"] = time.perf_counter() - started
    print(f"wall time: training {train_seconds:.0f} s, total with evaluation {summary['total_seconds']:.0f} s")
    return summary


def evaluate(folder: Path, count: int = 200, seed: int = 0) -> dict:
    """The evaluation of `benchmarks/demo_attention.py`: shipped weights (read back as float32) vs random."""
    trained = VisionEncoder.from_pretrained(folder, dtype=torch.float32)
    config = trained.config
    random = VisionEncoder(config).eval()
    scenes = [make_scene(i, "eval", seed) for i in range(count)]
    share_trained, share_random = same_object_share(trained, scenes), same_object_share(random, scenes)
    print(format_table(share_trained, share_random))
    return {"trained": share_trained, "random": share_random}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=12, help="scenes per step, packed into one sequence")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--eval-scenes", type=int, default=200, help="held-out scenes for the final table (0: skip)")
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared machine: idle-waiting threads stall")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="dtype of the saved weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(args.steps, args.batch, args.lr, args.seed, args.out, args.eval_scenes, dtype=getattr(torch, args.dtype))


if __name__ == "__main__":
    main()
