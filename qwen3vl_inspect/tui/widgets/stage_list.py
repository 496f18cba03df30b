"""The list of stages, in the encoder's order; a block opens into its six steps.

Each row says where that stage stands: · not computed, ✓ computed, ✗ failed or NaN/Inf (red),
≠ / ~ differs from `--against B` (introduced here / inherited),
● a breakpoint, ▸ the stage being computed now, ◆ a block whose output feeds a DeepStack merger.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from qwen3vl_inspect.model.stage_plan import block_steps
from qwen3vl_inspect.stage_name import StageName
from qwen3vl_inspect.tui.controller import DONE, FAILED, NONFINITE, Inspector
from qwen3vl_inspect.tui.messages import StageChosen

GLYPHS = {DONE: ("✓", "green"), NONFINITE: ("✗", "bold red"), FAILED: ("✗", "bold red")}
# `--against B`: ≠ introduced here (red), ~ inherited from upstream (orange), missing (magenta), matching (green)
COMPARISON_STYLES = {"equal": "green", "within": "green", "introduced": "bold red", "inherited": "dark_orange",
                     "diverged": "bold red", "shape mismatch": "bold red", "missing in a": "bold magenta",
                     "missing in b": "bold magenta"}


class StageList(Tree[str]):
    """Attributes down: `rebuild(inspector)` and `refresh_labels(inspector)`; up: `StageChosen`."""

    def __init__(self, **kwargs) -> None:
        super().__init__("stages", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = True
        self._stage_nodes: dict[str, TreeNode[str]] = {}
        self._stage_labels: dict[str, Text] = {}
        self._stage_names: list[str] = []

    def rebuild(self, inspector: Inspector) -> None:
        """Fill the list from the stage plan (known from the config before the model is built)."""
        if inspector.names == self._stage_names:
            return self.refresh_labels(inspector)
        self.clear()
        self._stage_nodes.clear()
        self._stage_labels.clear()
        self._stage_names = list(inspector.names)
        for name in self._stage_names:
            parsed = StageName.parse(name)
            if parsed.kind == "block":
                node = self.root.add("", data=name, expand=False)
                for step in block_steps(parsed.layer):
                    self._stage_nodes[str(step)] = node.add_leaf("", data=str(step))
            else:
                node = self.root.add_leaf("", data=name)
            self._stage_nodes[name] = node
        self.refresh_labels(inspector)

    def label_for(self, inspector: Inspector, name: str, running: str | None) -> Text:
        status = inspector.status(name)
        text = Text()
        text.append("●" if name in inspector.breakpoints else " ", style="bold red")
        if name == running:
            text.append("▸ ", style="bold yellow")
        else:
            glyph, style = GLYPHS.get(status, ("·", "dim"))
            text.append(glyph + " ", style=style)
        parsed = StageName.parse(name)
        # a DeepStack merger follows its block, which carries the same ◆; a step sits under its block
        # ("attention", not "block 3 · attention")
        title = parsed.short_title() if parsed.kind in ("deepstack", "step") else inspector.title(name)
        bad = status in (NONFINITE, FAILED)
        style = "bold red" if bad else "" if status == DONE or name == running else "dim"
        row = inspector.divergence(name)  # `--against B`: colour by how far B is from this run here
        if row is not None and not bad:
            style = COMPARISON_STYLES.get(row.origin or row.status, style)
        text.append(title, style=style)
        if row is not None and not row.ok:
            text.append(" ≠" if row.origin != "inherited" else " ~", style=COMPARISON_STYLES.get(row.origin or row.status, ""))
        tapped = parsed.kind == "block" and parsed.layer in inspector.config.deepstack_visual_indexes
        if tapped or parsed.kind == "deepstack":
            text.append(" ◆", style="magenta")
        return text

    def refresh_labels(self, inspector: Inspector) -> None:
        running = inspector.run.computing
        for name, node in self._stage_nodes.items():
            label = self.label_for(inspector, name, running)
            if self._stage_labels.get(name) != label:
                self._stage_labels[name] = label
                node.set_label(label)

    def go_to(self, name: str) -> None:
        """Put the cursor on a stage, opening its block if it is one of a block's steps."""
        node = self._stage_nodes.get(name)
        if node is None:
            return
        if node.parent is not None and node.parent is not self.root and not node.parent.is_expanded:
            node.parent.expand()
            self.call_after_refresh(self.move_cursor, node)
        else:
            self.move_cursor(node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(StageChosen(event.node.data))
