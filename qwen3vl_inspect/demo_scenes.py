"""Procedural scenes of coloured shapes, with the ground truth of which object every patch shows.

The demo weights are trained on these scenes (`demo/train_demo_weights.py`), and the same scenes
measure what the weights learned (`benchmarks/demo_attention.py`): for a patch that lies fully
inside an object, how much of its attention stays on that object's patches. Living in the package
(numpy + PIL only) lets any view draw a fresh scene together with its object outlines.

Scene `index` of a `split` is a pure function of (seed, split, index), so the held-out evaluation
scenes never coincide with training scenes and every run sees the same pictures.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from qwen3vl_inspect.inputs.image import VisionInputs, preprocess
from qwen3vl_inspect.inputs.preprocess import smart_resize

SHAPES = ("ellipse", "rectangle", "triangle", "star", "cross")  # class k + 1; class 0 is background
CLASS_NAMES = ("background",) + SHAPES
SPLITS = {"train": 0, "eval": 1}
SIDE_RANGE = (128, 256)  # drawn image sides in pixels → 8..16 patches a side after preprocess
MIN_PIXELS, MAX_PIXELS = 32 * 32, 256 * 256  # preprocess bounds: small images stay small
PATCH = 16


@dataclass
class Scene:
    image: Image.Image  # RGB, as drawn (preprocess resizes it to multiples of 32)
    instances: np.ndarray  # (H, W) uint8: 0 background, k = k-th object in painting order
    classes: list[int]  # classes[k - 1] = class index (1..len(SHAPES)) of object k


@dataclass
class PatchLabels:
    """Ground truth on the patch grid (raster order) of the resized image."""

    instance: np.ndarray  # (gh, gw) int64: object covering most of the patch, 0 = background
    full: np.ndarray  # (gh, gw) bool: the patch lies entirely inside one object's visible part
    shape_class: np.ndarray  # (gh, gw) int64: class of `instance` (0 = background)


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS[split], index])


def _polygon(kind: str, cx: float, cy: float, size: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Vertices of one shape of radius ~`size` pixels around (cx, cy), randomly rotated and stretched."""
    turn = rng.uniform(0, 2 * np.pi)
    if kind == "ellipse":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([size * rng.uniform(0.75, 1.0) * np.cos(t), size * rng.uniform(0.6, 1.0) * np.sin(t)], 1)
    elif kind == "rectangle":
        a, b = size * rng.uniform(0.65, 0.95), size * rng.uniform(0.45, 0.95)
        pts = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
        turn = 0.0 if rng.random() < 0.5 else turn  # half of them axis-aligned, like most drawn boxes
    elif kind == "triangle":
        t = np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.3, 0.3, 3)
        pts = size * rng.uniform(0.95, 1.2) * np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "star":
        t = np.arange(10) * np.pi / 5
        radius = np.where(np.arange(10) % 2 == 0, size * 1.1, size * rng.uniform(0.45, 0.6))
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
    elif kind == "cross":
        a, w = size, size * rng.uniform(0.3, 0.42)
        pts = np.array([[-w, -a], [w, -a], [w, -w], [a, -w], [a, w], [w, w], [w, a], [-w, a], [-w, w], [-a, w],
                        [-a, -w], [-w, -w]])
    else:
        raise ValueError(f"unknown shape {kind!r}")
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    pts = pts @ rot.T + [cx, cy]  # (vertices, 2) in pixels
    return [tuple(p) for p in pts.tolist()]


def _mask(size: tuple[int, int], polygon: list[tuple[float, float]]) -> np.ndarray:
    layer = Image.new("L", size, 0)
    ImageDraw.Draw(layer).polygon(polygon, fill=255)
    return np.asarray(layer) > 0  # (H, W)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Muted textured background (gradient, stripes, checks or blotches), float (H, W, 3)."""
    c1 = _hsv(rng.random(), rng.uniform(0.0, 0.4), rng.uniform(0.35, 0.95))
    c2 = _hsv(rng.random(), rng.uniform(0.0, 0.4), rng.uniform(0.35, 0.95))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    kind = rng.integers(4)
    if kind == 0:  # linear gradient in a random direction
        angle = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        t = (t - t.min()) / max(np.ptp(t), 1.0)
    elif kind == 1:  # soft stripes
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 40)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        t = 0.3 * t + 0.35
    elif kind == 2:  # faint checkerboard
        cell = int(rng.integers(8, 33))
        t = 0.35 + 0.3 * (((yy // cell) + (xx // cell)) % 2)
    else:  # blurred noise blotches
        coarse = Image.fromarray((rng.random((max(h // 16, 2), max(w // 16, 2))) * 255).astype(np.uint8))
        t = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC)).astype(np.float64) / 255
    return c1 * (1 - t[..., None]) + c2 * t[..., None]


def _object_colours(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Saturated colours with hues at least 0.09 apart, so objects in one scene are told apart by colour."""
    hues: list[float] = []
    while len(hues) < count:
        hue = rng.random()
        if all(min(abs(hue - other), 1 - abs(hue - other)) > 0.09 for other in hues):
            hues.append(hue)
    return [_hsv(hue, rng.uniform(0.55, 1.0), rng.uniform(0.5, 1.0)) for hue in hues]


def make_scene(index: int, split: str = "train", seed: int = 0) -> Scene:
    """Scene `index` of `split`: 2-5 overlapping shapes on a textured, noisy background."""
    rng = _rng(seed, split, index)
    h, w = (int(v) for v in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1, 2))
    canvas = _background(h, w, rng)
    instances = np.zeros((h, w), np.uint8)
    original_area: list[int] = []
    classes: list[int] = []
    wanted = int(rng.integers(2, 6))
    colours = _object_colours(wanted, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for _ in range(wanted * 8):  # placements that would hide half of an earlier object are retried
        if len(classes) == wanted:
            break
        kind = int(rng.integers(len(SHAPES)))
        size = rng.uniform(20, max(21.0, 0.36 * min(h, w)))
        cx, cy = rng.uniform(0.6 * size, w - 0.6 * size), rng.uniform(0.6 * size, h - 0.6 * size)
        mask = _mask((w, h), _polygon(SHAPES[kind], cx, cy, size, rng))
        # keep every earlier object at least half visible, so each stays recognisable
        covered = [np.count_nonzero(mask & (instances == k + 1)) for k in range(len(classes))]
        visible = [np.count_nonzero(instances == k + 1) for k in range(len(classes))]
        if mask.sum() < 200 or any(v - c < 0.5 * a for v, c, a in zip(visible, covered, original_area)):
            continue
        colour = colours[len(classes)]
        angle = rng.uniform(0, 2 * np.pi)
        shade = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / size  # -1..1 across the object
        fill = colour * (1 + rng.uniform(0.0, 0.15) * shade[..., None])
        canvas[mask] = fill[mask]
        if rng.random() < 0.5:  # a darker outline, as in hand-drawn figures
            width = int(rng.integers(1, 4))
            eroded = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * width + 1))) > 0
            canvas[mask & ~eroded] = colour * rng.uniform(0.35, 0.6)
        instances[mask] = len(classes) + 1
        original_area.append(int(mask.sum()))
        classes.append(kind + 1)
    canvas = canvas + rng.normal(0, rng.uniform(2, 14), canvas.shape)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return Scene(image, instances, classes)


def patch_labels(scene: Scene, grid_h: int, grid_w: int) -> PatchLabels:
    """Which object each patch of the resized image shows (nearest-neighbour resize of the instance map)."""
    resized = Image.fromarray(scene.instances).resize((grid_w * PATCH, grid_h * PATCH), Image.Resampling.NEAREST)
    blocks = np.asarray(resized).reshape(grid_h, PATCH, grid_w, PATCH).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(grid_h, grid_w, PATCH * PATCH)  # (gh, gw, pixels of the patch)
    ids = np.arange(len(scene.classes) + 1)
    counts = (blocks[..., None] == ids).sum(2)  # (gh, gw, objects + 1)
    instance = counts.argmax(-1).astype(np.int64)
    full = (blocks == blocks[..., :1]).all(-1) & (blocks[..., 0] > 0)
    lookup = np.array([0] + scene.classes, dtype=np.int64)
    return PatchLabels(instance, full, lookup[instance])


def scene_grid(scene: Scene) -> tuple[int, int]:
    """Patch grid (rows, cols) `preprocess` gives this scene with MIN_PIXELS/MAX_PIXELS."""
    h, w = smart_resize(scene.image.height, scene.image.width, 2 * PATCH, MIN_PIXELS, MAX_PIXELS)
    return h // PATCH, w // PATCH


def scene_inputs(scenes: list[Scene]) -> tuple[VisionInputs, list[PatchLabels]]:
    """Pack scenes into one encoder input (through the real `preprocess`) with their patch labels."""
    inputs = preprocess([s.image for s in scenes], min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    labels = [patch_labels(s, int(gh), int(gw)) for s, (_, gh, gw) in zip(scenes, inputs.grid_thw.tolist())]
    return inputs, labels


@dataclass
class SameObjectShare:
    """Mean share of a query's attention (mean over heads) that lands on its own object's patches."""

    per_layer: list[float]  # one value per block
    chance: float  # share if attention were uniform: the object's patch count over all patches
    queries: int  # query patches counted (fully inside an object)
    scenes: int

    @property
    def best_layer(self) -> int:
        return int(np.argmax(self.per_layer))


def same_object_share(encoder: torch.nn.Module, scenes: list[Scene]) -> SameObjectShare:
    """Evaluate each scene alone through `trace(...).attention(layer)` (raster-order maps)."""
    from qwen3vl_inspect.tracing import trace  # views-level module; keep this file importable without it

    depth = encoder.config.depth
    totals, chance, queries = np.zeros(depth), 0.0, 0
    for scene in scenes:
        inputs, (labels,) = scene_inputs([scene])
        instance = torch.from_numpy(labels.instance.reshape(-1))  # (n,) raster order
        query = torch.from_numpy(labels.full.reshape(-1)).nonzero()[:, 0]  # (q,)
        if len(query) == 0:
            continue
        same = (instance[query][:, None] == instance[None, :]).float()  # (q, n)
        chance += float(same.sum(-1).sum()) / len(instance)
        queries += len(query)
        tr = trace(encoder, inputs)
        for layer in range(depth):
            probs = tr.attention(layer).mean(0)  # (n, n), mean over heads
            totals[layer] += float((probs[query] * same).sum())
    return SameObjectShare([float(t / max(queries, 1)) for t in totals], chance / max(queries, 1), queries, len(scenes))


def format_table(trained: SameObjectShare, random: SameObjectShare) -> str:
    """Markdown table: per layer, trained share, random share and their ratio."""
    lines = [
        f"same-object attention share, {trained.scenes} held-out scenes, {trained.queries} interior query patches",
        f"(uniform attention would give {trained.chance:.3f})",
        "",
        "| layer | demo weights | random weights | ratio |",
        "|---:|---:|---:|---:|",
    ]
    for layer, (a, b) in enumerate(zip(trained.per_layer, random.per_layer)):
        mark = " ◀ best" if layer == trained.best_layer else ""
        lines.append(f"| {layer} | {a:.3f} | {b:.3f} | {a / b:.1f}×{mark} |")
    return "\n".join(lines)
