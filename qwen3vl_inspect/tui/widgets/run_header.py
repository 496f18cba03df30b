"""One line at the top: which image, how it was cut, which model and where its weights come from."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from qwen3vl_inspect.formatting import safe_text


class RunHeader(Static):
    def show(self, image: str, sizes: str, grid: str, model: str, weights: str, dtype: str, device: str) -> None:
        """Most important first, so a narrow terminal cuts the least useful end: image, model, weights."""
        image, model, weights = safe_text(image), safe_text(model), safe_text(weights)  # user-named: shown, not obeyed
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {image} ", style="bold reverse")
        text.append(" ")
        text.append(model, style="bold")
        text.append(" · ")
        text.append(weights, style="bold yellow" if weights.startswith("random") else "green")
        text.append(f" · {sizes} · {grid} · {dtype} · {device}")
        self.update(text)
