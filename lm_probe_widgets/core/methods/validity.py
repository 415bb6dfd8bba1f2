"""Does a probe result survive the obvious objections? Generalisation across datasets,
seed stability, and a validity card that brings the answers together.

All of it reads cached features: evaluating on another dataset runs the model once
per new dataset, refitting with other seeds never runs it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..engine.data import ProbeDataset
from ..engine.progress import track
from ..errors import ProbeError
from .compare import LEVEL, Comparison, holm_family

if TYPE_CHECKING:
    from ..runner import ProbeRunner

# Metrics a generalisation table reports, by task.
_SCORES = {
    "classification": ["accuracy", "f1", "matthews", "roc_auc", "loss"],
    "regression": ["r2", "pearson", "spearman", "mse", "mae"],
}


def evaluate_many(
    runner: ProbeRunner,
    datasets: Mapping[str, ProbeDataset],
    batch_size: int = 32,
    progress: Any = "auto",
) -> pd.DataFrame:
    """Every fitted probe on every named dataset: a tidy table with one row per
    (probe, dataset, metric). The runner's own metrics are left as they were.
    `progress` as in `fit_probes` (counted in examples, a dataset at a time)."""
    if not datasets:
        raise ProbeError("give at least one dataset: evaluate({'name': dataset, ...})")
    rows = []
    total = sum(len(ds) for ds in datasets.values())
    with track(runner, "evaluation", total, unit="examples", progress=progress) as t:
        for name, ds in datasets.items():
            rows += _evaluate_one(runner, name, ds, batch_size)
            t.advance(len(ds))
    return pd.DataFrame(rows)


def _evaluate_one(
    runner: ProbeRunner, name: str, ds: ProbeDataset, batch_size: int
) -> list[dict[str, Any]]:
    rows = []
    table = runner.score(ds, batch_size=batch_size)
    for probe, row in table.iterrows():
        task = runner[probe].config.task or "classification"
        for metric in _SCORES[task]:
            value = row.get(metric, math.nan)
            low, high = row.get(f"{metric}_low", math.nan), row.get(f"{metric}_high", math.nan)
            rows.append(
                {
                    "probe": probe,
                    "dataset": name,
                    "metric": metric,
                    "value": value,
                    "low": low,
                    "high": high,
                    "n": row.get("n", math.nan),
                }
            )
    return rows


def transfer_matrix(
    runner: ProbeRunner,
    datasets: Mapping[str, tuple[ProbeDataset, ProbeDataset]],
    metric: str = "accuracy",
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Train on each dataset's training part, test on every dataset's test part.

    `datasets` maps a name to (train, test). Returns a long table (probe, train_on,
    test_on, `metric`); pivot it per probe for the matrix. Each training set gets its
    own runner (same model, configs and feature cache), so `runner` is unchanged.
    """
    progress = fit_kwargs.pop("progress", "auto")
    fit_kwargs = {**fit_kwargs, "progress": None}
    rows = []
    keys = [f"train on {name}" for name in datasets]
    # each training set is one phase: its fit, then its tests (timed like the first)
    phases = [{"phase": k, "total": None, "like": keys[0]} for k in keys]
    with track(runner, "transfer", len(keys), unit="fits", phases=phases, progress=progress) as t:
        for key, (train_name, (train, _)) in zip(keys, datasets.items(), strict=True):
            sibling = runner.sibling()
            unsubscribe = sibling.events.subscribe(t.relay(key))
            try:
                sibling.fit_probes(train, **fit_kwargs)
            finally:
                unsubscribe()
            tests = {name: test for name, (_, test) in datasets.items()}
            long = evaluate_many(sibling, tests, fit_kwargs.get("batch_size", 32), progress=None)
            for r in long[long["metric"] == metric].itertuples():
                rows.append(
                    {
                        "probe": r.probe,
                        "train_on": train_name,
                        "test_on": r.dataset,
                        metric: r.value,
                    }
                )
    return pd.DataFrame(rows)


def seed_spread(
    runner: ProbeRunner,
    seeds: int | list[int] = 3,
    *,
    subsample: float = 0.8,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Refit the probes (not the model) on resampled training sets with other seeds,
    and report the spread of each held-out metric per probe (mean, std, min, max).

    Each refit trains on a seeded `subsample` fraction of the runner's last training
    data (drawn without replacement, whole groups when the data carry them; 1.0: all
    of it), with its own validation split, batch order and initial weights. Seeds
    alone change little (the final fit is convex and sees the same rows whatever the
    seed), so a seed-only spread near zero says nothing about how much the result
    depends on the sample it was trained on; the subsamples do (half-sampling, as in
    stability selection: Meinshausen & Buehlmann 2010)."""
    plan = runner.last_plan
    if plan is None or plan.eval_set is None:
        raise ProbeError("stability needs a fit with an eval_set first")
    if isinstance(seeds, int):
        if seeds < 2:
            raise ProbeError("seeds must be at least 2 to have a spread")
        seeds = [plan.seed + i for i in range(seeds)]
    if not 0 < subsample <= 1:
        raise ProbeError(f"subsample must be a fraction in (0, 1], got {subsample}")
    train = plan.train if plan.val is None else _union(plan.train, plan.val)
    progress = fit_kwargs.pop("progress", "auto")
    kw = {
        "num_epoch": plan.num_epoch,
        "batch_size": plan.batch_size,
        "bootstrap": 0,
        **fit_kwargs,
        "progress": None,  # the refits show as phases of the one display below
    }
    frames = []
    keys = [f"refit {i + 1}/{len(seeds)} (seed {seed})" for i, seed in enumerate(seeds)]
    phases = [{"phase": k, "total": None, "like": keys[0]} for k in keys]
    with track(
        runner, "stability", len(seeds), unit="refits", phases=phases, progress=progress
    ) as t:
        for key, seed in zip(keys, seeds, strict=True):
            configs = [dataclasses.replace(c, seed=seed) for c in plan.configs]
            sibling = runner.sibling(configs)
            part = train if subsample == 1 else _subsample(train, subsample, seed)
            unsubscribe = sibling.events.subscribe(t.relay(key))
            try:
                sibling.fit_probes(part, plan.eval_set, seed=seed, **kw)
            finally:
                unsubscribe()
            m = sibling.metrics.assign(seed=seed, n_train=len(part))
            frames.append(m)
    all_runs = pd.concat(frames)
    metrics = [
        c
        for c in ("accuracy", "f1", "matthews", "roc_auc", "loss", "r2", "mse")
        if c in all_runs and all_runs[c].notna().any()
    ]
    spread = all_runs.groupby(level=0)[metrics].agg(["mean", "std", "min", "max"])
    return spread.reindex([c.name for c in plan.configs])


def _subsample(ds: ProbeDataset, fraction: float, seed: int) -> ProbeDataset:
    """A seeded `fraction` of `ds` without replacement; whole groups when `ds` has them
    (groups in a random order until the fraction is reached)."""
    rng = np.random.default_rng(seed)
    groups = getattr(ds, "groups", None)
    if groups is None:
        rows = rng.permutation(len(ds))[: max(2, round(fraction * len(ds)))]
        return ds.subset(np.sort(rows))
    ids, sizes = np.unique(groups, return_counts=True)
    order = rng.permutation(len(ids))
    taken = order[: int(np.searchsorted(np.cumsum(sizes[order]), fraction * len(ds))) + 1]
    return ds.subset(np.flatnonzero(np.isin(groups, ids[taken])))


def _union(a: ProbeDataset, b: ProbeDataset) -> ProbeDataset:
    """The examples of `a` then `b` (the split `b` was taken from, put back)."""
    if a.is_token_level:
        labels: Any = a.token_labels + b.token_labels
    else:
        labels = np.concatenate([a.label_values, b.label_values])
    out = ProbeDataset(a.tokens + b.tokens, labels=labels)
    groups = [getattr(d, "groups", None) for d in (a, b)]
    out.groups = None if any(g is None for g in groups) else np.concatenate(groups)
    return out


def validity_table(runner: ProbeRunner, level: float = LEVEL) -> pd.DataFrame:
    """One row per probe: the checks a probing result must survive, each with its
    number and a one-line reading. Each comparison (with the control task, the
    random-init model, every confound) is paired over the test texts and its verdict
    (beats / ties / loses) is Holm-corrected across the whole card at `level`; a probe
    that loses to the random-init model or a confound is flagged. Missing checks (no
    control, no baselines, no seed spread) say how to get them."""
    m = runner.metrics
    fitted = [c for c in runner.configs if c.name in m.index and c.name in runner.probes]
    unfinished = getattr(runner, "incomplete", {})  # a Stop left them half-trained
    family = _card_comparisons(runner, fitted, m, level, unfinished)
    rows = [
        _card_row(runner, cfg, m.loc[cfg.name], family.get(cfg.name, {}), unfinished)
        for cfg in fitted
    ]
    return pd.DataFrame(rows).set_index("probe") if rows else pd.DataFrame()


def _card_row(
    runner: ProbeRunner,
    cfg: Any,
    r: pd.Series,
    mine: dict[str, Comparison],
    unfinished: dict[str, str],
) -> dict[str, Any]:
    """One probe's card: its numbers (columns) and their readings."""
    regression = cfg.task == "regression"
    score = "r2" if regression else "accuracy"
    value = r.get(score, math.nan)
    row: dict[str, Any] = {"probe": cfg.name, score: value}
    readings = []
    if math.isnan(value):
        readings.append("no held-out metrics: fit with an eval_set")
    row["selectivity"] = r.get("selectivity", math.nan)
    if "control" in mine:
        readings.append(_columns(row, "control", mine["control"], "its control task"))
        if mine["control"].difference < 0:
            readings.append(NEGATIVE_SELECTIVITY)
    elif "control" in unfinished:
        _blank(row, "control")
        readings.append(f"control task: {RESUME}")
    elif math.isnan(row["selectivity"]):
        readings.append("control task: fit with control=True")
    if "random_init" in mine:
        readings.append(_columns(row, "random_init", mine["random_init"], "a random-init model"))
    elif "baseline_random_init" in unfinished:
        _blank(row, "random_init")
        readings.append(f"random-init model: {RESUME}")
    readings += _confound_readings(runner, row, mine, unfinished)
    losses = [k for k, c in mine.items() if k != "control" and c.verdict == "loses"]
    row["flag"] = "loses to " + ", ".join(k.replace("_", " ") for k in losses) if losses else ""
    low, high = r.get(f"{score}_low", math.nan), r.get(f"{score}_high", math.nan)
    row["ci_width"] = high - low
    if not math.isnan(high - low):
        half = (high - low) / 2
        readings.append(f"CI ±{half:.3f} R²" if regression else f"CI ±{100 * half:.1f} points")
    row["compression"] = r.get("compression", math.nan)
    if not math.isnan(row["compression"]):
        readings.append(f"MDL (online code) compresses labels {row['compression']:.2f}x")
    elif not regression:
        readings.append("MDL: runner.mdl()")
    spread = getattr(runner, "spread", None)
    if spread is not None and cfg.name in spread.index and (score, "std") in spread:
        row["refit_std"] = spread.loc[cfg.name, (score, "std")]
        readings.append(f"refit std {_pts(row['refit_std'], regression)} (runner.stability)")
    row["reading"] = "; ".join(readings)
    return row


def _confound_readings(
    runner: ProbeRunner, row: dict[str, Any], mine: dict[str, Comparison], unfinished: dict
) -> list[str]:
    """The strongest confound's columns and reading, and any loss to a weaker one."""
    confounds = {k: c for k, c in mine.items() if k in CONFOUND_NAMES}
    if confounds:
        best = max(confounds, key=lambda k: confounds[k].b_score)
        row["strongest_confound"] = best
        out = [_columns(row, "confound", confounds[best], best.replace("_", " "))]
        for k, c in confounds.items():  # a loss to a weaker confound is still a loss
            if k != best and c.verdict == "loses":
                out.append(c.reading(k.replace("_", " ")))
        return out
    if any(f"baseline_{k}" in unfinished for k in CONFOUND_NAMES):
        _blank(row, "confound")
        row["strongest_confound"] = None
        return [f"confounds: {RESUME}"]
    if any(k in CONFOUND_NAMES for k in getattr(runner, "baselines", {})):
        row["gap_confound"], row["strongest_confound"] = math.nan, None
        return ["confounds: no numbers for this probe (see their `note` column)"]
    return ["confounds: baselines=('length', 'bag_of_words', 'tfidf')"]


def _card_comparisons(
    runner: ProbeRunner,
    configs: list[Any],
    m: pd.DataFrame,
    level: float,
    unfinished: dict[str, str],
) -> dict[str, dict[str, Comparison]]:
    """{probe: {"control" / baseline name: its Comparison}}, Holm-adjusted together.
    A side with no numbers for a probe (token-level confounds), or one a Stop left
    unfinished, is left out."""
    made: list[tuple[str, str, Comparison]] = []
    baselines = getattr(runner, "baselines", {})
    for cfg in configs:
        if math.isnan(m.loc[cfg.name].get("r2" if cfg.task == "regression" else "accuracy")):
            continue
        sides = ["control"] if getattr(runner, "control", None) is not None else []
        sides += [k for k in ("random_init", *CONFOUND_NAMES) if k in baselines]
        sides = [k for k in sides if (k if k == "control" else f"baseline_{k}") not in unfinished]
        for side in sides:
            try:
                made.append((cfg.name, side, runner.compare(cfg.name, side, level=level)))
            except ProbeError:  # no numbers for this probe (token-level confounds)
                continue
    adjusted = holm_family([c for _, _, c in made])
    out: dict[str, dict[str, Comparison]] = {}
    for (probe, side, _), c in zip(made, adjusted, strict=True):
        out.setdefault(probe, {})[side] = c
    return out


def _columns(row: dict[str, Any], key: str, c: Comparison, words: str) -> str:
    """The comparison's gap, interval and verdict as card columns; its reading."""
    gap = "selectivity" if key == "control" else f"gap_{key}"
    row[gap] = c.difference
    row[f"{gap}_low"], row[f"{gap}_high"] = c.low, c.high
    row[f"vs_{key}"] = c.verdict
    return c.reading(words)


def _blank(row: dict[str, Any], key: str) -> None:
    """A stopped method's card columns: there (a lesson's next cell selects them), blank."""
    gap = "selectivity" if key == "control" else f"gap_{key}"
    row[gap] = row.get(gap, math.nan) if key == "control" else math.nan
    row[f"{gap}_low"], row[f"{gap}_high"] = math.nan, math.nan
    row[f"vs_{key}"] = None


CONFOUND_NAMES = ("length", "bag_of_words", "tfidf")
RESUME = "not finished (the fit was stopped): fit_probes(..., resume=True) finishes it"
NEGATIVE_SELECTIVITY = (
    "selectivity below 0 reads 'no evidence beyond the words': the control labels have "
    "no label noise, so noise in the task alone lowers selectivity"
)


def _pts(x: float, regression: bool) -> str:
    """A spread in accuracy points, or in R²."""
    if math.isnan(x):
        return "?"
    return f"{x:.3f} R²" if regression else f"{100 * x:.1f} points"
