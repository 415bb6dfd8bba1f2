"""Paired comparisons: is one probe better than another, or than a baseline, on the
same test texts?

Two intervals that overlap say little: both sides are scored on the same texts, so
their errors are correlated, and the interval that decides is the one of the
*difference*. A `Comparison` holds it: both scores, their difference, a paired
percentile-bootstrap interval (`scipy.stats.bootstrap`, `paired=True`), a paired
permutation p-value (`scipy.stats.permutation_test`, `permutation_type="samples"`:
under "no difference" the two sides' results on a text may swap), and a verdict in
three words: *beats*, *ties* or *loses*.

Resampling and swapping act on whole texts (clusters): a token-level probe's tokens
of one text are not independent draws, and resampling them as if they were makes
intervals several times too narrow (Field & Welsh 2007 on the cluster bootstrap).

When no permutation is as extreme as the data, a Monte Carlo p-value only says
p < 2 / (resamples + 1); the p reported then is the normal approximation to the same
sign-flip distribution, which a Holm correction over a large card needs.

Many comparisons at once (a validity card, a layer sweep) are corrected with Holm's
step-down method (Holm 1979), which holds the family-wise error rate at `1 - level`
under any dependence between the comparisons.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..engine.data import ProbeDataset
from ..engine.families import family_inputs
from ..engine.plan import row_texts, scored_labels
from ..errors import ProbeError

LEVEL = 0.95
N_RESAMPLES = 2000
VERDICTS = ("beats", "ties", "loses")


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """One side's results, row by row, on a test set: `gain` is 1/0 (correct or not)
    for accuracy, minus the squared error for R²; `target` the regression target (0
    for accuracy); `clusters` the index of each row's text."""

    metric: str
    gain: np.ndarray
    target: np.ndarray
    clusters: np.ndarray

    def score(self) -> float:
        if self.metric == "accuracy":
            return float(self.gain.mean())
        sst = float(((self.target - self.target.mean()) ** 2).sum())
        return 1.0 + float(self.gain.sum()) / sst if sst > 0 else math.nan


@dataclasses.dataclass(frozen=True)
class Comparison:
    """`a` against `b` on the same test texts, in `metric` (accuracy or R²).

    `difference` = score(a) - score(b); [`low`, `high`] its paired bootstrap interval
    at `level`; `p` the paired permutation p-value; `p_holm` the Holm-adjusted one
    when the comparison is one of a family (else `p`). The verdict is "beats" when
    the interval lies above 0 and `p_holm` < 1 - level, "loses" when below and
    `p_holm` < 1 - level, else "ties"."""

    a: str
    b: str
    metric: str
    a_score: float
    b_score: float
    difference: float
    low: float
    high: float
    p: float
    p_holm: float
    level: float
    n_texts: int
    n_rows: int
    family: int = 1  # how many comparisons `p_holm` was corrected over

    @property
    def verdict(self) -> str:
        alpha = 1 - self.level
        if self.p_holm < alpha and self.low > 0:
            return "beats"
        if self.p_holm < alpha and self.high < 0:
            return "loses"
        return "ties"

    def reading(self, b_words: str | None = None) -> str:
        """One sentence without double negatives: "loses to its control task by 4.5
        points [95% CI -8.0, -1.0], p=0.01"."""
        who = b_words or self.b
        size = _amount(abs(self.difference), self.metric)
        ci = (
            f"[{100 * self.level:.0f}% CI {_signed(self.low, self.metric)}, "
            f"{_signed(self.high, self.metric)}]"
        )
        p = f"p={_p(self.p)}"
        if self.family > 1:
            p += f", Holm p={_p(self.p_holm)} over {self.family} comparisons"
        verdict = self.verdict
        if verdict == "beats":
            return f"beats {who} by {size} {ci}, {p}"
        if verdict == "loses":
            return f"loses to {who} by {size} {ci}, {p}"
        gap = f"{_signed(self.difference, self.metric)} {_unit(self.metric)}"
        return f"ties with {who}: {gap} {ci}, {p}"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "verdict": self.verdict}


def _amount(x: float, metric: str) -> str:
    return f"{x:.3f} R²" if metric == "r2" else f"{100 * x:.1f} points"


def _unit(metric: str) -> str:
    return "R²" if metric == "r2" else "points"


def _signed(x: float, metric: str) -> str:
    return f"{x:+.3f}" if metric == "r2" else f"{100 * x:+.1f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def outcomes_from(cfg: Any, ds: ProbeDataset, predicted: np.ndarray) -> Outcomes:
    """`Outcomes` from a side's predictions on `ds`: class probabilities (or class
    indices) for a classification probe, targets for a regression probe."""
    _, y = scored_labels(cfg, ds)
    clusters = row_texts(cfg, ds)
    predicted = np.asarray(predicted)
    if cfg.task == "regression":
        gain = -((predicted.astype(np.float64) - y) ** 2)
        return Outcomes("r2", gain, np.asarray(y, np.float64), clusters)
    pred = predicted.argmax(1) if predicted.ndim == 2 else predicted
    return Outcomes("accuracy", (pred == y).astype(np.float64), np.zeros(len(y)), clusters)


def compare_outcomes(
    a: Outcomes,
    b: Outcomes,
    a_name: str,
    b_name: str,
    *,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """The paired comparison of two sides scored on the same rows of the same texts."""
    from scipy import stats

    if not 0 < level < 1:
        raise ProbeError(f"level must be in (0, 1), got {level}")
    if n_resamples < 100:
        raise ProbeError(f"n_resamples must be at least 100, got {n_resamples}")
    if a.metric != b.metric or len(a.gain) != len(b.gain):
        raise ProbeError(
            f"{a_name!r} and {b_name!r} are not scored on the same rows in the same metric "
            f"({a.metric}, {len(a.gain)} rows vs {b.metric}, {len(b.gain)}): compare probes "
            "of one task on one dataset"
        )
    if not np.array_equal(a.clusters, b.clusters):
        raise ProbeError(f"{a_name!r} and {b_name!r} were scored on different texts")
    # per text: both sides' summed gains, its row count, target sum and sum of squares
    _, text = np.unique(a.clusters, return_inverse=True)
    k = int(text.max()) + 1 if len(text) else 0
    if k < 2:
        raise ProbeError("a paired comparison needs at least two test texts")
    sums = [np.bincount(text, w, minlength=k) for w in (a.gain, b.gain)]
    n = np.bincount(text, minlength=k).astype(np.float64)
    sy = np.bincount(text, a.target, minlength=k)
    syy = np.bincount(text, a.target**2, minlength=k)
    regression = a.metric == "r2"

    def diff(ga: Any, gb: Any, n: Any, sy: Any, syy: Any, axis: int = -1) -> Any:
        gap = (ga - gb).sum(axis)
        if regression:
            sst = syy.sum(axis) - sy.sum(axis) ** 2 / n.sum(axis)
            return gap / np.where(sst > 0, sst, np.nan)
        return gap / n.sum(axis)

    d = sums[0] - sums[1]
    point = a.score() - b.score()
    if not np.any(d):  # the same result on every text: no spread to resample
        low = high = 0.0
        p = 1.0
    else:
        rng = np.random.default_rng(seed)
        boot = stats.bootstrap(
            (sums[0], sums[1], n, sy, syy),
            diff,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            batch=max(1, 2_000_000 // k),
            confidence_level=level,
            method="percentile",
            rng=rng,
        )
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
        perm = stats.permutation_test(
            (sums[0], sums[1]),
            lambda x, y, axis=-1: (x - y).sum(axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=n_resamples,
            batch=max(1, 2_000_000 // k),
            rng=rng,
        )
        p = float(perm.pvalue)
        if p <= 2 / (n_resamples + 1):  # no resample as extreme: only "p < 2 / (n + 1)"
            p = _sign_flip_normal_p(d)
    return Comparison(
        a_name,
        b_name,
        a.metric,
        a.score(),
        b.score(),
        point,
        low,
        high,
        p,
        p,
        level,
        k,
        len(a.gain),
    )


def _sign_flip_normal_p(d: np.ndarray) -> float:
    """Two-sided p of sum(d) under random sign flips of the per-text differences `d`,
    by the normal approximation to that distribution (mean 0, variance sum(d²)):
    the permutation test's own distribution, resolved below what Monte Carlo draws can
    resolve, so that a Holm correction over many comparisons can still reject."""
    from scipy import stats

    z = abs(float(d.sum())) / math.sqrt(float((d**2).sum()))
    return float(2 * stats.norm.sf(z))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error under any dependence):
    the i-th smallest of m is multiplied by m - i, then made non-decreasing."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def holm_family(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The same comparisons with `p_holm` adjusted across all of them."""
    adjusted = holm([c.p for c in comparisons])
    m = len(comparisons)
    return [
        dataclasses.replace(c, p_holm=float(q), family=m)
        for c, q in zip(comparisons, adjusted, strict=True)
    ]


def comparison_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """One row per comparison (a, b, metric, scores, difference, interval, p, verdict)."""
    return pd.DataFrame([c.as_dict() for c in comparisons])


def side_outcomes(
    runner: Any, probe: str, side: str | None, dataset: ProbeDataset, batch_size: int = 32
) -> Outcomes:
    """Outcomes of probe `probe` (side None), of its control probe ("control"), or of a
    fitted baseline for it (its name) on `dataset`, recomputed from cached features."""
    from .baselines import HeldOutBaseline

    owner, ds = runner, dataset
    if side == "control":
        if runner.control is None:
            raise ProbeError("no control probes: fit with control=True")
        owner, ds = runner.control, runner.control_task.relabel(dataset)
    elif side is not None:
        if side not in runner.baselines:
            raise ProbeError(f"no baseline {side!r}; fitted: {sorted(runner.baselines)}")
        owner = runner.baselines[side]
    cfg = {c.name: c for c in owner.configs}[probe]
    if isinstance(owner, HeldOutBaseline):
        why = owner.skip(cfg)
        if why is not None:
            raise ProbeError(f"probe {probe!r} has no {side} baseline: {why}")
        if cfg.task == "regression":
            return outcomes_from(cfg, ds, owner.targets(cfg, ds))
        n_rows = len(scored_labels(cfg, ds)[1])
        return outcomes_from(cfg, ds, owner.proba(cfg, ds, n_rows))
    fitted = owner.probes.get(probe)
    if fitted is None:
        raise ProbeError(f"probe {probe!r} is not fitted{'' if side is None else f' ({side})'}")
    x = owner.features(ds, [cfg.feature_key], batch_size)[cfg.feature_key]
    keep, _ = scored_labels(cfg, ds)
    x = family_inputs(cfg, np.asarray(x), keep, ds)  # an attention probe reads texts
    predicted = fitted.predict(x) if cfg.task == "regression" else fitted.predict_proba(x)
    return outcomes_from(cfg, ds, predicted)


def ties_with_best(runner: Any, level: float = LEVEL) -> tuple[str, dict[str, Comparison]]:
    """The probe chosen by cross-validation (lowest `val_loss`: never the test set it
    is then reported on) and its paired comparison with every other fitted probe of the
    same task, Holm-corrected together: those whose verdict is "ties" are the layers
    this test set cannot tell apart from the chosen one."""
    m = runner.metrics
    fitted = [n for n in m.index if n in runner.probes and np.isfinite(m.loc[n, "val_loss"])]
    if not fitted:
        raise ProbeError("no probe has a validation loss to choose the best by: fit first")
    best = min(fitted, key=lambda n: m.loc[n, "val_loss"])
    task = runner[best].config.task
    others = [n for n in fitted if n != best and runner[n].config.task == task]
    made = holm_family([runner.compare(best, n, level=level) for n in others])
    return best, dict(zip(others, made, strict=True))
