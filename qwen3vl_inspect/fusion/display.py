"""How a FusionResult looks: the token sequence with pad runs collapsed, the position-id table, the
MRoPE split and the DeepStack plan (rich), and the same as plain data (JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.formatting import safe_text

if TYPE_CHECKING:
    from qwen3vl_inspect.fusion.result import FusionResult, TokenRun

STYLES = {"special": "bold green", "text": "", "image": "bold magenta", "video": "bold cyan"}


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}…{high}"


def _run_label(result: FusionResult, run: TokenRun) -> str:
    if run.media is None:
        return repr(run.label) if run.kind == "text" else run.label
    t, h, w = result.grid_thw[run.media].tolist()
    merge = result.text_side.spatial_merge_size
    where = f"video {run.media} frame {run.frame}" if run.kind == "video" else f"image {run.media}"
    return f"{run.label} ×{run.count}  ({where}: {h // merge}×{w // merge} merged from {h}×{w} patches)"


def token_sequence(result: FusionResult) -> Text:
    """The prompt as the model sees it, one piece after another, pads shown as `<|image_pad|>×N`."""
    text = Text()
    for run in result.runs():
        if run.media is not None:
            text.append(f"{run.label}×{run.count}", style=STYLES[run.kind])
        else:
            piece = safe_text(run.label)  # the user's --text: newlines and escape codes shown, not obeyed
            text.append(piece, style=STYLES[run.kind] or "on grey15")
        text.append("·", style="dim")
    return text


def position_table(result: FusionResult) -> Table:
    table = Table(title=f"MRoPE position ids (rope delta {result.rope_delta:+d})", title_justify="left")
    for column in ("idx", "id", "token", "t", "h", "w"):
        table.add_column(column, justify="right" if column in ("idx", "id", "t", "h", "w") else "left",
                         no_wrap=column != "token")
    pos = result.position_ids.reshape(3, -1)
    ids = result.input_ids.reshape(-1).tolist()
    for run in result.runs():
        cells = [_span(pos[axis, run.start:run.stop].tolist()) for axis in range(3)]
        index = str(run.start) if run.count == 1 else f"{run.start}…{run.stop - 1}"
        table.add_row(index, str(ids[run.start]), Text(_run_label(result, run), style=STYLES[run.kind]), *cells)
    return table


def header(result: FusionResult) -> Text:
    visual = int(result.visual_pos_mask.sum())
    embeds = result.inputs_embeds
    text = Text(f"{result.seq_len} tokens ({visual} visual) · inputs_embeds {list(embeds.shape)} "
                f"{str(embeds.dtype).removeprefix('torch.')} · grid_thw {result.grid_thw.tolist()} "
                f"({', '.join(result.media)})\n")
    text.append("text embeddings: ")
    text.append(safe_text(result.embeddings_source), style="bold red" if result.random_embeddings else "green")
    text.append(f"\ntokenizer: {safe_text(result.tokenizer_source)}\ntext model: {safe_text(result.text_side.source)}")
    return text


def render_result(result: FusionResult) -> Group:
    parts: list[Any] = [header(result), Text("\ntoken sequence", style="bold"), token_sequence(result), Text(""),
                        position_table(result), result.mrope, Text(""), result.deepstack]
    return Group(*parts)


def result_to_dict(result: FusionResult) -> dict[str, Any]:
    pos = result.position_ids.reshape(3, -1)
    ids = result.input_ids.reshape(-1).tolist()
    runs = []
    for run in result.runs():
        entry: dict[str, Any] = {"start": run.start, "stop": run.stop, "count": run.count, "kind": run.kind,
                                 "token": run.label, "token_id": ids[run.start],
                                 "position": {axis: [int(pos[i, run.start:run.stop].min()), int(pos[i, run.start:run.stop].max())]
                                              for i, axis in enumerate("thw")}}
        if run.media is not None:
            entry["media"] = run.media
            if run.frame is not None and run.kind == "video":
                entry["frame"] = run.frame
        runs.append(entry)
    return {
        "checkpoint": result.checkpoint,
        "embeddings_source": result.embeddings_source,
        "random_embeddings": result.random_embeddings,
        "tokenizer_source": result.tokenizer_source,
        "text_model": result.text_side.source,
        "grid_thw": result.grid_thw.tolist(),
        "media": list(result.media),
        "prompt": result.prompt,
        "seq_len": result.seq_len,
        "visual_tokens": int(result.visual_pos_mask.sum()),
        "inputs_embeds": {"shape": list(result.inputs_embeds.shape),
                          "dtype": str(result.inputs_embeds.dtype).removeprefix("torch.")},
        "input_ids": ids,
        "runs": runs,
        "position_ids": pos.tolist(),
        "rope_delta": result.rope_delta,
        "mrope": {"head_dim": result.mrope.head_dim, "mrope_section": list(result.mrope.mrope_section),
                  "interleaved": result.mrope.interleaved, "axis": "".join(result.mrope.axis)},
        "deepstack": result.deepstack.to_dict(),
    }
