"""Held-out metrics that mean what their names say."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METRIC_COLUMNS = [
    "loss",
    "accuracy",
    "accuracy_low",  # bootstrap CI bounds: core/uncertainty.py
    "accuracy_high",
    "precision",
    "recall",
    "f1",
    "f1_low",
    "f1_high",
    "matthews",
    "roc_auc",
]


def classification_metrics(proba: np.ndarray, y_idx: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Log-loss of the probe's calibrated probabilities, accuracy, macro P/R/F1,
    Matthews correlation and ROC AUC (one-vs-rest macro for more than two classes).

    Macro averages and AUC run over the classes present in `y_idx`: a declared class
    with no example has no recall to average, and counting it as 0 would make F1 say
    the probe failed on something it was never shown."""
    from sklearn import metrics as skm

    present = np.unique(y_idx)
    pred = proba.argmax(1)
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_idx, pred, labels=present, average="macro", zero_division=0
    )
    return {
        # scikit-learn clips at machine epsilon itself; clipping here would make rows
        # stop summing to one (and warn).
        "loss": float(skm.log_loss(y_idx, proba, labels=np.arange(n_classes))),
        "accuracy": float(np.mean(pred == y_idx)),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "matthews": _matthews(y_idx, pred),
        "roc_auc": roc_auc(proba, y_idx, present),
        "n": int(len(y_idx)),
    }


def _matthews(y_idx: np.ndarray, pred: np.ndarray) -> float:
    """Matthews correlation; 0 when truth and prediction hold one class (scikit-learn
    returns 0 there too, with a warning about the confusion matrix's shape)."""
    from sklearn import metrics as skm

    if len(np.union1d(y_idx, pred)) < 2:
        return 0.0
    return float(skm.matthews_corrcoef(y_idx, pred))


def roc_auc(proba: np.ndarray, y_idx: np.ndarray, present: np.ndarray) -> float:
    """Binary ROC AUC, or the one-vs-rest macro average over the present classes;
    NaN with fewer than two classes present."""
    from sklearn import metrics as skm

    if len(present) < 2:
        return math.nan
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(y_idx, proba[:, 1]))
    return float(np.mean([skm.roc_auc_score(y_idx == k, proba[:, k]) for k in present]))
