"""The fusion view's numbers for the side panel (rich renderables, about 36 columns wide).

Reuses `fusion.display`'s styles and the MRoPE split (`MRopeLayout.__rich__`) as they are; the
token sequence, the position-id table and the DeepStack plan are drawn narrower than the CLI's
(special tokens and pad runs set apart by spaces so lines break between them, text tokens on
alternating greys; no id column, short labels), with the selected image token under its collapsed run.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from qwen3vl_inspect.formatting import fmt_float, safe_text
from qwen3vl_inspect.fusion import FusionResult, TokenInfo
from qwen3vl_inspect.fusion.display import STYLES

SELECTED = "bold cyan"
TEXT_SHADES = ("on grey15", "on grey27")


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}…{high}"


def token_sequence(result: FusionResult) -> Text:
    """`<|vision_start|> <|image_pad|>×108 <|vision_end|> Describe this image.`: text reads as text, each
    text token on its own shade of grey (boundaries and leading spaces show), special tokens and pad
    runs set apart by a space, where a narrow panel may break the line."""
    text = Text()
    shade = 0
    previous = None
    for run in result.runs():
        if run.kind == "text":
            if previous not in (None, "text"):
                text.append(" ")
            text.append(safe_text(run.label), style=TEXT_SHADES[shade % 2])  # the user's text, shown not obeyed
            shade += 1
        else:
            if previous is not None:
                text.append(" ")
            label = f"{run.label}×{run.count}" if run.media is not None else run.label
            text.append(label, style=STYLES[run.kind])
        previous = run.kind
    return text


def source_lines(result: FusionResult) -> Text:
    embeds = result.inputs_embeds
    text = Text("text embeddings: ")
    text.append(safe_text(result.embeddings_source), style="bold red" if result.random_embeddings else "green")
    text.append(f"\n{result.seq_len} tokens ({int(result.visual_pos_mask.sum())} visual) → inputs_embeds "
                f"{list(embeds.shape)} {str(embeds.dtype).removeprefix('torch.')}")
    return text


def selected_lines(result: FusionResult, token: TokenInfo) -> Text:
    merge = result.text_side.spatial_merge_size
    t, h, w = token.position
    left, top, right, bottom = token.box
    row, col = token.row * merge, token.col * merge
    text = Text("selected ", style="bold")
    text.append("<|image_pad|>", style=STYLES["image"])
    text.append("  (h j k l, arrows, click)", style="dim")
    text.append(f"\nsequence index {token.index} of {result.seq_len}", style=SELECTED)
    text.append(f" · image token {token.media_token}")
    text.append(f"\nmerged cell row {token.row}, col {token.col} = patches rows {row}–{row + merge - 1}, "
                f"cols {col}–{col + merge - 1} · pixels x {left}–{right}, y {top}–{bottom}")
    text.append("\nposition id ")
    text.append(f"(t, h, w) = ({t}, {h}, {w})", style=SELECTED)
    start = h - token.row
    text.append(f"\n  = image start {start} + (frame {t - start}, row {token.row}, col {token.col})", style="dim")
    return text


def position_table(result: FusionResult, selected: TokenInfo | None = None) -> Table:
    """One row per text token and one per image run (t, h range, w range); the selected token under its run."""
    table = Table(title=f"MRoPE position ids (rope delta {result.rope_delta:+d})", title_justify="left",
                  title_style="bold", header_style="bold underline", box=None, padding=(0, 1), collapse_padding=True,
                  pad_edge=False)
    table.add_column("idx", justify="right", no_wrap=True)
    table.add_column("token", overflow="fold")  # the one column that gives way in a narrow panel
    for axis in "thw":
        table.add_column(axis, justify="right", no_wrap=True)
    pos = result.position_ids.reshape(3, -1)
    for run in result.runs():
        cells = [_span(pos[axis, run.start:run.stop].tolist()) for axis in range(3)]
        index = str(run.start) if run.count == 1 else f"{run.start}…{run.stop - 1}"
        if run.media is not None:
            label = Text(f"{run.label}×{run.count}", style=STYLES[run.kind])
        else:
            label = Text(repr(run.label) if run.kind == "text" else run.label, style=STYLES[run.kind])
        table.add_row(index, label, *cells)
        if selected is not None and run.start <= selected.index < run.stop and run.count > 1:
            table.add_row(Text(str(selected.index), style=SELECTED), Text(f" ▣ token {selected.media_token}",
                          style=SELECTED), *(Text(str(v), style=SELECTED) for v in selected.position))
    return table


def deepstack_table(result: FusionResult) -> list[RenderableType]:
    plan = result.deepstack
    table = Table(title="DeepStack plan", title_justify="left", title_style="bold",
                  header_style="bold underline", box=None, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for column in ("feature", "block", "→ layer", "‖feature‖"):
        table.add_column(column, justify="left" if column == "feature" else "right", no_wrap=True)
    for inj in plan.injections:
        table.add_row(f"deepstack.{inj.index}", "?" if inj.vision_layer is None else str(inj.vision_layer),
                      str(inj.text_layer), fmt_float(inj.feature_norm, 3))
    note = Text(f"each feature, merged from a vision block's output, is added to the hidden states after its "
                f"text layer, at the {plan.visual_tokens} image positions only. Mean L2 norms: merger output "
                f"(image embeddings) {fmt_float(plan.visual_embed_norm, 3)}, "
                f"text embeddings {fmt_float(plan.text_embed_norm, 3)}",
                style="dim")
    for line in plan.notes:
        note.append(f"\n{line}", style="yellow")
    return [table, note]


def panel(result: FusionResult, selected: TokenInfo | None, explanation: str) -> list[RenderableType]:
    parts: list[RenderableType] = [source_lines(result), Text("")]
    if selected is not None:
        parts += [selected_lines(result, selected), Text("")]
    parts += [Text("token sequence", style="bold"), token_sequence(result), Text(""),
              position_table(result, selected), Text(""), result.mrope, Text("")]
    parts += deepstack_table(result)
    parts += [Text(""), Text(f"tokenizer: {safe_text(result.tokenizer_source)}\ntext model: {safe_text(result.text_side.source)}",
                             style="dim"), Text(""), Text(explanation)]
    return parts
