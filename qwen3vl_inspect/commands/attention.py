"""`qwen3vl-inspect attention`: one attention map over the resized image, saved as a PNG."""

from __future__ import annotations

import argparse

from rich.console import Console

from qwen3vl_inspect.commands.common import fail_code, image_path, load_encoder, load_inputs, run_with_progress
from qwen3vl_inspect.commands.output_path import check_output, write_failed
from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.memory_errors import ADVICE, guard
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.tracing import trace


def parse_query(text: str | None, grid_h: int, grid_w: int) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--query '{safe_text(text)}': expected ROW,COL, e.g. --query 4,7") from None
    if not (0 <= row < grid_h and 0 <= col < grid_w):
        raise InputError(f"--query {row},{col} is outside the {grid_h}×{grid_w} patch grid "
                         f"(rows 0..{grid_h - 1}, cols 0..{grid_w - 1})")
    return row, col


def _check_request(args: argparse.Namespace, config: VisionConfig, tokens: int, grid: tuple[int, int]) -> None:
    """Refuse a map whose peak would pass the attention budget, with advice that fits what was asked."""
    from qwen3vl_inspect.attention_store import HEAD, MEAN, ROLLOUT, check_request
    from qwen3vl_inspect.tracing import DEFAULT_BUDGET

    if not 0 <= args.layer < config.depth:
        raise InputError(f"--layer {args.layer} does not exist: blocks are numbered 0..{config.depth - 1}")
    if args.head is not None and not 0 <= args.head < config.num_heads:
        raise InputError(f"--head {args.head} does not exist: heads are numbered 0..{config.num_heads - 1}")
    what = ROLLOUT if args.rollout else MEAN if args.head is None else HEAD
    check_request(what, tokens, config.num_heads, DEFAULT_BUDGET, config.patch_size)
    parse_query(args.query, *grid)


def _grid_from_header(args: argparse.Namespace) -> tuple[int, int] | None:
    """The patch grid the image will get, from its header alone (no pixels decoded, no resize): a 4000×4000
    request is refused in a fraction of a second. None when the header can't tell (a sample name, a file
    Pillow can't open): the grid of the decoded image decides then."""
    from PIL import Image

    from qwen3vl_inspect.inputs.preprocess import smart_resize
    from qwen3vl_inspect.session import processor_config

    if args.image_index != 0:
        return None
    try:
        with Image.open(image_path(args)) as image:  # lazy: reads the header only
            width, height = image.size
    except Exception:  # noqa: BLE001 - any failure is reported properly by load_inputs
        return None
    cut = processor_config(args.model).with_pixels(args.min_pixels, args.max_pixels)  # as load_inputs will cut it
    factor = cut.patch_size * cut.merge_size
    new_h, new_w = smart_resize(height, width, factor, cut.min_pixels, cut.max_pixels)
    return new_h // cut.patch_size, new_w // cut.patch_size


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from qwen3vl_inspect.attention_maps import find_segment
    from qwen3vl_inspect.render.heatmap import overlay_figure
    from qwen3vl_inspect.session import check_model

    output = check_output(args.output, (".png",), inputs=[image_path(args)])
    config = check_model(args.model)  # config and shard headers only
    grid = _grid_from_header(args)
    if grid is not None:  # priced before the pixels are decoded: a map that can't fit costs no work at all
        _check_request(args, config, grid[0] * grid[1], grid)
    inputs = load_inputs(args)
    if not 0 <= args.image_index < len(inputs.grid_thw):
        raise InputError(f"--image-index {args.image_index}: this input has {len(inputs.grid_thw)} image(s)")
    segment = find_segment(inputs.grid_thw, args.image_index)
    _check_request(args, config, segment.size, (segment.grid_h, segment.grid_w))  # the decoded image's own grid
    tr = trace(load_encoder(args, err), inputs)
    tr.check_attention_request(args.layer, args.head, args.rollout, image=args.image_index)
    run_with_progress(tr, err, until=str(StageName.block(args.layer)))
    if tr.failure is not None:
        return fail_code(tr)
    _, grid_h, grid_w = tr.grid_thw[args.image_index].tolist()
    query = parse_query(args.query, grid_h, grid_w)
    with err.status("computing attention …"), guard(f"computing the attention map of block {args.layer}",
                                                   ADVICE["attention"]):
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
    with guard("drawing the PNG"):
        title = safe_text(f"{image_path(args).name}: {what}") + "\n" + safe_text(tr.encoder.weights_source)
        figure = overlay_figure(image, values, title=title, query=query)
        try:
            figure.savefig(output, bbox_inches="tight")
        except OSError as exc:
            raise write_failed(output, exc, "the map") from None
    out.print(f"wrote {safe_text(output)} ({what})", markup=False, highlight=False)
    return 0
