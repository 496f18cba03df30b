"""What `s` and `e` write: the current view as a PNG (matplotlib, with a title and a colour bar of the
raw values) and the trace summary as JSON, in the folder the command was run from, never overwriting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qwen3vl_inspect import stage_overlays
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.stage_overlays import Overlay, ViewSpec

if TYPE_CHECKING:
    from qwen3vl_inspect.tui.controller import Inspector


def free_path(folder: Path, stem: str, suffix: str) -> Path:
    path = folder / f"{stem}{suffix}"
    number = 1
    while path.exists():
        path = folder / f"{stem}-{number}{suffix}"
        number += 1
    return path


def png_name(inspector: Inspector, spec: ViewSpec) -> str:
    """`demo-blocks.3-h5-q4_7`: image, stage, and for attention the head (or mean/rollout) and query;
    `demo-fusion-seq58`: the fusion view and its selected token's sequence index."""
    parts = [inspector.image_path.stem, spec.stage]
    if spec.kind == stage_overlays.FUSION and inspector.fusion is not None:
        parts.append(f"seq{inspector.selected_token().index}")
    if spec.kind == stage_overlays.ATTENTION:
        parts.append("rollout" if spec.rollout else "mean" if spec.head is None else f"h{spec.head}")
        parts.append("received" if spec.query is None else f"q{spec.query[0]}_{spec.query[1]}")
    return "-".join(parts)


def save_png(inspector: Inspector, spec: ViewSpec, shown: Overlay | None) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from PIL import Image

    from qwen3vl_inspect.render.heatmap import overlay_figure

    path = free_path(inspector.out_dir, png_name(inspector, spec), ".png")
    what = shown.what if shown is not None else "not computed"
    title = f"{safe_text(inspector.image_path.name)} · {inspector.title(spec.stage)}: {what}\n{safe_text(inspector.weights)}"
    if shown is not None and spec.kind == stage_overlays.FUSION:
        title += "\n" + "\n".join(shown.notes)
    if shown is not None and shown.values is not None:
        query = shown.query
        if query is not None and shown.query_span > 1:  # the values are on the coarser (merged) grid
            query = (query[0] // shown.query_span, query[1] // shown.query_span)
        figure = overlay_figure(inspector.image, shown.values, title=title, query=query)
    else:
        picture = inspector.image.convert("RGB")
        if shown is not None and shown.colours is not None:
            colours = Image.fromarray(shown.colours).resize(picture.size, Image.Resampling.NEAREST)
            picture = Image.blend(picture, colours, 0.75)
        figure, ax = plt.subplots(figsize=(7, 7 * picture.height / picture.width + 0.6), dpi=110)
        ax.imshow(np.asarray(picture))
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


def export_json(inspector: Inspector) -> Path:
    with inspector.lock:  # summary() reads every block step's stats: recomputed under the Trace's lock
        data = inspector.trace.summary() if inspector.trace is not None else {"computed": 0}
    data["image"] = str(inspector.image_path)
    if inspector.nonfinite is not None:
        stage, module, report = inspector.nonfinite
        data["first_nonfinite_module"] = {"stage": stage, "module": module, "report": report}
    path = free_path(inspector.out_dir, f"{inspector.image_path.stem}-trace", ".json")
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
