"""Plots of the probe families' tables: the k-sparse curve (`runner.sparse_probe`)
and the MLP capacity sweep (`runner.mlp_probe`). A filled marker is a paired
"beats" at the table's level (Holm-corrected over its rows), a hollow one is not:
the plot claims no more than the table. Light and dark alike (`plot_style.plot_style`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .plot_style import new_axes, place_legend, plot_style

if TYPE_CHECKING:
    import matplotlib.axes

TOP, RANDOM = "C0", "C7"


def _marks(ax: matplotlib.axes.Axes, x: Any, y: Any, beats: Any, colour: str, label: str) -> None:
    """A line through (x, y); filled markers where `beats`, hollow elsewhere."""
    ax.plot(x, y, "-", color=colour, label=label)
    beats = np.asarray(beats, dtype=bool)
    ax.plot(np.asarray(x)[beats], np.asarray(y)[beats], "o", color=colour)
    hollow = dict(markerfacecolor="none", markeredgecolor=colour)
    ax.plot(np.asarray(x)[~beats], np.asarray(y)[~beats], "o", **hollow)


def plot_sparse_curve(
    curve: Any, *, ax: matplotlib.axes.Axes | None = None
) -> matplotlib.axes.Axes:
    """Accuracy against k for the top-k dimensions and for k random ones (dashed);
    filled markers where the top k beat random k (paired, Holm over the ks)."""
    if len(curve) == 0 or not {"k", "accuracy", "random_accuracy", "verdict"} <= set(curve):
        raise ValueError("plot_sparse_curve takes the table runner.sparse_probe returns")
    level = curve.attrs.get("level", 0.95)
    ax = new_axes(ax, (6.0, 3.4))
    with plot_style():
        beats = curve["verdict"].eq("beats")
        _marks(ax, curve["k"], curve["accuracy"], beats, TOP, "top k dimensions")
        ax.plot(curve["k"], curve["random_accuracy"], "--", color=RANDOM, label="random k")
        ax.plot([], [], "o", color=TOP, label=f"beats random k ({100 * level:.0f}%, Holm)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(curve["k"], [str(k) for k in curve["k"]])
        ax.set_xlabel(f"k (dimensions, ranked by {curve.attrs.get('rank_by', '?')})")
        ax.set_ylabel("test accuracy")
    place_legend(ax)
    return ax


def plot_capacity_sweep(
    sweep: Any, *, ax: matplotlib.axes.Axes | None = None
) -> matplotlib.axes.Axes:
    """Task and control accuracy (dashed) against hidden width, one colour per weight
    decay; filled markers where selectivity beats 0 (paired, Holm over the sweep).
    Width 0 is the linear probe."""
    need = {"width", "weight_decay", "accuracy", "control_accuracy", "verdict"}
    if len(sweep) == 0 or not need <= set(sweep):
        raise ValueError("plot_capacity_sweep takes the table runner.mlp_probe returns")
    widths = sorted(sweep["width"].unique())
    pos = {w: i for i, w in enumerate(widths)}  # evenly spaced: 0 has no log position
    level = sweep.attrs.get("level", 0.95)
    ax = new_axes(ax, (6.0, 3.4))
    with plot_style():
        for j, (wd, part) in enumerate(sweep.sort_values("width").groupby("weight_decay")):
            x = part["width"].map(pos)
            colour = f"C{j % 10}"
            beats = part["verdict"].eq("beats")
            _marks(ax, x, part["accuracy"], beats, colour, f"task, weight decay {wd:g}")
            ax.plot(x, part["control_accuracy"], "--", color=colour, label="control task")
        ax.plot([], [], "o", color="C0", label=f"selective ({100 * level:.0f}%, Holm)")
        ax.set_xticks(range(len(widths)), [("linear" if w == 0 else str(w)) for w in widths])
        ax.set_xlabel("hidden width")
        ax.set_ylabel("test accuracy")
    place_legend(ax)
    return ax
