"""`qwen3vl-inspect`: the command line.

    qwen3vl-inspect [IMAGE] [--step]         the interactive TUI (default: the demo image); piped: the trace table
    qwen3vl-inspect trace IMAGE [--json]     every stage's shapes and dtypes
    qwen3vl-inspect stats IMAGE [--json]     every stage's tensor stats; exit 3 on NaN/Inf
    qwen3vl-inspect attention IMAGE --layer L [--head H] [--query ROW,COL] [--rollout] -o OUT.png
    qwen3vl-inspect info [--model ...]       architecture, parameter counts, where the weights come from
    qwen3vl-inspect fusion IMAGE [--text T] [--json] [--decoder]   tokens, MRoPE ids, DeepStack plan
    qwen3vl-inspect export OUT.onnx [--model ...] | export --check FILE.onnx   ONNX with every DeepStack output
    qwen3vl-inspect compare IMAGE --against B|transformers|FILE.onnx [--dtype-b D] [--json] [-o error.png]

A user mistake is one line on stderr and exit code 2; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from rich.console import Console

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.session import DEFAULT_MODEL, DTYPES, MODEL_HELP

COMMANDS = ("tui", "trace", "stats", "attention", "info", "fusion", "export", "compare")


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)


def _image_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("image", nargs=None if required else "?", help="image file (default: the embedded demo image)")
    parser.add_argument("--min-pixels", type=int, default=None, help="lower bound on resized pixels (default 65536)")
    parser.add_argument("--max-pixels", type=int, default=None, help="upper bound on resized pixels (default 16777216)")
    _model_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwen3vl-inspect", description="Look inside the Qwen3-VL vision encoder.")
    commands = parser.add_subparsers(dest="command", required=True)
    tui = commands.add_parser("tui", help="the interactive walk-through (what a bare IMAGE runs)")
    _image_options(tui)
    tui.add_argument("--step", action="store_true", help="debugger-style: compute one stage per key press")
    tui.add_argument("--against", default=None, metavar="B",
                     help="after the run, compare with B (model, 'transformers' or .onnx) and colour the stages")
    tui.add_argument("--dtype-b", default=None, choices=DTYPES, help="dtype of --against (default: --dtype)")
    from qwen3vl_inspect.fusion.fuse import DEFAULT_TEXT

    tui.add_argument("--text", default=DEFAULT_TEXT,
                     help=f"the user's text after the image, for the fusion view (default {DEFAULT_TEXT!r})")
    trace = commands.add_parser("trace", help="run the encoder stage by stage and print every shape")
    _image_options(trace)
    trace.add_argument("--json", action="store_true", help="print the trace as JSON")
    trace.add_argument("--substages", action="store_true", help="also list each block's norm/attention/MLP steps")
    stats = commands.add_parser("stats", help="tensor stats of every stage; exit code 3 on NaN/Inf")
    _image_options(stats)
    stats.add_argument("--json", action="store_true", help="print the stats as JSON")
    attention = commands.add_parser("attention", help="an attention map over the image, saved as PNG")
    _image_options(attention)
    attention.add_argument("--layer", type=int, required=True, help="block number (0-based)")
    attention.add_argument("--head", type=int, default=None, help="one head (default: mean of heads)")
    attention.add_argument("--query", default=None, help="ROW,COL of the query patch (default: attention received)")
    attention.add_argument("--rollout", action="store_true", help="attention rollout from block 0 up to --layer")
    attention.add_argument("--image-index", type=int, default=0, help="which packed image (default 0)")
    attention.add_argument("-o", "--output", required=True, help="PNG file to write")
    info = commands.add_parser("info", help="architecture and parameter counts")
    _model_options(info)
    from qwen3vl_inspect.commands.export import add_parser as export_parser
    from qwen3vl_inspect.commands.fusion import add_arguments as fusion_arguments

    fusion = commands.add_parser("fusion", help="how the image tokens enter the language model")
    _image_options(fusion)
    fusion_arguments(fusion)
    export_parser(commands)
    from qwen3vl_inspect.commands.compare import add_arguments as compare_arguments

    compare = commands.add_parser("compare", help="two runs stage by stage; names the first divergence (exit 4)")
    _image_options(compare)
    compare_arguments(compare)
    return parser


def _run_tui(args: argparse.Namespace, out: Console, err: Console) -> int:
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        from qwen3vl_inspect.commands import trace

        err.print("(not a terminal: printing the stage table; run in a terminal for the interactive view)",
                  style="dim", markup=False, highlight=False)
        args.json = getattr(args, "json", False)
        args.substages = getattr(args, "substages", False)
        return trace.run(args, out, err)
    from qwen3vl_inspect.tui.launch import run  # textual is imported only on this path

    return run(args, err)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "tui")  # `qwen3vl-inspect [IMAGE]`: the interactive walk-through
    args = build_parser().parse_args(argv)
    out, err = Console(), Console(stderr=True)
    if not out.is_terminal:  # piped or redirected: don't squeeze tables into 80 columns
        out = Console(width=160)
    from qwen3vl_inspect.commands import attention, compare, export, fusion, info, stats, trace

    handlers = {"tui": _run_tui, "trace": trace.run, "stats": stats.run, "attention": attention.run,
                "info": info.run, "fusion": fusion.run, "export": export.run, "compare": compare.run}
    from qwen3vl_inspect.commands.common import preflight
    from qwen3vl_inspect.memory_errors import is_out_of_memory, out_of_memory

    try:
        with warnings.catch_warnings():  # a warning (e.g. "animated GIF: using frame 0") is one line too
            warnings.showwarning = lambda message, *_rest, **_kw: err.print(
                f"warning: {safe_text(message)}", style="yellow", highlight=False, soft_wrap=True, markup=False)
            try:
                preflight(args, err)
                return handlers[args.command](args, out, err)
            except (Exception, MemoryError) as exc:  # out of memory anywhere a command did not name the step
                if isinstance(exc, InputError) or not is_out_of_memory(exc):
                    raise
                raise out_of_memory(exc, f"running `{args.command}`") from None
    except InputError as exc:
        err.print(f"error: {safe_text(exc)}", style="bold red", highlight=False, soft_wrap=True, markup=False)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
