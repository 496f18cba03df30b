"""Jupyter views of a Trace: `AttentionExplorer`, `StageStepper`, `StatsTable`, and rich HTML display.

    from qwen3vl_inspect.notebook import open_trace, AttentionExplorer
    tr = open_trace()             # the demo image through the default model, lazy
    AttentionExplorer(tr)         # sliders, toggles, click the image to pick the query patch

Each widget is a thin ipywidgets front end over a controller class that holds the state and the
logic (`AttentionController`, `StepperController`, `StatsController`), so tests and scripts drive
the controllers without a browser. Only this package imports ipywidgets, and only when a widget is
asked for: controllers and HTML renderers import without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwen3vl_inspect.notebook.attention_controller import AttentionController
from qwen3vl_inspect.notebook.plots import overlay_grid, overlay_plot
from qwen3vl_inspect.notebook.stats_controller import StatsController
from qwen3vl_inspect.notebook.stepper_controller import StepperController
from qwen3vl_inspect.render.html import stage_html, stats_rows_html, trace_html
from qwen3vl_inspect.session import MODEL_ENV, default_model, open_trace, sample_image
from qwen3vl_inspect.stats_rows import StatsRow

if TYPE_CHECKING:
    from qwen3vl_inspect.notebook.attention_explorer import AttentionExplorer
    from qwen3vl_inspect.notebook.click_image import ClickableImage
    from qwen3vl_inspect.notebook.stage_stepper import StageStepper
    from qwen3vl_inspect.notebook.stats_table import StatsTable

_WIDGETS = {
    "AttentionExplorer": "qwen3vl_inspect.notebook.attention_explorer",
    "ClickableImage": "qwen3vl_inspect.notebook.click_image",
    "StageStepper": "qwen3vl_inspect.notebook.stage_stepper",
    "StatsTable": "qwen3vl_inspect.notebook.stats_table",
}


def __getattr__(name: str) -> Any:
    """Widgets (and with them ipywidgets/anywidget) are imported on first use."""
    if name in _WIDGETS:
        import importlib

        return getattr(importlib.import_module(_WIDGETS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODEL_ENV",
    "AttentionController",
    "AttentionExplorer",
    "ClickableImage",
    "StageStepper",
    "StatsController",
    "StatsRow",
    "StatsTable",
    "StepperController",
    "default_model",
    "open_trace",
    "overlay_grid",
    "overlay_plot",
    "sample_image",
    "stage_html",
    "stats_rows_html",
    "trace_html",
]
