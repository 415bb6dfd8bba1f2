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
from ..engine.metrics import parse_baseline_column
from ..errors import ProbeError

if TYPE_CHECKING:
    from ..runner import ProbeRunner

# Metrics a generalisation table reports, by task.
_SCORES = {
    "classification": ["accuracy", "f1", "matthews", "roc_auc", "loss"],
    "regression": ["r2", "pearson", "spearman", "mse", "mae"],
}


def evaluate_many(
    runner: ProbeRunner, datasets: Mapping[str, ProbeDataset], batch_size: int = 32
) -> pd.DataFrame:
    """Every fitted probe on every named dataset: a tidy table with one row per
    (probe, dataset, metric). The runner's own metrics are left as they were."""
    if not datasets:
        raise ProbeError("give at least one dataset: evaluate({'name': dataset, ...})")
    rows = []
    for name, ds in datasets.items():
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
    return pd.DataFrame(rows)


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
    fit_kwargs = {"progress": None, **fit_kwargs}
    rows = []
    for train_name, (train, _) in datasets.items():
        sibling = runner.sibling()
        sibling.fit_probes(train, **fit_kwargs)
        tests = {name: test for name, (_, test) in datasets.items()}
        long = evaluate_many(sibling, tests, fit_kwargs.get("batch_size", 32))
        for r in long[long["metric"] == metric].itertuples():
            rows.append(
                {"probe": r.probe, "train_on": train_name, "test_on": r.dataset, metric: r.value}
            )
    return pd.DataFrame(rows)


def seed_spread(runner: ProbeRunner, seeds: int | list[int] = 3, **fit_kwargs: Any) -> pd.DataFrame:
    """Refit the probes (not the model) with other seeds: other validation splits,
    batch orders and initial weights, on the runner's last training data, and report
    the spread of each held-out metric per probe (mean, std, min, max)."""
    plan = runner.last_plan
    if plan is None or plan.eval_set is None:
        raise ProbeError("seed stability needs a fit with an eval_set first")
    if isinstance(seeds, int):
        if seeds < 2:
            raise ProbeError("seeds must be at least 2 to have a spread")
        seeds = [plan.seed + i for i in range(seeds)]
    train = plan.train if plan.val is None else _union(plan.train, plan.val)
    kw = {
        "num_epoch": plan.num_epoch,
        "batch_size": plan.batch_size,
        "bootstrap": 0,
        "progress": None,
        **fit_kwargs,
    }
    frames = []
    for seed in seeds:
        configs = [dataclasses.replace(c, seed=seed) for c in plan.configs]
        sibling = runner.sibling(configs)
        sibling.fit_probes(train, plan.eval_set, seed=seed, **kw)
        m = sibling.metrics.assign(seed=seed)
        frames.append(m)
    all_runs = pd.concat(frames)
    metrics = [
        c
        for c in ("accuracy", "f1", "matthews", "roc_auc", "loss", "r2", "mse")
        if c in all_runs and all_runs[c].notna().any()
    ]
    spread = all_runs.groupby(level=0)[metrics].agg(["mean", "std", "min", "max"])
    return spread.reindex([c.name for c in plan.configs])


def _union(a: ProbeDataset, b: ProbeDataset) -> ProbeDataset:
    """The examples of `a` then `b` (the split `b` was taken from, put back)."""
    if a.is_token_level:
        labels: Any = a.token_labels + b.token_labels
    else:
        labels = np.concatenate([a.label_values, b.label_values])
    return ProbeDataset(a.tokens + b.tokens, labels=labels)


def validity_table(runner: ProbeRunner) -> pd.DataFrame:
    """One row per probe: the checks a probing result must survive, each with its
    number and a one-line reading. Missing checks (no control, no baselines, no
    seed spread) say how to get them."""
    m = runner.metrics
    spread = getattr(runner, "spread", None)
    rows = []
    for cfg in runner.configs:
        name = cfg.name
        if name not in m.index or name not in runner.probes:
            continue
        r = m.loc[name]
        regression = cfg.task == "regression"
        score = "r2" if regression else "accuracy"
        value = r.get(score, math.nan)
        row: dict[str, Any] = {"probe": name, score: value}
        readings = []
        if math.isnan(value):
            readings.append("no held-out metrics: fit with an eval_set")
        sel = r.get("selectivity", math.nan)
        row["selectivity"] = sel
        readings.append(
            "control task: fit with control=True"
            if math.isnan(sel)
            else f"{_verb(sel)} its control task by {_pts(sel, regression)}"
        )
        baselines = _baseline_scores(r, m.columns, regression)
        confounds = {k: v for k, v in baselines.items() if k in CONFOUND_NAMES}
        if "random_init" in baselines:
            gap = value - baselines["random_init"]
            row["gap_random_init"] = gap
            readings.append(f"{_pts(gap, regression)} over a random-init model")
        measured = {k: v for k, v in confounds.items() if not math.isnan(v)}
        if measured:
            best = max(measured, key=lambda k: measured[k])
            gap = value - measured[best]
            row["gap_confound"], row["strongest_confound"] = gap, best
            readings.append(f"{_verb(gap)} {best.replace('_', ' ')} by {_pts(gap, regression)}")
        elif confounds:
            row["gap_confound"], row["strongest_confound"] = math.nan, None
            readings.append("confounds: no numbers for this probe (see their `note` column)")
        else:
            readings.append("confounds: baselines=('length', 'bag_of_words', 'tfidf')")
        low, high = r.get(f"{score}_low", math.nan), r.get(f"{score}_high", math.nan)
        row["ci_width"] = high - low
        if not math.isnan(high - low):
            half = (high - low) / 2
            readings.append(f"CI ±{half:.3f} R²" if regression else f"CI ±{100 * half:.1f} points")
        row["compression"] = r.get("compression", math.nan)
        if not math.isnan(row["compression"]):
            readings.append(f"online code compresses labels {row['compression']:.2f}x")
        if spread is not None and name in spread.index and (score, "std") in spread:
            row["seed_std"] = spread.loc[name, (score, "std")]
            readings.append(f"seed std {_pts(row['seed_std'], regression)}")
        row["reading"] = "; ".join(readings)
        rows.append(row)
    return pd.DataFrame(rows).set_index("probe") if rows else pd.DataFrame()


CONFOUND_NAMES = ("length", "bag_of_words", "tfidf")


def _baseline_scores(row: pd.Series, columns: Any, regression: bool) -> dict[str, float]:
    """{baseline name: its score for this probe} in the probe's own metric: the
    `baseline_<name>` accuracy columns, or `baseline_<name>_r2` for regression."""
    metric = "r2" if regression else "accuracy"
    out = {}
    for col in columns:
        parsed = parse_baseline_column(col)
        if parsed is not None and parsed[1] == metric:
            out[parsed[0]] = float(row[col])
    return out


def _verb(gap: float) -> str:
    return "beats" if gap > 0 else "does not beat"


def _pts(x: float, regression: bool) -> str:
    """Accuracy differences in points, R² differences as numbers."""
    if math.isnan(x):
        return "?"
    return f"{x:+.3f} R²" if regression else f"{100 * x:+.1f} points"
