"""Encoder speed: qwen3vl_inspect's VisionEncoder vs transformers' Qwen3VLVisionModel, same weights, same run.

    python benchmarks/encoder_speed.py [--preset qwen3-vl-2b] [--patches 432 2304] [--dtypes float32 bfloat16] [--repeats 5]

Prints the median wall time of each and the ratio (ours / transformers; < 1 means we are faster).
"""

from __future__ import annotations

import argparse
import platform

import torch
from _common import interleaved_medians
from rich.console import Console
from rich.table import Table

from qwen3vl_inspect import VisionConfig, VisionEncoder

# grid (t, h, w) for each patch count: 432 = the seed's 400×300 image, 2304 = a 768×768 image
GRIDS = {432: (1, 18, 24), 2304: (1, 48, 48), 1024: (1, 32, 32)}


def transformers_model(encoder: VisionEncoder) -> torch.nn.Module:
    from transformers import Qwen3VLVisionConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel

    fields = encoder.config.to_dict()
    fields.pop("model_type")
    config = Qwen3VLVisionConfig(**fields)
    config._attn_implementation = "sdpa"
    model = Qwen3VLVisionModel(config).eval()
    model.load_state_dict(encoder.state_dict(), strict=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="qwen3-vl-2b")
    parser.add_argument("--patches", type=int, nargs="+", default=[432, 2304], choices=sorted(GRIDS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    console = Console()
    ours = VisionEncoder(VisionConfig.preset(args.preset)).eval()
    theirs = transformers_model(ours)
    table = Table(title=f"Vision encoder forward, {args.preset} preset (median of {args.repeats})")
    for column in ("patches", "dtype", "transformers s", "qwen3vl_inspect s", "ratio", "max |diff|"):
        table.add_column(column, justify="right")
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        ours.to(dtype)
        theirs.to(dtype)
        for patches in args.patches:
            grid = torch.tensor([GRIDS[patches]])
            pixels = torch.randn(patches, ours.config.patch_dim, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                t_theirs, t_ours = interleaved_medians(lambda p=pixels, g=grid: theirs(p, g),
                                                       lambda p=pixels, g=grid: ours(p, g), args.repeats)
                diff = (ours(pixels, grid).pooler_output.float() - theirs(pixels, grid).pooler_output.float()).abs().max()
            table.add_row(str(patches), dtype_name, f"{t_theirs:.3f}", f"{t_ours:.3f}", f"{t_ours / t_theirs:.2f}×",
                          f"{diff:.1e}")
            console.print(f"done: {patches} patches {dtype_name}", style="dim")
    console.print(table)
    console.print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
