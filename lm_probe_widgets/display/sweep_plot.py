"""The layer sweep: a metric against layer depth, one line per kind of submodule, with
bootstrap bands, the baselines of the metric named at their line ends, selectivity's
paired intervals against the control task, and (asked for) the chosen layer and the
layers that tie with it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .columns import baseline_columns, baseline_of
from .plot_style import INK, new_axes, place_legend, plot_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# A dotted integer component ("layers.12.output") or an indexed one ("h[3].mlp").
_INDEX = re.compile(r"(?:(?<=\.)|^)(\d+)(?=\.|$)|(?<=\[)(\d+)(?=\])")
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


def parse_depth(name: str) -> tuple[str, int | None]:
    """("model.layers.12.output") -> ("model.layers.*.output", 12); the first integer
    component is the depth. Names without one (embeddings, final norm) -> (name, None)."""
    m = _INDEX.search(name)
    if m is None:
        return name, None
    start, end = m.span(1) if m.group(1) is not None else m.span(2)
    return name[:start] + "*" + name[end:], int(name[start:end])


def _metrics_frame(source: Any) -> Any:
    """runner -> runner.metrics; a DataFrame passes through."""
    df = getattr(source, "metrics", source)
    if not hasattr(df, "columns") or not hasattr(df, "index"):
        raise TypeError(
            "plot_layer_sweep needs a ProbeRunner or its metrics DataFrame, got "
            f"{type(source).__name__}"
        )
    return df


def series_reads(df: Any) -> Any:
    """Per row, how the probe reads its site: the pooling, and for a family probe
    (`kind` other than "linear") the family too ("mlp probe, mean pooling"; an
    attention probe's pooling is learned), so a mixed sweep draws one line per family.
    None without a pooling column."""
    import pandas as pd  # a metrics frame's own library, loaded already

    if "pooling" not in df.columns:
        return None
    pools = df["pooling"].astype(str)
    if "kind" not in df.columns:
        return pools
    kinds = df["kind"].fillna("linear").astype(str)
    words = [
        p if k == "linear" else f"{k} probe" if k == "attention"
        else f"{k} probe, {POOLING_WORDS.get(p, p)}"
        for k, p in zip(kinds, pools, strict=True)
    ]  # fmt: skip
    return pd.Series(words, index=df.index)


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
        ax = new_axes(ax, figsize)
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
    pools = series_reads(df)

    points, labels, loose = _sweep_points(df, values, subs, pools, has_ci, metric)
    for pts in points.values():
        pts.sort()
    strides = [_stride([p[0] for p in pts], None) for pts in points.values()]
    common = min((s for s in strides if s is not None), default=None)

    ax = new_axes(ax, figsize)
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
        pools = series_reads(df)
        pools = [""] * len(df) if pools is None else pools
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
