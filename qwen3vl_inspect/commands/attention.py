"""`qwen3vl-inspect attention`: one attention map over the resized image, saved as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from qwen3vl_inspect.commands.common import image_path, open_trace, run_with_progress
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.stage_name import StageName


def parse_query(text: str | None, grid_h: int, grid_w: int) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--query {text!r}: expected ROW,COL, e.g. --query 4,7") from None
    if not (0 <= row < grid_h and 0 <= col < grid_w):
        raise InputError(f"--query {row},{col} is outside the {grid_h}×{grid_w} patch grid (rows 0..{grid_h - 1}, cols 0..{grid_w - 1})")
    return row, col


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from qwen3vl_inspect.render.heatmap import overlay_figure

    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise InputError(f"{output}: the output must be a .png file")
    if not output.parent.exists():
        raise InputError(f"{output.parent}: folder does not exist; create it or choose another -o path")
    if not 0 <= args.layer < 10**4:
        raise InputError(f"--layer {args.layer}: blocks are numbered from 0")
    tr = open_trace(args, err)
    if not 0 <= args.image_index < len(tr.grid_thw):
        raise InputError(f"--image-index {args.image_index}: this input has {len(tr.grid_thw)} image(s)")
    # priced before the run: a map that can't fit is refused before a single block is computed
    tr.check_attention_request(args.layer, args.head, args.rollout, image=args.image_index)
    run_with_progress(tr, err, until=str(StageName.block(args.layer)))
    if tr.failure is not None:
        return 1
    _, grid_h, grid_w = tr.grid_thw[args.image_index].tolist()
    query = parse_query(args.query, grid_h, grid_w)
    with err.status("computing attention …"):
        if args.rollout:
            matrix = tr.rollout(args.layer, image=args.image_index)
            what = f"rollout to block {args.layer}"
        elif args.head is None:
            matrix = tr.head_mean_attention(args.layer, image=args.image_index)
            what = f"block {args.layer}, mean of {tr.config.num_heads} heads"
        else:
            matrix = tr.attention(args.layer, args.head, image=args.image_index)
            what = f"block {args.layer}, head {args.head}"
    if query is None:
        values = matrix.mean(0).reshape(grid_h, grid_w)  # column mean: attention each patch receives
        what += ", attention received (mean over queries)"
    else:
        values = matrix[query[0] * grid_w + query[1]].reshape(grid_h, grid_w)  # one query's row
        what += f", query patch (row {query[0]}, col {query[1]})"
    image = tr.inputs.images[args.image_index]
    image = image[0] if isinstance(image, list) else image
    figure = overlay_figure(image, values, title=f"{image_path(args).name}: {what}\n{tr.encoder.weights_source}", query=query)
    figure.savefig(output, bbox_inches="tight")
    out.print(f"wrote {output} ({what})", markup=False)
    return 0
