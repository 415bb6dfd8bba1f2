"""Plots that look at one probe's predictions: the confusion matrix, predicted against
true values (regression), calibration, and the generalisation table as a heatmap."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .plot_style import INK, new_axes, place_legend, plot_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def confusion_matrix(
    runner: Any, name: str, dataset: Any, *, batch_size: int = 32
) -> tuple[np.ndarray, list[Any]]:
    """(counts [true, predicted], classes) of probe `name` on a labelled dataset."""
    probe = runner[name]
    cfg = probe.config
    if not getattr(dataset, "has_labels", False):
        raise ValueError("the dataset has no labels: a confusion matrix needs true labels")
    from ..core.engine.families import family_inputs
    from ..core.engine.plan import scored_labels

    x = runner.get_probe_features(dataset, subset=[name], batch_size=batch_size)[name]
    keep, true_idx = scored_labels(cfg, dataset)  # ignored tokens dropped
    pred_idx = probe.encode(probe.predict(family_inputs(cfg, x, keep, dataset)))
    k = len(cfg.classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (true_idx, pred_idx), 1)
    return cm, list(cfg.classes)


def plot_confusion_matrix(
    runner: Any,
    name: str,
    dataset: Any,
    *,
    normalize: str | None = None,
    ax: Axes | None = None,
    cmap: str = "Blues",
    batch_size: int = 32,
    figsize: tuple[float, float] | None = None,
) -> Axes:
    """Confusion matrix of one probe on `dataset` (rows: true class, columns:
    predicted). `normalize`: None (counts), "true" (rows sum to 1), "pred", "all".
    The figure grows with the number of classes; long or many class names are
    written at an angle so they never overlap."""
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError("normalize must be None, 'true', 'pred' or 'all'")
    cm, classes = confusion_matrix(runner, name, dataset, batch_size=batch_size)
    shown = cm.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            shown = shown / shown.sum(1, keepdims=True)
        elif normalize == "pred":
            shown = shown / shown.sum(0, keepdims=True)
        elif normalize == "all":
            shown = shown / shown.sum()
    shown = np.nan_to_num(shown)
    labels = [str(c) for c in classes]
    k = len(labels)
    longest = max((len(t) for t in labels), default=1)
    if figsize is None:
        side = max(4.2, 0.6 * k + 0.08 * longest + 2.4)
        figsize = (side, side * 0.86)
    ax = new_axes(ax, figsize)
    with plot_style():
        im = ax.imshow(shown, cmap=cmap, vmin=0)
        im.set_gid("confusion")
        top = shown.max() if shown.size else 0
        size = "small" if k <= 8 else "x-small"
        for i in range(k):
            for j in range(k):
                text = f"{cm[i, j]}" if normalize is None else f"{shown[i, j]:.2f}"
                color = "white" if top and shown[i, j] > top / 2 else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=size)
        tilt = k >= 5 or longest * k > 40
        if tilt:
            ax.set_xticks(range(k), labels, rotation=40, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(range(k), labels)
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(str(name))
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_predictions(
    runner: Any, name: str, dataset: Any, *, ax: Axes | None = None, batch_size: int = 32
) -> Axes:
    """A regression probe's predictions against the true targets on `dataset`, with
    the y = x line and R² in the title."""
    from ..core.engine.plan import scored_labels
    from ..core.engine.regression import r2_score

    probe = runner[name]
    if probe.config.task != "regression":
        raise ValueError(f"probe {name!r} is a classification probe: plot_confusion_matrix")
    x = runner.get_probe_features(dataset, subset=[name], batch_size=batch_size)[name]
    _, y = scored_labels(probe.config, dataset)
    pred = probe.predict(x)
    ax = new_axes(ax, (4.6, 4.2))
    with plot_style():
        ax.scatter(y, pred, s=10, alpha=0.6, label="examples", gid="predictions")
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color=INK, lw=1, ls="--", label="y = x")
        ax.set_xlabel("true target")
        ax.set_ylabel("predicted")
        ax.set_title(f"{name}: R² {r2_score(y, pred):.3f}")
    place_legend(ax)
    return ax


def plot_calibration(
    runner: Any,
    name: str,
    dataset: Any,
    *,
    n_bins: int = 10,
    ax: Axes | None = None,
    batch_size: int = 32,
) -> Axes:
    """Reliability diagram of a binary probe: the fraction of positives (the last
    class) against the mean predicted probability per bin, beside the diagonal of
    perfect calibration; the bins' example counts are written above the points."""
    from ..core.engine.families import family_inputs
    from ..core.engine.metrics import calibration_curve
    from ..core.engine.plan import scored_labels

    probe = runner[name]
    if probe.config.task == "regression" or len(probe.config.classes) != 2:
        raise ValueError("a reliability diagram needs a binary classification probe")
    x = runner.get_probe_features(dataset, subset=[name], batch_size=batch_size)[name]
    keep, y = scored_labels(probe.config, dataset)
    proba = probe.predict_proba(family_inputs(probe.config, x, keep, dataset))
    mean_pred, frac_pos, count = calibration_curve(proba, y, n_bins=n_bins)
    ax = new_axes(ax, (4.6, 4.2))
    with plot_style():
        ax.plot([0, 1], [0, 1], color=INK, lw=1, ls="--", label="perfectly calibrated")
        ok = count > 0
        ax.plot(mean_pred[ok], frac_pos[ok], marker="o", label=str(name), gid="calibration")
        for px, py, c in zip(mean_pred[ok], frac_pos[ok], count[ok], strict=True):
            ax.annotate(
                str(int(c)),
                (px, py),
                textcoords="offset points",
                xytext=(0, 5),
                ha="center",
                fontsize="x-small",
                color=INK,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"mean predicted P({probe.config.classes[-1]})")
        ax.set_ylabel("fraction that are")
        ax.set_title("reliability")
    place_legend(ax)
    return ax


def plot_generalisation(
    table: Any, metric: str = "accuracy", *, ax: Axes | None = None, cmap: str = "viridis"
) -> Axes:
    """Heatmap of one metric, probes (rows) by datasets (columns), from the tidy
    table of `runner.evaluate({...})`; `runner.transfer(...)`'s table (train_on x
    test_on) works too, one heatmap per probe: filter it to one probe first."""
    df = table
    if "dataset" in df:
        grid = df[df["metric"] == metric].pivot(index="probe", columns="dataset", values="value")
    elif {"train_on", "test_on"} <= set(df.columns):
        grid = df.pivot_table(index="train_on", columns="test_on", values=metric)
    else:
        raise ValueError("expected runner.evaluate(...) or runner.transfer(...)'s table")
    if grid.empty:
        raise ValueError(f"no {metric!r} values in the table")
    rows, cols = [str(i) for i in grid.index], [str(c) for c in grid.columns]
    values = grid.to_numpy(dtype=float)
    ax = new_axes(ax, (1.4 + 1.1 * len(cols), 1.2 + 0.45 * len(rows)))
    with plot_style():
        im = ax.imshow(values, cmap=cmap, aspect="auto")
        im.set_gid("generalisation")
        for i in range(len(rows)):
            for j in range(len(cols)):
                if math.isfinite(values[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{values[i, j]:.3f}",
                        ha="center",
                        va="center",
                        color="white",
                        fontsize="small",
                    )
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("test data" if "dataset" in df else "tested on")
        ax.set_ylabel("probe" if "dataset" in df else "trained on")
        ax.set_title(metric)
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax
