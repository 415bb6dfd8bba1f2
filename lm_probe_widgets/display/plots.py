"""The plots people draw after probing: a layer sweep, training curves, a confusion
matrix. Each takes an optional ``ax`` and returns the Axes it drew on (the Figure
is ``ax.figure``) so users can restyle them; nothing calls ``plt.show``, so the
functions work the same under Agg, inline and widget backends. matplotlib is
imported only when a plot is drawn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# A dotted integer component ("layers.12.output") or an indexed one ("h[3].mlp").
_INDEX = re.compile(r"(?:(?<=\.)|^)(\d+)(?=\.|$)|(?<=\[)(\d+)(?=\])")
STOPPED_STATES = ("early-stopped", "stopped", "interrupted", "error")


def parse_depth(name: str) -> tuple[str, int | None]:
    """("model.layers.12.output") -> ("model.layers.*.output", 12); the first integer
    component is the depth. Names without one (embeddings, final norm) -> (name, None)."""
    m = _INDEX.search(name)
    if m is None:
        return name, None
    start, end = m.span(1) if m.group(1) is not None else m.span(2)
    return name[:start] + "*" + name[end:], int(name[start:end])


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # pyplot so notebooks show the figure inline

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _metrics_frame(source: Any) -> Any:
    """runner -> runner.metrics; a DataFrame passes through."""
    df = getattr(source, "metrics", source)
    if not hasattr(df, "columns") or not hasattr(df, "index"):
        raise TypeError(
            "plot_layer_sweep needs a ProbeRunner or its metrics DataFrame, got "
            f"{type(source).__name__}"
        )
    return df


def plot_layer_sweep(
    source: Any,
    metric: str = "accuracy",
    *,
    ax: Axes | None = None,
    baselines: float | Mapping[str, float] | str | None = "auto",
    ci: bool = True,
    figsize: tuple[float, float] = (6.0, 3.6),
) -> Axes:
    """`metric` against layer depth, one line per kind of submodule.

    Submodules are grouped by their name with the layer index replaced by "*"
    (``model.layers.*.output``, ``transformer.h.*.mlp.output``), split by pooling
    when a group mixes poolings. Submodules without a layer index (embeddings, final
    norm) are drawn as separate markers at depth -1. When the metrics carry
    ``<metric>_low``/``<metric>_high`` columns (bootstrap intervals) they are drawn
    as bands. `baselines`: a value or {label: value}, drawn as dashed lines; "auto"
    (default) draws the runner's ``baseline_<name>`` columns (accuracy of the
    majority / embeddings / random-init baselines) when plotting accuracy, a flat line
    when the baseline is the same at every depth, else a dashed line per group.
    """
    df = _metrics_frame(source)
    if metric not in df.columns:
        numeric = [c for c in df.columns if df[c].dtype.kind in "fiu"]
        raise ValueError(f"no column {metric!r} in the metrics; numeric columns: {numeric}")
    values = df[metric].astype(float)
    if not np.isfinite(values.to_numpy()).any():
        raise ValueError(
            f"{metric!r} has no values yet: fit with an eval_set (fit_probes(train, test)) "
            "or call runner.compute_metrics(dataset) first"
        )
    lo_col, hi_col = f"{metric}_low", f"{metric}_high"
    has_ci = ci and lo_col in df.columns and hi_col in df.columns
    subs = df["submodule"] if "submodule" in df.columns else df.index.to_series()
    pools = df["pooling"] if "pooling" in df.columns else None

    points: dict[str, list[tuple[int, float, float, float]]] = {}
    loose: list[tuple[str, float, float, float]] = []
    group_pools: dict[str, set[str]] = {}
    rows = []
    for i in range(len(df)):
        v = float(values.iloc[i])
        if not math.isfinite(v):
            continue
        sub = str(subs.iloc[i])
        group, depth = parse_depth(sub)
        pool = str(pools.iloc[i]) if pools is not None else ""
        lo = float(df[lo_col].iloc[i]) if has_ci else math.nan
        hi = float(df[hi_col].iloc[i]) if has_ci else math.nan
        rows.append((sub, group, depth, pool, v, lo, hi))
        if depth is not None:
            group_pools.setdefault(group, set()).add(pool)
    for sub, group, depth, pool, v, lo, hi in rows:
        if depth is None:
            loose.append((f"{sub} ({pool})" if pool else sub, v, lo, hi))
            continue
        label = f"{group} ({pool})" if len(group_pools[group]) > 1 else group
        points.setdefault(label, []).append((depth, v, lo, hi))

    ax = _new_axes(ax, figsize)
    for label, pts in points.items():
        pts.sort()
        d = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts])
        (line,) = ax.plot(d, y, marker="o", ms=4, label=label)
        line.set_gid(f"sweep:{label}")
        lo = np.array([p[2] for p in pts])
        hi = np.array([p[3] for p in pts])
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            band = ax.fill_between(d[ok], lo[ok], hi[ok], color=line.get_color(), alpha=0.2, lw=0)
            band.set_gid(f"band:{label}")
    markers = ["s", "D", "^", "v", "P", "X"]
    for j, (label, v, lo, hi) in enumerate(loose):
        yerr = None
        if math.isfinite(lo) and math.isfinite(hi):
            yerr = [[v - lo], [hi - v]]
        cont = ax.errorbar(
            [-1], [v], yerr=yerr, fmt=markers[j % len(markers)], ms=6, capsize=3, label=label
        )
        cont.lines[0].set_gid(f"loose:{label}")
    if isinstance(baselines, str):
        if baselines != "auto":
            raise ValueError("baselines must be 'auto', None, a number or {label: value}")
        if metric == "accuracy":
            _auto_baselines(ax, df, subs)
    elif baselines is not None:
        items = baselines.items() if isinstance(baselines, Mapping) else [("baseline", baselines)]
        for label, value in items:
            ln = ax.axhline(float(value), ls="--", lw=1, color="0.5", label=str(label))
            ln.set_gid(f"baseline:{label}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer" + (" (-1: no layer index)" if loose else ""))
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by layer")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def _auto_baselines(ax: Axes, df: Any, subs: Any) -> None:
    """Dashed grey lines for every `baseline_<name>` column of the metrics."""
    styles = ["--", ":", "-."]
    cols = [c for c in df.columns if str(c).startswith("baseline_")]
    for k, col in enumerate(cols):
        label = f"{str(col)[len('baseline_') :]} baseline"
        vals = df[col].astype(float).to_numpy()
        ok = np.isfinite(vals)
        if not ok.any():
            continue
        style = styles[k % len(styles)]
        if np.allclose(vals[ok], vals[ok][0]):
            ln = ax.axhline(float(vals[ok][0]), ls=style, lw=1, color="0.5", label=label)
            ln.set_gid(f"baseline:{label}")
            continue
        groups: dict[str, list[tuple[int, float]]] = {}
        pools = df["pooling"] if "pooling" in df.columns else [""] * len(df)
        for sub, pool, v in zip(subs, pools, vals, strict=True):
            group, depth = parse_depth(str(sub))
            if depth is not None and math.isfinite(v):
                groups.setdefault(f"{group} ({pool})" if pool else group, []).append((depth, v))
        for j, (group, pts) in enumerate(groups.items()):
            pts.sort()
            (ln,) = ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                ls=style,
                lw=1,
                color="0.5",
                label=label if j == 0 else "_nolegend_",
            )
            ln.set_gid(f"baseline:{label} @ {group}")


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


def plot_training_curves(
    source: Any,
    *,
    probes: Iterable[str] | None = None,
    ax: Axes | None = None,
    logy: bool = False,
    figsize: tuple[float, float] = (6.0, 3.6),
) -> Axes:
    """Validation loss per probe against steps (training loss, dashed, where a probe
    has no validation). A star marks each probe's best step (the weights it keeps);
    an x marks where early stopping, a Stop or an error ended it."""
    items = _probe_items(source, probes)
    if not items:
        raise ValueError("no fitted probes to plot: call fit_probes first")
    ax = _new_axes(ax, figsize)
    for name, probe in items:
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
        (line,) = ax.plot(steps, vals, style, lw=1.5, label=str(name))
        line.set_gid(f"curve:{name}")
        color = line.get_color()
        if rec.best_step is not None and key == "val_loss":
            i = int(np.argmin(np.abs(steps - rec.best_step)))
            (best,) = ax.plot([steps[i]], [vals[i]], "*", ms=11, color=color, mec="black", mew=0.5)
            best.set_gid(f"best:{name}")
        if rec.state in STOPPED_STATES:
            (stop,) = ax.plot([steps[-1]], [vals[-1]], "x", ms=9, mew=2, color=color)
            stop.set_gid(f"stop:{name}")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    ax.set_title("training curves (★ best, × stopped)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def confusion_matrix(
    runner: Any, name: str, dataset: Any, *, batch_size: int = 32
) -> tuple[np.ndarray, list[Any]]:
    """(counts [true, predicted], classes) of probe `name` on a labelled dataset."""
    probe = runner[name]
    cfg = probe.config
    if not getattr(dataset, "has_labels", False):
        raise ValueError("the dataset has no labels: a confusion matrix needs true labels")
    x = runner.get_probe_features(dataset, subset=[name], batch_size=batch_size)[name]
    y = np.asarray(runner._labels(cfg, dataset))
    if cfg.token_level:
        keep = y != cfg.null_label
        x, y = x[keep], y[keep]
    true_idx = probe.encode(y)
    pred_idx = probe.encode(probe.predict(x))
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
    figsize: tuple[float, float] = (4.2, 3.6),
) -> Axes:
    """Confusion matrix of one probe on `dataset` (rows: true class, columns:
    predicted). `normalize`: None (counts), "true" (rows sum to 1), "pred", "all"."""
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
    ax = _new_axes(ax, figsize)
    im = ax.imshow(shown, cmap=cmap, vmin=0)
    im.set_gid("confusion")
    top = shown.max() if shown.size else 0
    for i in range(len(classes)):
        for j in range(len(classes)):
            text = f"{cm[i, j]}" if normalize is None else f"{shown[i, j]:.2f}"
            color = "white" if top and shown[i, j] > top / 2 else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize="small")
    labels = [str(c) for c in classes]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(str(name))
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax
