"""Bootstrap confidence intervals for accuracy, macro F1, ROC AUC and recall at a
false-positive rate.

Accuracy and F1 depend on a test set only through its confusion matrix, and
resampling n examples with replacement is the same as drawing the confusion
counts from a multinomial over its cells. So `n_boot` resamples cost
n_boot x classes² numbers, not n_boot x n: a thousand resamples of a
million-token test set take milliseconds, and the result is exactly the
percentile bootstrap over examples.

Token-level probes pass `clusters` (each token's text): the bootstrap then draws
whole texts, since tokens of one text are not independent draws (resampling them
as if they were gives intervals several times too narrow). Drawing texts is a
multinomial over texts, and a resample's confusion matrix is the draw counts
times the per-text confusion matrices: n_boot x texts x classes² numbers.

AUC and recall at a false-positive rate depend on the ranking, not on a confusion
matrix: `ranking_ci` draws resamples by the same rule (`unit_draws`: rows, or whole
texts) as row weights, sums them per distinct score, and reads each resample's
weighted ROC curve from the cumulative sums.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ProbeError

CI_COLUMNS = ["accuracy_low", "accuracy_high", "f1_low", "f1_high"]
#: Interval columns of the ranking metrics (metrics.OPERATING_FPRS's columns and AUC).
RANKING_CI_COLUMNS = [
    "roc_auc_low",
    "roc_auc_high",
    "recall_at_1fpr_low",
    "recall_at_1fpr_high",
    "recall_at_5fpr_low",
    "recall_at_5fpr_high",
]
#: Dense numbers a chunk of resamples may hold (resamples x rows).
CHUNK = 4_000_000


def _check(level: float, n_boot: int) -> None:
    if not 0 < level < 1:
        raise ProbeError(f"level must be in (0, 1), got {level}")
    if n_boot < 0:
        raise ProbeError("n_boot must be >= 0 (0 turns the intervals off)")


def unit_draws(
    n_rows: int, clusters: np.ndarray | None, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The resampling rule of the intervals here: `n_boot` draws with replacement of
    the units (rows, or whole texts when `clusters` gives each row's text), as counts
    [n_boot, units], and each row's unit index."""
    if clusters is None:
        unit, k = np.arange(n_rows), n_rows
    else:
        _, unit = np.unique(np.asarray(clusters), return_inverse=True)
        k = int(unit.max()) + 1
    picks = rng.integers(0, k, size=(n_boot, k)) + k * np.arange(n_boot)[:, None]
    return np.bincount(picks.ravel(), minlength=n_boot * k).reshape(n_boot, k), unit


def confusion(y_idx: np.ndarray, pred_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    y_idx, pred_idx = np.asarray(y_idx, np.int64), np.asarray(pred_idx, np.int64)
    flat = np.bincount(y_idx * n_classes + pred_idx, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def accuracy_f1(cm: np.ndarray, classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro F1 over `classes` (default all; zero where a class is neither
    true nor predicted, as scikit-learn's zero_division=0) of one or many confusion
    matrices [..., C, C]."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    n = cm.sum((-2, -1))
    acc = tp.sum(-1) / np.maximum(n, 1)
    denom = cm.sum(-1) + cm.sum(-2)  # 2tp + fn + fp
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if classes is not None:
        f1 = f1[..., classes]
    return acc, f1.mean(-1)


def bootstrap_ci(
    y_idx: np.ndarray,
    pred_idx: np.ndarray,
    n_classes: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    classes: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> dict[str, float]:
    """Seeded percentile-bootstrap intervals for accuracy and macro F1, resampling
    rows, or whole clusters (`clusters`: each row's text) when given.

    Returns `accuracy_low/high` and `f1_low/high` (F1 macro over `classes`, default
    all, as the point estimate); NaN when `n_boot` is 0 or the set is empty, so a
    table always has the columns.
    """
    _check(level, n_boot)
    n = len(y_idx)
    if n_boot == 0 or n == 0:
        return {c: math.nan for c in CI_COLUMNS}
    rng = np.random.default_rng(seed)
    if clusters is None:
        cm = confusion(y_idx, pred_idx, n_classes)
        draws = rng.multinomial(n, cm.ravel() / n, size=n_boot)
    else:
        counts, text = unit_draws(n, clusters, n_boot, rng)
        cells = np.asarray(y_idx, np.int64) * n_classes + np.asarray(pred_idx, np.int64)
        per_text = np.zeros((counts.shape[1], n_classes * n_classes))
        np.add.at(per_text, (text, cells), 1.0)
        draws = counts @ per_text
    draws = draws.reshape(n_boot, n_classes, n_classes)
    acc, f1 = accuracy_f1(draws, classes)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    a_lo, a_hi = np.percentile(acc, [lo, hi])
    f_lo, f_hi = np.percentile(f1, [lo, hi])
    return {
        "accuracy_low": float(a_lo),
        "accuracy_high": float(a_hi),
        "f1_low": float(f_lo),
        "f1_high": float(f_hi),
    }


def _auc_recall(
    tp: np.ndarray, fp: np.ndarray, fprs: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """AUC and recall at each rate in `fprs` from the positive and negative weights
    per distinct score, highest score first ([scores, B] each, so the cumulative sums
    run down contiguous rows): with unit weights, scikit-learn's `roc_auc_score` and
    its ROC curve (all thresholds) read by linear interpolation, as
    `metrics.recall_at_fpr`. NaN where a class has no weight."""
    tps, fps = np.cumsum(tp, 0), np.cumsum(fp, 0)
    pos, neg = tps[-1].astype(np.float64), fps[-1].astype(np.float64)
    # each positive beats the negatives below its score and ties half of those at it
    dot = lambda a, b: np.einsum("ij,ij->j", a, b, dtype=np.float64)  # noqa: E731
    beaten = neg * pos - dot(tp, fps) + 0.5 * dot(tp, fp)
    cols, last = np.arange(tp.shape[1]), tp.shape[0] - 1
    recall = np.full((tp.shape[1], len(fprs)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = beaten / (pos * neg)
        for i, f in enumerate(fprs):
            # in counts: the last ROC point (from (0, 0)) with at most f x negatives
            # false positives (the highest recall there), then linearly to the next
            limit = f * neg
            c = (fps <= limit).sum(0)
            before = np.maximum(c - 1, 0)
            x0 = np.where(c > 0, fps[before, cols], 0.0)
            y0 = np.where(c > 0, tps[before, cols], 0.0)
            after = np.minimum(c, last)
            x1, y1 = fps[after, cols], tps[after, cols]
            slope = np.where(x1 > x0, (y1 - y0) / (x1 - x0), 0.0)
            recall[:, i] = np.where(neg > 0, (y0 + (limit - x0) * slope) / pos, np.nan)
    return auc, recall


def ranking_ci(
    proba: np.ndarray,
    y_idx: np.ndarray,
    fprs: dict[str, float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> dict[str, float]:
    """Percentile-bootstrap intervals for ROC AUC (one-vs-rest macro over the classes
    present, as the point estimate, for more than two classes) and, for binary probes,
    recall of the last class at each false-positive rate in `fprs` (column name ->
    rate): `roc_auc_low/high` and `<column>_low/high`. Resamples follow `unit_draws`
    (rows, or whole texts with `clusters`). A resample that lacks a class has no AUC
    and is left out of the percentiles. NaN where not computable, or `n_boot` is 0."""
    _check(level, n_boot)
    proba, y_idx = np.asarray(proba, np.float64), np.asarray(y_idx)
    names, rates = list(fprs), tuple(fprs.values())
    out = {c: math.nan for c in ["roc_auc_low", "roc_auc_high"]}
    out.update({f"{c}_{end}": math.nan for c in names for end in ("low", "high")})
    present = np.unique(y_idx)
    if n_boot == 0 or len(present) < 2 or proba.ndim != 2:
        return out
    counts, unit = unit_draws(len(y_idx), clusters, n_boot, np.random.default_rng(seed))
    counts = counts.T.astype(np.float32)  # [units, B]; counts and sums exact below 2**24
    binary = proba.shape[1] == 2
    auc_sum, auc_n = np.zeros(n_boot), np.zeros(n_boot)
    recall = np.full((n_boot, len(rates)), np.nan)
    step = max(1, CHUNK // len(y_idx))
    for cls in [1] if binary else present:
        order = np.argsort(-proba[:, cls], kind="stable")
        score = proba[order, cls]
        starts = np.r_[0, np.flatnonzero(np.diff(score)) + 1]  # one per distinct score
        tied = len(starts) < len(score)
        hit = (y_idx[order] == cls).astype(np.float32)[:, None]
        sorted_unit = unit[order]
        for a in range(0, n_boot, step):
            w = counts[sorted_unit, a : a + step]  # [rows, B]: each row's weight
            tp = w * hit
            fp = w - tp
            if tied:
                tp, fp = (np.add.reduceat(v, starts, axis=0) for v in (tp, fp))
            auc, rec = _auc_recall(tp, fp, rates)
            ok = np.isfinite(auc)
            auc_sum[a : a + step] += np.where(ok, auc, 0.0)
            auc_n[a : a + step] += ok
            if binary:
                recall[a : a + step] = rec
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    auc = auc_sum[auc_n > 0] / auc_n[auc_n > 0]
    if len(auc):
        out["roc_auc_low"], out["roc_auc_high"] = map(float, np.percentile(auc, [lo, hi]))
    for i, name in enumerate(names):
        got = recall[:, i][np.isfinite(recall[:, i])]
        if binary and len(got):
            out[f"{name}_low"], out[f"{name}_high"] = map(float, np.percentile(got, [lo, hi]))
    return out
