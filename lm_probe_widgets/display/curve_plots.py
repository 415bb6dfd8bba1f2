"""Training curves: validation loss per probe against steps, with the best step, where
a probe was stopped, and the loss of the weights it keeps after the final fit."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .plot_style import INK, new_axes, place_legend, plot_style
from .states import ENDED_EARLY

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _probe_items(source: Any, probes: Iterable[str] | None) -> list[tuple[str, Any]]:
    if hasattr(source, "record"):  # a single probe
        items = [(source.name, source)]
    elif isinstance(source, Mapping):
        items = list(source.items())
    elif hasattr(source, "probes"):
        items = list(source.probes.items())
    else:
        items = [(p.name, p) for p in source]
    if probes is not None:
        wanted = list(probes)
        known = dict(items)
        missing = [n for n in wanted if n not in known]
        if missing:
            raise KeyError(f"no fitted probes {missing}; fitted: {list(known)}")
        items = [(n, known[n]) for n in wanted]
    return items


def curve_colours(n: int) -> list[Any]:
    """n colours, distinct up to 60 (tab10, else tab20 + tab20b + tab20c)."""
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    pool = [matplotlib.colormaps[m](i) for m in ("tab20", "tab20b", "tab20c") for i in range(20)]
    return [pool[i % len(pool)] for i in range(n)]


def plot_training_curves(
    source: Any,
    *,
    probes: Iterable[str] | None = None,
    ax: Axes | None = None,
    logy: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Axes:
    """Validation loss per probe against steps (training loss, dashed, where a probe
    has no validation). A star marks each probe's best step; an x where early stopping,
    a Stop or an error ended it; a diamond the validation loss of the weights the probe
    keeps after the final fit (joined to the curve's end by a dotted line): the curve
    ends where the kept weights are. Every probe has its own colour (up to 60), and
    the legend sits beside the axes."""
    items = _probe_items(source, probes)
    if not items:
        raise ValueError("no fitted probes to plot: call fit_probes first")
    from matplotlib.lines import Line2D

    n = len(items)
    ax = new_axes(ax, figsize or (7.5 if n <= 20 else 9.5, 3.6 if n <= 16 else 4.8))
    colours = curve_colours(n)
    marks = {"best": False, "stop": False, "kept": False}
    with plot_style():
        for (name, probe), colour in zip(items, colours, strict=True):
            rec = probe.record
            hist = list(rec.history)
            key = "val_loss"
            steps = np.array([h["step"] for h in hist], dtype=float)
            vals = np.array([h.get("val_loss", math.nan) for h in hist], dtype=float)
            if not np.isfinite(vals).any():
                key = "train_loss"
                vals = np.array([h.get("train_loss", math.nan) for h in hist], dtype=float)
            ok = np.isfinite(vals)
            steps, vals = steps[ok], vals[ok]
            if len(steps) == 0:
                continue
            style = "-" if key == "val_loss" else "--"
            (line,) = ax.plot(steps, vals, style, lw=1.5, color=colour, label=str(name))
            line.set_gid(f"curve:{name}")
            if rec.best_step is not None and key == "val_loss":
                i = int(np.argmin(np.abs(steps - rec.best_step)))
                (best,) = ax.plot(
                    [steps[i]], [vals[i]], "*", ms=11, color=colour, mec="black", mew=0.5
                )
                best.set_gid(f"best:{name}")
                marks["best"] = True
            if rec.state in ENDED_EARLY:
                (stop,) = ax.plot([steps[-1]], [vals[-1]], "x", ms=9, mew=2, color=colour)
                stop.set_gid(f"stop:{name}")
                marks["stop"] = True
            kept = getattr(rec, "refined_val_loss", math.nan)
            if getattr(rec, "refined", False) and math.isfinite(kept) and key == "val_loss":
                end = float(max(steps[-1], getattr(rec, "steps", steps[-1])))
                ax.plot([steps[-1], end], [vals[-1], kept], ":", lw=1, color=colour)
                (dot,) = ax.plot([end], [kept], "D", ms=6, color=colour, mec="black", mew=0.5)
                dot.set_gid(f"kept:{name}")
                marks["kept"] = True
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss")
        ax.set_title("training curves")
        ax.grid(True, alpha=0.3)
    proxies = []
    for mark, (marker, label) in {
        "best": ("*", "best step"),
        "stop": ("x", "stopped there"),
        "kept": ("D", "kept weights (final fit)"),
    }.items():
        if marks[mark]:
            proxies.append(
                Line2D([], [], ls="none", marker=marker, color=INK, mec=INK, label=label)
            )
    place_legend(ax, proxies)
    return ax
