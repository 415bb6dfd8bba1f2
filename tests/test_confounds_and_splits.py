"""Issue 14, capabilities 3, 5 and 7: leakage-safe splits, confound baselines and
operating-point metrics. Each test fails if its capability breaks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import calibration as skc
from sklearn import metrics as skm

from lm_probe_widgets.core import metrics as m

# -- operating-point metrics (capability 7) -------------------------------------------


def _binary(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1.5, n))))
    return np.column_stack([1 - p1, p1]), y


def _reference_recall(y: np.ndarray, score: np.ndarray, target: float) -> float:
    """Linear interpolation of the ROC curve at `target`, written out by hand: the best
    recall at the last false-positive rate <= target, joined to the worst at the first
    rate above it."""
    fpr, tpr, _ = skm.roc_curve(y, score, drop_intermediate=False)
    lo, hi = fpr <= target, fpr > target
    f0, t0 = fpr[lo].max(), tpr[lo].max()
    if not hi.any():
        return float(t0)
    f1 = fpr[hi].min()
    t1 = tpr[hi & (fpr == f1)].min()
    return float(t0 + (t1 - t0) * (target - f0) / (f1 - f0))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.2])
def test_recall_at_fpr_interpolates_the_roc_curve(seed, target):
    proba, y = _binary(seed)
    assert m.recall_at_fpr(proba, y, target) == pytest.approx(
        _reference_recall(y, proba[:, 1], target)
    )


def test_recall_at_fpr_with_ties_and_exact_points():
    # scores on a coarse grid: many ties, and 5% is reached exactly
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    p1 = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 1)
    proba = np.column_stack([1 - p1, p1])
    for target in (0.01, 0.05, 0.1, 0.3):
        assert m.recall_at_fpr(proba, y, target) == pytest.approx(
            _reference_recall(y, p1, target)
        )
    perfect = np.column_stack([1 - y, y]).astype(float)
    assert m.recall_at_fpr(perfect, y, 0.0) == 1.0


def test_recall_at_fpr_nan_when_not_binary_or_a_class_is_absent():
    proba, y = _binary(0)
    assert math.isnan(m.recall_at_fpr(proba[y == 1], y[y == 1], 0.05))
    three = np.full((6, 3), 1 / 3)
    assert math.isnan(m.recall_at_fpr(three, np.array([0, 1, 2, 0, 1, 2]), 0.05))


@pytest.mark.parametrize("seed", range(3))
def test_brier_matches_scikit_learn(seed):
    proba, y = _binary(seed)
    assert m.brier(proba, y) == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    rng = np.random.default_rng(seed)
    proba3 = rng.dirichlet(np.ones(3), 300)
    y3 = rng.integers(0, 3, 300)
    # multiclass: the mean of the one-vs-rest Brier scores
    ovr = np.mean([skm.brier_score_loss(y3 == k, proba3[:, k]) for k in range(3)])
    assert m.brier(proba3, y3) == pytest.approx(ovr)


@pytest.mark.parametrize("n_bins", [5, 10])
def test_calibration_curve_matches_scikit_learn(n_bins):
    proba, y = _binary(1)
    mean_pred, frac_pos, count = m.calibration_curve(proba, y, n_bins)
    assert len(mean_pred) == len(frac_pos) == len(count) == n_bins
    assert count.sum() == len(y)
    true_sk, pred_sk = skc.calibration_curve(y, proba[:, 1], n_bins=n_bins)
    full = count > 0
    np.testing.assert_allclose(frac_pos[full], true_sk)
    np.testing.assert_allclose(mean_pred[full], pred_sk)
    assert np.isnan(mean_pred[~full]).all()


def test_classification_metrics_carry_the_operating_points():
    proba, y = _binary(2)
    out = m.classification_metrics(proba, y, 2)
    for col in ("recall_at_1fpr", "recall_at_5fpr", "brier"):
        assert col in m.METRIC_COLUMNS
        assert col in out
    i = m.METRIC_COLUMNS.index("roc_auc")
    assert m.METRIC_COLUMNS[i + 1 : i + 4] == ["recall_at_1fpr", "recall_at_5fpr", "brier"]
    assert out["recall_at_5fpr"] == pytest.approx(m.recall_at_fpr(proba, y, 0.05))
    assert out["recall_at_1fpr"] <= out["recall_at_5fpr"]
    assert out["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
