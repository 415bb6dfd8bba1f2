"""Bootstrap confidence intervals for accuracy and macro F1.

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
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ProbeError

CI_COLUMNS = ["accuracy_low", "accuracy_high", "f1_low", "f1_high"]


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
    if not 0 < level < 1:
        raise ProbeError(f"level must be in (0, 1), got {level}")
    if n_boot < 0:
        raise ProbeError("n_boot must be >= 0 (0 turns the intervals off)")
    n = len(y_idx)
    if n_boot == 0 or n == 0:
        return {c: math.nan for c in CI_COLUMNS}
    rng = np.random.default_rng(seed)
    if clusters is None:
        cm = confusion(y_idx, pred_idx, n_classes)
        draws = rng.multinomial(n, cm.ravel() / n, size=n_boot)
    else:
        _, text = np.unique(np.asarray(clusters), return_inverse=True)
        cells = np.asarray(y_idx, np.int64) * n_classes + np.asarray(pred_idx, np.int64)
        k = int(text.max()) + 1
        per_text = np.zeros((k, n_classes * n_classes))
        np.add.at(per_text, (text, cells), 1.0)
        draws = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot) @ per_text
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
