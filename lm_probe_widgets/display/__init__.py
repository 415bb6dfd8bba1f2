"""Static displays of runners and probes: rich HTML/text reprs and matplotlib plots.

Everything here is a pure function of core objects. The HTML side imports only the
standard library (a repr must be cheap and work offline); the plotting side imports
matplotlib when a plot is first asked for, so importing this package stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .probe_html import probe_html, probe_mimebundle, probe_text
from .runner_html import runner_html, runner_mimebundle, runner_text
from .sparkline import sparkline_svg

# Plot name -> the module that draws it (imported on first use: matplotlib is heavy).
_PLOTS = {
    "place_legend": ".plot_style",
    "plot_layer_sweep": ".sweep_plot",
    "parse_depth": ".sweep_plot",
    "plot_training_curves": ".curve_plots",
    "plot_confusion_matrix": ".diagnostic_plots",
    "confusion_matrix": ".diagnostic_plots",
}

__all__ = [
    "confusion_matrix",
    "parse_depth",
    "place_legend",
    "plot_confusion_matrix",
    "plot_layer_sweep",
    "plot_training_curves",
    "probe_html",
    "probe_mimebundle",
    "probe_text",
    "runner_html",
    "runner_mimebundle",
    "runner_text",
    "sparkline_svg",
]


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        return getattr(importlib.import_module(_PLOTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
