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
matrix: `ranking_ci` ranks the scores once, draws resamples by the same rule
(`unit_draws`: rows, or whole texts), counts each resample's positives and
negatives per distinct score (integers), and reads its ROC curve from their
cumulative sums: O(rows) per resample, no sort and no float weights per resample.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

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
#: Draws (resamples x units) `ranking_ci` handles at once: its per-chunk arrays
#: then stay in cache.
RANK_CHUNK = 1 << 16


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
    unit, k = _units(n_rows, clusters)
    return _counts(rng.integers(0, k, size=(n_boot, k)), k), unit


def _units(n_rows: int, clusters: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Each row's resampling unit (itself, or its text) and the number of units."""
    if clusters is None:
        return np.arange(n_rows), n_rows
    _, unit = np.unique(np.asarray(clusters), return_inverse=True)
    return unit.ravel(), int(unit.max()) + 1


def _counts(picks: np.ndarray, k: int) -> np.ndarray:
    """[draws, picks] values in [0, k) -> [draws, k] counts of each value."""
    flat = (picks + k * np.arange(len(picks))[:, None]).ravel()
    return np.bincount(flat, minlength=len(picks) * k).reshape(len(picks), k)


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
    tp: np.ndarray, fp: np.ndarray, fprs: tuple[float, ...], tied: bool
) -> tuple[np.ndarray, np.ndarray]:
    """AUC and recall at each rate in `fprs` of each resample from its positive and
    negative counts per distinct score, highest score first ([B, scores] integers, so
    the cumulative sums run along contiguous rows and stay exact): scikit-learn's
    `roc_auc_score` with the counts as weights (a tie gets half credit; `tied`: some
    score holds both classes) and its ROC curve (all thresholds) read by linear
    interpolation, as `metrics.recall_at_fpr`. NaN where a class has no weight."""
    tps, fps = np.cumsum(tp, 1), np.cumsum(fp, 1)
    pos, neg = tps[:, -1].astype(np.float64), fps[:, -1].astype(np.float64)
    # each positive beats the negatives below its score and ties half of those at it
    beaten = neg * pos - np.einsum("ij,ij->i", tp, fps)
    if tied:
        beaten += 0.5 * np.einsum("ij,ij->i", tp, fp)
    rows, scores = np.arange(tp.shape[0]), tp.shape[1]
    recall = np.full((tp.shape[0], len(fprs)), np.nan)
    if fprs:
        # each row's cumulative false positives shifted above the row before, so one
        # sorted array answers every row's "how many points are at or below" at once
        shift = rows * (int(fps[:, -1].max()) + 1)
        flat = (fps + shift[:, None]).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = beaten / (pos * neg)
        for i, f in enumerate(fprs):
            # in counts: the last ROC point (from (0, 0)) with at most f x negatives
            # false positives (the highest recall there), then linearly to the next
            limit = f * neg
            key = np.floor(limit).astype(np.int64) + shift
            c = np.searchsorted(flat, key, side="right") - rows * scores
            before = np.maximum(c - 1, 0)
            x0 = np.where(c > 0, fps[rows, before], 0.0)
            y0 = np.where(c > 0, tps[rows, before], 0.0)
            after = np.minimum(c, scores - 1)
            x1, y1 = fps[rows, after], tps[rows, after]
            slope = np.where(x1 > x0, (y1 - y0) / (x1 - x0), 0.0)
            recall[:, i] = np.where(neg > 0, (y0 + (limit - x0) * slope) / pos, np.nan)
    return auc, recall


def _score_bins(score: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Each row's bin for one class: its distinct score's rank (0 = highest), plus
    the number of distinct scores for positives, so a resample's counts per bin are
    its negatives' then its positives' counts per distinct score; and whether some
    score holds both classes (only then can a resample have ties to half-count)."""
    distinct, rank = np.unique(-score, return_inverse=True)
    rank, s = rank.ravel(), len(distinct)
    both = (np.bincount(rank, hit, s) > 0) & (np.bincount(rank, 1 - hit, s) > 0)
    return rank + s * hit, s, bool(both.any())


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
    (rows, or whole texts with `clusters`; the same draws). A resample that lacks a
    class has no AUC and is left out of the percentiles. NaN where not computable, or
    `n_boot` is 0.

    The scores are ranked once; each resample is then only integer counts per
    distinct score and class (a bincount of its draws, or for texts its text counts
    times each text's counts per bin), read by cumulative sums: O(rows) per resample,
    in chunks that stay in cache.
    """
    _check(level, n_boot)
    proba, y_idx = np.asarray(proba, np.float64), np.asarray(y_idx)
    if proba.ndim == 2 and len(proba) != len(y_idx):
        raise ProbeError(f"proba has {len(proba)} rows but y_idx {len(y_idx)}")
    if clusters is not None and len(clusters) != len(y_idx):
        raise ProbeError(f"clusters has {len(clusters)} entries but y_idx {len(y_idx)}")
    names, rates = list(fprs), tuple(fprs.values())
    out = {c: math.nan for c in ["roc_auc_low", "roc_auc_high"]}
    out.update({f"{c}_{end}": math.nan for c in names for end in ("low", "high")})
    present = np.unique(y_idx)
    if n_boot == 0 or len(present) < 2 or proba.ndim != 2:
        return out
    binary = proba.shape[1] == 2
    classes = [1] if binary else list(present)
    bins = [_score_bins(proba[:, c], (y_idx == c).astype(np.int64)) for c in classes]
    unit, k = _units(len(y_idx), clusters)
    # for texts, each text's row counts per bin: a resample's counts per bin are its
    # text counts times these (scipy's sparse product, O(rows) per resample)
    per_text = [
        sparse.csr_array((np.ones(len(unit), np.int64), (unit, b)), shape=(k, 2 * s))
        for b, s, _ in (bins if clusters is not None else [])
    ]
    rng = np.random.default_rng(seed)
    auc_sum, auc_n = np.zeros(n_boot), np.zeros(n_boot)
    recall = np.full((n_boot, len(rates)), np.nan)
    step = max(1, RANK_CHUNK // k)
    for a in range(0, n_boot, step):
        # unit_draws' draws, chunk by chunk (the generator's stream is the same)
        picks = rng.integers(0, k, size=(min(step, n_boot - a), k))
        counts = _counts(picks, k) if per_text else None
        for i, (b, s, tied) in enumerate(bins):
            if counts is None:  # rows: count each draw's bin directly
                per_bin = _counts(b[picks], 2 * s)
            else:
                per_bin = np.asarray(counts @ per_text[i])
            auc, rec = _auc_recall(per_bin[:, s:], per_bin[:, :s], rates if binary else (), tied)
            ok = np.isfinite(auc)
            auc_sum[a : a + len(picks)] += np.where(ok, auc, 0.0)
            auc_n[a : a + len(picks)] += ok
            if binary:
                recall[a : a + len(picks)] = rec
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    auc = auc_sum[auc_n > 0] / auc_n[auc_n > 0]
    if len(auc):
        out["roc_auc_low"], out["roc_auc_high"] = map(float, np.percentile(auc, [lo, hi]))
    for i, name in enumerate(names):
        got = recall[:, i][np.isfinite(recall[:, i])]
        if binary and len(got):
            out[f"{name}_low"], out[f"{name}_high"] = map(float, np.percentile(got, [lo, hi]))
    return out
