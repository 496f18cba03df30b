"""Every key of the TUI in one table: the screen's bindings and the help screen both come from it."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # textual key names, comma-separated
    action: str
    label: str  # footer text
    help: str  # help screen text
    display: str  # how the help screen writes the key(s)
    group: str
    footer: bool = True
    priority: bool = False


KEYS: tuple[Key, ...] = (
    Key("n", "next_stage", "next", "next stage in the list (opens the stages of an expanded block)", "n / p", "Stages"),
    Key("p", "prev_stage", "prev", "previous stage in the list", "", "Stages", footer=False),
    Key("g,home", "first_stage", "first", "first stage (G or end: the last)", "g / G", "Stages", footer=False),
    Key("G,end", "last_stage", "last", "", "", "Stages", footer=False),
    Key("right_square_bracket", "block(1)", "block", "same step of the next block ([ for the previous)", "[ / ]", "Stages"),
    Key("left_square_bracket", "block(-1)", "block-", "", "", "Stages", footer=False),
    Key("a", "toggle_norms", "attn/norm", "a block: its attention ↔ the L2 norm of each patch", "a", "Stages", footer=False),
    Key("o", "toggle_overlay", "overlay", "overlay on/off (see the plain image)", "o", "Stages", footer=False),
    # with --against B only; kept out of the help table (display "") so the help screen stays as it is
    Key("x", "toggle_error", "error", "with --against B: error against B ↔ the stage's own view", "", "Stages",
        footer=False),
    Key("full_stop", "head(1)", "head", "next head (, for the previous); leaves the mean of heads", ", / .", "Attention"),
    Key("comma", "head(-1)", "head-", "", "", "Attention", footer=False),
    Key("m", "toggle_mean", "mean", "mean of all heads ↔ the chosen head", "m", "Attention"),
    Key("r", "toggle_rollout", "rollout", "attention rollout from block 0 up to this block", "r", "Attention"),
    Key("v", "toggle_received", "received", "attention received by each patch (column mean) ↔ one query", "v", "Attention"),
    Key("h", "move_query(0,-1)", "", "move the query patch, or the fusion view's image token "
        "(h j k l; arrows when the image has focus; or click)",
        "h j k l ←↓↑→", "Attention", footer=False),
    Key("j", "move_query(1,0)", "", "", "", "Attention", footer=False),
    Key("k", "move_query(-1,0)", "", "", "", "Attention", footer=False),
    Key("l", "move_query(0,1)", "", "", "", "Attention", footer=False),
    Key("space", "step", "step", "step mode: compute one more stage (pauses a running encoder)", "space", "Run",
        priority=True),
    Key("c", "continue_run", "continue", "continue: run on to the next breakpoint or the end", "c", "Run"),
    Key("b", "toggle_breakpoint", "break", "breakpoint on the selected stage: the run pauses once it is computed",
        "b", "Run"),
    Key("s", "save_png", "save", "save the current view as a PNG (path shown)", "s", "Files"),
    Key("e", "export_json", "export", "export the trace summary as JSON (path shown)", "e", "Files", footer=False),
    Key("question_mark", "help", "help", "this help", "?", "App"),
    Key("q", "quit", "quit", "quit", "q", "App"),
)

EXTRA_HELP: tuple[tuple[str, str, str], ...] = (
    ("Stages", "↑ ↓ enter", "move in the stage list; enter opens a block's steps (norm1, attention, MLP, …)"),
    ("App", "tab", "move the focus between the stage list and the image"),
)


def bindings() -> list[Binding]:
    return [Binding(k.keys, k.action, k.label, show=k.footer, priority=k.priority,
                    key_display={"right_square_bracket": "]", "full_stop": ".", "question_mark": "?"}.get(k.keys))
            for k in KEYS]


def help_rows() -> list[tuple[str, str, str]]:
    """(group, keys, what) for every key, grouped in order."""
    rows = [(k.group, k.display, k.help) for k in KEYS if k.display]
    rows += list(EXTRA_HELP)
    order = list(dict.fromkeys(k.group for k in KEYS))
    return sorted(rows, key=lambda row: order.index(row[0]))
