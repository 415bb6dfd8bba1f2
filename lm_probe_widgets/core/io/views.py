"""RunnerViews: how a runner shows itself, its reprs and plots. The notebook layer
(`display/`) is imported inside each method, never when core is imported.
"""

from __future__ import annotations

from typing import Any

from ..engine.data import ProbeDataset


class RunnerViews:
    """Reprs and plots of a runner (mixed into `ProbeRunner`)."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ...display.runner_html import runner_mimebundle

        return runner_mimebundle(self, include, exclude)

    def _repr_html_(self) -> str:
        from ...display.runner_html import runner_html

        return runner_html(self)

    def plot_layer_sweep(self, metric: str = "accuracy", **kwargs: Any) -> Any:
        """`metric` against layer depth per kind of submodule; returns the Axes."""
        from ...display.sweep_plot import plot_layer_sweep

        return plot_layer_sweep(self, metric, **kwargs)

    def plot_training_curves(self, **kwargs: Any) -> Any:
        """Validation loss per probe against steps, best and stop points marked."""
        from ...display.curve_plots import plot_training_curves

        return plot_training_curves(self, **kwargs)

    def plot_predictions(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """A regression probe's predictions against the true targets; returns the Axes."""
        from ...display.diagnostic_plots import plot_predictions

        return plot_predictions(self, name, dataset, **kwargs)

    def plot_calibration(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """Reliability diagram of a binary probe on `dataset`; returns the Axes."""
        from ...display.diagnostic_plots import plot_calibration

        return plot_calibration(self, name, dataset, **kwargs)

    def plot_confusion_matrix(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """Confusion matrix of probe `name` on a labelled `dataset`; returns the Axes."""
        from ...display.diagnostic_plots import plot_confusion_matrix

        return plot_confusion_matrix(self, name, dataset, **kwargs)
