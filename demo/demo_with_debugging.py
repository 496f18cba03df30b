"""The seed debugging guide's walk-through, on the vision tower, with the project's probes.

    python demo/demo_with_debugging.py                      # the embedded demo image, the default model
    python demo/demo_with_debugging.py grace_hopper         # the photo matplotlib ships
    python demo/demo_with_debugging.py demo/images/shapes_640x480.png --model tiny
    QWEN3VL_INSPECT_BREAK=blocks.5.attn python demo/demo_with_debugging.py    # stop in pdb at that stage

Steps, in the guide's order: load (image → pixel_values, then the model) → architecture and parameters →
memory → hook the blocks → quick_inspect → print_shapes → the shape trace → the Trace stage by stage
(where a stage breakpoint stops) → the fusion count check → a NaN injected and found → memory again.
In VS Code, the launch configurations "Demo" and "Demo: stop at blocks.5.attn" run this file with
`justMyCode: false`, so you can step from here into torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.rule import Rule

from qwen3vl_inspect import (
    ForwardHookManager,
    ModelArchitectureInspector,
    ShapeTracer,
    VisionEncoder,
    find_first_nonfinite,
    inject_nonfinite,
    load_image,
    monitor_memory,
    preprocess,
    print_shapes,
    quick_inspect,
    trace,
)
from qwen3vl_inspect.breakpoints import ENV_VAR, break_patterns
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.session import DEFAULT_MODEL, demo_image_path

console = Console()


def image_source(name: str | None) -> Path:
    """A file path, or one of the names "demo" (embedded scene) and "grace_hopper" (matplotlib's sample photo)."""
    if name in (None, "demo"):
        return demo_image_path()
    if name == "grace_hopper":
        from matplotlib import cbook

        return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return Path(name)


def section(title: str) -> None:
    console.print(Rule(f"[bold]{title}", align="left"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="image file, or 'demo' / 'grace_hopper' (default: demo)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"checkpoint folder or preset (default {DEFAULT_MODEL})")
    parser.add_argument("--max-pixels", type=int, default=None, help="cap the resized image's pixel count")
    parser.add_argument("--nan-block", type=int, default=None, help="block whose MLP gets the planted NaN (default: depth // 3)")
    args = parser.parse_args(argv)

    # 1 · Load: the image first (fails fast on a bad path), then the model ----------------------------------
    section("1 · load the image and the model")
    path = image_source(args.image)
    inputs = preprocess([load_image(path)], max_pixels=args.max_pixels)
    console.print(f"{path.name}: {inputs.original_sizes[0][1]}×{inputs.original_sizes[0][0]} → "
                  f"{inputs.images[0].width}×{inputs.images[0].height} pixels, grid_thw {inputs.grid_thw.tolist()}")
    print_shapes({"pixel_values": inputs.pixel_values, "grid_thw": inputs.grid_thw}, title="Input shapes", console=console)
    with console.status(f"loading {args.model} …"):
        encoder = VisionEncoder.from_pretrained(args.model)
    config = encoder.config
    console.print(f"model {args.model}: {config.describe()} · weights: {encoder.weights_source}")

    # 2 · Architecture and parameter count -----------------------------------------------------------------
    section("2 · architecture (identical blocks folded) and parameters")
    ModelArchitectureInspector.print_architecture(encoder, max_depth=2, console=console)
    ModelArchitectureInspector.count_parameters(encoder, print_=True, console=console)
    monitor_memory("after loading", console=console)

    # 3 · Hook the blocks ----------------------------------------------------------------------------------
    section("3 · forward hooks on the first and last block and the merger")
    last = config.depth - 1
    hook_manager = ForwardHookManager()
    hook_manager.register_module_hooks(encoder, ["blocks.0", f"blocks.{last}", "merger"])
    try:
        with torch.inference_mode():
            output = encoder(inputs.pixel_values, inputs.grid_thw)
    finally:
        hook_manager.remove_hooks()  # a forgotten hook runs on every later forward
    hook_manager.print_summary(console=console)

    # 4 · Tensor stats and shapes of the outputs -----------------------------------------------------------
    section("4 · quick_inspect and print_shapes")
    quick_inspect("last_hidden_state", output.last_hidden_state, console=console)
    stats = quick_inspect("pooler_output (merger)", output.pooler_output, detailed=True, console=console)
    console.print(f"has_nan={stats.get('has_nan')} has_inf={stats.get('has_inf')}")
    print_shapes(output, title="Encoder output shapes", console=console)

    # 5 · Every module call's shapes -----------------------------------------------------------------------
    section("5 · the shape trace")
    ShapeTracer().trace(encoder, inputs.pixel_values, inputs.grid_thw).print_tree(max_depth=2, console=console)

    # 6 · Stage by stage: where QWEN3VL_INSPECT_BREAK stops ----------------------------------------------------
    section("6 · the Trace, stage by stage")
    patterns = break_patterns()
    console.print(f"{ENV_VAR}={','.join(patterns)}: the debugger stops at matching stages" if patterns
                  else f"set {ENV_VAR}=blocks.5.attn to stop in the debugger at that stage")
    tr = trace(encoder, inputs)
    for stage in tr:  # each step computes one stage; a matching stage calls breakpoint() here
        shapes = " ".join(str(list(s)) for s in stage.input_shapes)
        console.print(f"  {stage.name:12} {shapes:>20} → {list(stage.output_shape)}", highlight=False)
    same = torch.allclose(tr.output().pooler_output, output.pooler_output, atol=1e-5)
    console.print(f"stage by stage == one forward call: {same}")

    # 7 · The fusion check: features and placeholders must agree -------------------------------------------
    section("7 · vision features vs <|image_pad|> count")
    expected = int(inputs.grid_thw.prod(-1).sum()) // config.merge_unit
    console.print(f"expected vision tokens = t·h·w / merge² = {expected}; features: {output.pooler_output.shape[0]} "
                  f"× {output.pooler_output.shape[1]} (= the text model's hidden size)")
    try:
        from qwen3vl_inspect.fusion import fuse_trace

        fused = fuse_trace(tr)
        console.print(f"prompt: {fused.seq_len} tokens, {int(fused.visual_pos_mask.sum())} <|image_pad|> · "
                      f"inputs_embeds {list(fused.inputs_embeds.shape)}")
    except InputError as exc:  # a model without a known text side: the count check above still holds
        console.print(f"fusion skipped: {exc}")

    # 8 · A NaN injected, then found ------------------------------------------------------------------------
    section("8 · plant a NaN in one weight and find the module that made it")
    block = config.depth // 3 if args.nan_block is None else args.nan_block
    target = f"blocks.{block}.mlp.linear_fc1"
    saved = os.environ.pop(ENV_VAR, None)  # the stage breakpoints stopped the run above; not again here
    try:
        with inject_nonfinite(encoder, target, where="weight", index=0):
            report = find_first_nonfinite(encoder, inputs.pixel_values, inputs.grid_thw)
            bad = trace(encoder, inputs)
            bad.run()
            located = bad.locate_nonfinite()
    finally:
        if saved is not None:
            os.environ[ENV_VAR] = saved
    console.print(f"planted in {target}; the finder says:")
    console.print(report)
    if located is not None:
        stage, module, _ = located
        console.print(f"Trace.locate_nonfinite(): first stage {stage.name}, module {module}")
    console.print(f"weights restored: {bool(torch.isfinite(encoder.get_submodule(target).weight).all())}")

    monitor_memory("at the end", console=console)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InputError as exc:
        Console(stderr=True).print(f"error: {exc}", style="bold red", markup=False, highlight=False)
        sys.exit(2)
