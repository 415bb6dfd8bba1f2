"""The plots people draw after probing: a layer sweep, training curves, a confusion
matrix. Each takes an optional ``ax`` and returns the Axes it drew on (the Figure
is ``ax.figure``) so users can restyle them; nothing calls ``plt.show``, so the
functions work the same under Agg, inline and widget backends. matplotlib is
imported only when a plot is drawn.

Readable in light and dark notebooks: figures we create have a transparent
background (no white block on a dark theme), text, ticks and spines in a grey that
reads on both, and legends without a frame, placed beside the axes so they never
cover data or baselines.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .columns import baseline_columns, baseline_of
from .states import ENDED_EARLY

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# A dotted integer component ("layers.12.output") or an indexed one ("h[3].mlp").
_INDEX = re.compile(r"(?:(?<=\.)|^)(\d+)(?=\.|$)|(?<=\[)(\d+)(?=\])")
INK = "#777777"  # contrast >= 4:1 on white and on JupyterLab's dark background
STYLE = {
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.titlecolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "grid.color": INK,
    "legend.frameon": False,
    "legend.labelcolor": INK,
}
POOLING_WORDS = {
    "mean": "mean pooling",
    "last": "last token",
    "first": "first token",
    "max": "max pooling",
    "none": "per token",
}
CI_LABEL = "95% interval (bootstrap)"
PAIRED_CI_LABEL = "95% interval (paired bootstrap vs control)"
UNIT_METRICS = ("accuracy", "f1", "roc_auc", "balanced_accuracy")  # at most 1


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """The look above, for the artists created inside (the user's rcParams elsewhere).

    Only these keys are put back afterwards, not all of rcParams as `rc_context` does:
    the first figure of a session activates the backend, and the inline backend turns
    interactive mode on while doing so; restoring everything would turn it off again,
    and later figures would never be shown."""
    import matplotlib

    rc = matplotlib.rcParams
    saved = {k: rc[k] for k in STYLE}
    rc.update(STYLE)
    try:
        yield
    finally:
        rc.update(saved)


def place_legend(ax: Axes, extra: Iterable[Any] = (), **kwargs: Any) -> Any:
    """A frameless legend beside the axes (right), never over the data; `extra`:
    proxy artists to list too. Call it again after adding lines of your own."""
    handles, labels = ax.get_legend_handles_labels()
    for h in extra:
        handles.append(h)
        labels.append(h.get_label())
    if not handles:
        return None
    n = len(handles)
    opts = dict(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
        fontsize="small" if n <= 16 else "x-small",
        ncol=1 if n <= 20 else 2,
    )
    opts.update(kwargs)
    with plot_style():
        return ax.legend(handles, labels, **opts)


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

    with plot_style():
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    fig.patch.set_alpha(0.0)
    ax.patch.set_alpha(0.0)
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


def series_label(group: str, pool: str = "") -> str:
    """A legend label people read: the layer index as i ("h[i]", "model.layers.i"),
    the pooling in words ("model.layers.i · mean pooling")."""
    name = group.replace("*", "i")
    if name.endswith(".output"):
        name = name[: -len(".output")]
    return f"{name} · {POOLING_WORDS.get(pool, pool)}" if pool else name


def _stride(depths: list[int], fallback: int | None) -> int | None:
    """The layer spacing of a sweep: its smallest step when it has three or more
    layers, else the other sweeps' (None: nothing says which layers lie between)."""
    gaps = sorted({b - a for a, b in zip(depths, depths[1:], strict=False) if b > a})
    if len(set(depths)) >= 3 and gaps:
        return gaps[0]
    return fallback


def _with_gaps(d: np.ndarray, *cols: np.ndarray, stride: int | None) -> list[np.ndarray]:
    """NaN between neighbours further apart than `stride`: a line never crosses layers
    that were not measured."""
    if stride is None or len(d) < 2:
        return [d, *cols]
    cut = np.flatnonzero(np.diff(d) > stride) + 1
    if not len(cut):
        return [d, *cols]
    return [np.insert(a.astype(float), cut, np.nan) for a in (d, *cols)]


def plot_layer_sweep(
    source: Any,
    metric: str = "accuracy",
    *,
    ax: Axes | None = None,
    baselines: float | Mapping[str, float] | str | None = "auto",
    references: Mapping[str, float] | None = None,
    ci: bool = True,
    best: bool = False,
    figsize: tuple[float, float] = (7.5, 3.6),
) -> Axes:
    """`metric` against layer depth, one line per kind of submodule.

    Submodules are grouped by their name with the layer index replaced by "*"
    (``model.layers.*.output``, ``transformer.h.*.mlp.output``), split by pooling
    when a group mixes poolings; the legend reads ``model.layers.i · mean pooling``.
    Points are joined only between neighbouring measured layers (a sweep of every third
    layer is a line; two layers far apart are two points). Submodules without a layer
    index (embeddings, final norm) are drawn as separate markers at depth -1. When the
    metrics carry ``<metric>_low``/``<metric>_high`` columns (bootstrap intervals) they
    are drawn as bands, with a legend entry. `baselines`: a value or {label: value},
    drawn as lines; "auto" (default) draws the runner's ``baseline_<name>`` columns of
    the metric, each in its own colour and dash, named at its right end (blank columns,
    a method a Stop left unfinished, are not drawn). `references`: more {label: value}
    lines (dotted), e.g. an earlier run. The legend sits beside the axes; the x ticks
    are the probed layers (up to 16 of them). `best=True` (a runner, accuracy or R²)
    stars the probe chosen by cross-validation and rings the layers whose paired
    comparison with it ties (95%, Holm; `core.methods.compare.ties_with_best`).
    """
    df = _metrics_frame(source)
    unfinished = _unfinished_note(df, metric)
    if unfinished:  # a Stop left this metric blank: say so instead of failing the cell
        ax = _new_axes(ax, figsize)
        with plot_style():
            ax.text(
                0.5,
                0.5,
                unfinished,
                ha="center",
                va="center",
                wrap=True,
                transform=ax.transAxes,
                fontsize="small",
            )
            ax.set_title(f"{metric} by layer: not measured")
            ax.set_xticks([])
            ax.set_yticks([])
        return ax
    values = _sweep_values(df, metric)
    lo_col, hi_col = f"{metric}_low", f"{metric}_high"
    band_label = CI_LABEL
    if ci and metric == "selectivity" and lo_col not in df.columns:
        df, band_label = _selectivity_intervals(source, df), PAIRED_CI_LABEL
    has_ci = ci and lo_col in df.columns and hi_col in df.columns
    subs = df["submodule"] if "submodule" in df.columns else df.index.to_series()
    pools = df["pooling"] if "pooling" in df.columns else None

    points, labels, loose = _sweep_points(df, values, subs, pools, has_ci, metric)
    for pts in points.values():
        pts.sort()
    strides = [_stride([p[0] for p in pts], None) for pts in points.values()]
    common = min((s for s in strides if s is not None), default=None)

    ax = _new_axes(ax, figsize)
    from matplotlib.patches import Patch

    extra = []
    with plot_style():
        for key, pts in points.items():
            depths = [p[0] for p in pts]
            d, y, lo, hi = _with_gaps(
                np.array(depths, dtype=float),
                np.array([p[1] for p in pts]),
                np.array([p[2] for p in pts]),
                np.array([p[3] for p in pts]),
                stride=_stride(depths, common),
            )
            joined = _stride(depths, common) is not None
            (line,) = ax.plot(
                d, y, marker="o", ms=4, ls="-" if joined else "none", label=labels[key]
            )
            line.set_gid(f"sweep:{key}")
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                band = ax.fill_between(
                    d,
                    np.where(ok, lo, np.nan),
                    np.where(ok, hi, np.nan),
                    color=line.get_color(),
                    alpha=0.2,
                    lw=0,
                )
                band.set_gid(f"band:{key}")
                if not extra:
                    # one series: the swatch is its band's colour (a grey one all but
                    # vanished on a dark page); several: a neutral grey for all
                    single = len(points) == 1
                    swatch = line.get_color() if single else INK
                    extra.append(
                        Patch(facecolor=swatch, alpha=0.35 if single else 0.3, label=band_label)
                    )
        markers = ["s", "D", "^", "v", "P", "X"]
        for j, (label, v, lo, hi) in enumerate(loose):
            yerr = None
            if math.isfinite(lo) and math.isfinite(hi):
                yerr = [[v - lo], [hi - v]]
            sub, _, pool = label.partition(" (")
            cont = ax.errorbar(
                [-1],
                [v],
                yerr=yerr,
                fmt=markers[j % len(markers)],
                ms=6,
                capsize=3,
                label=series_label(sub, pool.rstrip(")")),
            )
            cont.lines[0].set_gid(f"loose:{label}")
        _draw_baselines(ax, df, subs, metric, baselines, references)
        if best:
            _mark_best(ax, source, df, values, subs, metric)
        from matplotlib.ticker import MaxNLocator

        probed = sorted({p[0] for pts in points.values() for p in pts})
        if loose:
            probed = [-1, *probed]
        if 0 < len(probed) <= 16:  # a tick at each probed layer, no others
            ax.set_xticks(probed)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer" + (" (-1: no layer index)" if loose else ""))
        ax.set_ylabel(metric)
        low, high = ax.get_ylim()
        if metric in UNIT_METRICS and high > 1.0:  # no axis above what can be scored
            ax.set_ylim(low, 1.0 + 0.02 * (1.0 - low))
        ax.set_title(f"{metric} by layer")
        ax.grid(True, alpha=0.3)
    place_legend(ax, extra)
    return ax


def _mark_best(ax: Axes, runner: Any, df: Any, values: Any, subs: Any, metric: str) -> None:
    """A star on the CV-chosen probe, rings on the layers that tie with it."""
    from ..core.methods.compare import ties_with_best

    if not hasattr(runner, "compare") or metric not in ("accuracy", "r2"):
        raise ValueError("best=True needs the runner itself and metric 'accuracy' or 'r2'")
    chosen, comparisons = ties_with_best(runner)
    depth = {n: parse_depth(str(subs.loc[n]))[1] for n in df.index}
    ties = [n for n, c in comparisons.items() if c.verdict == "ties" and depth[n] is not None]
    if depth[chosen] is not None:
        ax.plot(
            [depth[chosen]],
            [values[chosen]],
            "*",
            ms=14,
            color=INK,
            ls="none",
            label="best by CV loss",
            gid="best",
        )
    if ties:
        ax.plot(
            [depth[n] for n in ties],
            [values[n] for n in ties],
            "o",
            ms=11,
            mfc="none",
            color=INK,
            ls="none",
            label="ties with it (paired 95%, Holm)",
            gid="ties",
        )


def _selectivity_intervals(source: Any, df: Any) -> Any:
    """Selectivity is a difference of two accuracies on the same test texts: its band is
    the paired interval `runner.validity()` computes (task vs control probe), not one
    made from the two accuracies' own intervals. Only a runner can give it; a bare
    metrics frame is returned as it is (pass ``selectivity_low``/``_high`` columns)."""
    if not hasattr(source, "validity") or getattr(source, "control", None) is None:
        return df
    card = source.validity()
    cols = [c for c in ("selectivity_low", "selectivity_high") if c in card.columns]
    if len(cols) < 2:
        return df
    return df.join(card[cols], how="left")


def _unfinished_note(df: Any, metric: str) -> str:
    """Why `metric` is blank when a stopped fit left its method unfinished (the
    runner's metrics say which in ``attrs["incomplete"]``), else ""."""
    incomplete = getattr(df, "attrs", {}).get("incomplete") or {}
    owner = "control" if metric in ("selectivity", "control_accuracy", "control_r2") else None
    if metric.startswith("baseline_"):
        owner = "baseline_" + baseline_of(metric)[0]
    if owner not in incomplete or metric not in df.columns:
        return ""
    if np.isfinite(df[metric].astype(float).to_numpy()).any():
        return ""
    return (
        f"{metric} was not measured: the fit was stopped before {owner} finished "
        f"({incomplete[owner]}). Run the same fit_probes call with resume=True."
    )


def _sweep_values(df: Any, metric: str) -> Any:
    """The `metric` column as floats, or a ValueError that says why it cannot be drawn."""
    if metric not in df.columns:
        numeric = [c for c in df.columns if df[c].dtype.kind in "fiu"]
        raise ValueError(f"no column {metric!r} in the metrics; numeric columns: {numeric}")
    values = df[metric].astype(float)
    if not np.isfinite(values.to_numpy()).any():
        others = [
            c
            for c in ("accuracy", "loss", "f1")
            if c in df.columns and np.isfinite(df[c].astype(float).to_numpy()).any()
        ]
        if others:
            raise ValueError(f"{metric!r} has no value for these probes (not computed for them)")
        raise ValueError(
            f"{metric!r} has no values yet: fit with an eval_set (fit_probes(train, test)) "
            "or call runner.compute_metrics(dataset) first"
        )
    return values


def _sweep_points(
    df: Any, values: Any, subs: Any, pools: Any, has_ci: bool, metric: str
) -> tuple[dict[str, list[tuple[int, float, float, float]]], dict[str, str], list]:
    """Points per series key (sorted by depth), their legend labels, and the loose
    submodules (no layer index) as (label, value, low, high)."""
    lo_col, hi_col = f"{metric}_low", f"{metric}_high"
    points: dict[str, list[tuple[int, float, float, float]]] = {}
    labels: dict[str, str] = {}
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
        key = f"{group} ({pool})" if len(group_pools[group]) > 1 else group
        labels[key] = series_label(group, pool)
        points.setdefault(key, []).append((depth, v, lo, hi))
    return points, labels, loose


def _draw_baselines(
    ax: Axes,
    df: Any,
    subs: Any,
    metric: str,
    baselines: float | Mapping[str, float] | str | None,
    references: Mapping[str, float] | None,
) -> None:
    """Dashed baseline lines ("auto": the runner's baseline columns) and dotted references."""
    if isinstance(baselines, str):
        if baselines != "auto":
            raise ValueError("baselines must be 'auto', None, a number or {label: value}")
        _auto_baselines(ax, df, subs, metric)
    elif baselines is not None:
        items = baselines.items() if isinstance(baselines, Mapping) else [("baseline", baselines)]
        for k, (label, value) in enumerate(items):
            _, colour, dash = baseline_look(str(label), k)
            ln = ax.axhline(float(value), ls=dash, lw=1.2, color=colour, label=str(label))
            ln.set_gid(f"baseline:{label}")
    for k, (label, value) in enumerate((references or {}).items()):
        ln = ax.axhline(float(value), ls=":", lw=1.2, color=f"C{(k + 3) % 10}", label=label)
        ln.set_gid(f"reference:{label}")


# Each baseline its own colour and dash (never the probes' solid lines), and a name
# a reader knows; others take the rest of the palette in turn.
BASELINE_LOOK: dict[str, tuple[str, str, Any]] = {
    "majority": ("majority class", "#8c564b", (0, (1, 2))),
    "random_init": ("random-init model", "#9467bd", (0, (6, 2))),
    "bag_of_words": ("bag of words", "#e377c2", (0, (4, 1.5, 1, 1.5))),
    "tfidf": ("TF-IDF", "#bcbd22", (0, (2, 1.5))),
    "length": ("length", "#17becf", (0, (8, 2, 1, 2, 1, 2))),
    "embeddings": ("input embeddings", "#7f7f7f", (0, (3, 1, 1, 1))),
}
_SPARE_LOOKS = [("#d62728", (0, (5, 3))), ("#ff7f0e", (0, (1, 1))), ("#2ca02c", (0, (3, 3)))]


def baseline_look(name: str, k: int = 0) -> tuple[str, str, Any]:
    """(legend label, colour, dash pattern) of a baseline."""
    if name in BASELINE_LOOK:
        words, colour, dash = BASELINE_LOOK[name]
    else:
        words = name.replace("_", " ")
        colour, dash = _SPARE_LOOKS[k % len(_SPARE_LOOKS)]
    return f"{words} (baseline)", colour, dash


def _label_line_ends(ax: Axes, ends: list[tuple[float, str, str]]) -> None:
    """Direct labels inside the right edge, just above each baseline's right end (a
    reader need not go to the legend), nudged apart so none covers another."""
    if not ends:
        return
    lo, hi = ax.get_ylim()
    gap = 0.05 * (hi - lo)
    placed: list[float] = []
    for y, text, colour in sorted(ends):
        at = max(y, placed[-1] + gap) if placed else y
        placed.append(at)
        t = ax.annotate(
            text,
            (0.995, at),
            xycoords=ax.get_yaxis_transform(),
            xytext=(0, 1.5),
            textcoords="offset points",
            va="bottom",
            ha="right",
            fontsize="x-small",
            color=colour,
            annotation_clip=False,
        )
        t.set_gid(f"baseline-label:{text}")


def _auto_baselines(ax: Axes, df: Any, subs: Any, metric: str) -> None:
    """A line per `baseline_*` column that holds `metric`, each in its own colour and
    dash, labelled at its right end; blank columns (a method a Stop left unfinished)
    are not drawn."""
    ends: list[tuple[float, str, str]] = []
    for k, col in enumerate(baseline_columns(df.columns, metric)):
        name = baseline_of(col)[0]
        label, colour, style = baseline_look(name, k)
        short = label.removesuffix(" (baseline)")
        vals = df[col].astype(float).to_numpy()
        ok = np.isfinite(vals)
        if not ok.any():
            continue
        if np.allclose(vals[ok], vals[ok][0]):
            ln = ax.axhline(float(vals[ok][0]), ls=style, lw=1.2, color=colour, label=label)
            ln.set_gid(f"baseline:{label}")
            ends.append((float(vals[ok][0]), short, colour))
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
                lw=1.2,
                color=colour,
                label=label if j == 0 else "_nolegend_",
            )
            ln.set_gid(f"baseline:{label} @ {group}")
            if j == 0:
                ends.append((float(pts[-1][1]), short, colour))
    _label_line_ends(ax, ends)


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
    ax = _new_axes(ax, figsize or (7.5 if n <= 20 else 9.5, 3.6 if n <= 16 else 4.8))
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


def confusion_matrix(
    runner: Any, name: str, dataset: Any, *, batch_size: int = 32
) -> tuple[np.ndarray, list[Any]]:
    """(counts [true, predicted], classes) of probe `name` on a labelled dataset."""
    probe = runner[name]
    cfg = probe.config
    if not getattr(dataset, "has_labels", False):
        raise ValueError("the dataset has no labels: a confusion matrix needs true labels")
    from ..core.engine.plan import scored_labels

    x = runner.get_probe_features(dataset, subset=[name], batch_size=batch_size)[name]
    keep, true_idx = scored_labels(cfg, dataset)  # ignored tokens dropped
    pred_idx = probe.encode(probe.predict(x[keep] if len(keep) != len(x) else x))
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
    ax = _new_axes(ax, figsize)
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
    ax = _new_axes(ax, (4.6, 4.2))
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
    from ..core.engine.metrics import calibration_curve
    from ..core.engine.plan import scored_labels

    probe = runner[name]
    if probe.config.task == "regression" or len(probe.config.classes) != 2:
        raise ValueError("a reliability diagram needs a binary classification probe")
    x = runner.get_probe_features(dataset, subset=[name], batch_size=batch_size)[name]
    keep, y = scored_labels(probe.config, dataset)
    proba = probe.predict_proba(x[keep] if len(keep) != len(x) else x)
    mean_pred, frac_pos, count = calibration_curve(proba, y, n_bins=n_bins)
    ax = _new_axes(ax, (4.6, 4.2))
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
    ax = _new_axes(ax, (1.4 + 1.1 * len(cols), 1.2 + 0.45 * len(rows)))
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
