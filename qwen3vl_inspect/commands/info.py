"""`qwen3vl-inspect info`: the architecture, parameter counts, and where the weights come from."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from qwen3vl_inspect.commands.common import load_encoder
from qwen3vl_inspect.formatting import safe_text

FIELDS = ("depth", "hidden_size", "num_heads", "head_dim", "intermediate_size", "hidden_act", "patch_size",
          "temporal_patch_size", "spatial_merge_size", "out_hidden_size", "num_position_embeddings",
          "deepstack_visual_indexes", "rope_theta")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from qwen3vl_inspect.probe import ModelArchitectureInspector

    encoder = load_encoder(args, err)
    table = Table(title=f"Vision encoder: {safe_text(encoder.config.source)}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("weights", safe_text(encoder.weights_source))
    for name in FIELDS:
        table.add_row(name, str(getattr(encoder.config, name)))
    parameter = next(encoder.parameters())
    table.add_row("dtype / device", f"{parameter.dtype} / {parameter.device}")
    out.print(table)
    out.print(ModelArchitectureInspector.count_parameters(encoder))
    ModelArchitectureInspector.print_architecture(encoder, max_depth=2, console=out)
    return 0
