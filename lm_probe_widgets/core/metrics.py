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
    Matthews correlation, and ROC AUC for binary probes."""
    from sklearn import metrics as skm

    labels = np.arange(n_classes)
    pred = proba.argmax(1)
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_idx, pred, labels=labels, average="macro", zero_division=0
    )
    out: dict[str, Any] = {
        # scikit-learn clips at machine epsilon itself; clipping here would make rows
        # stop summing to one (and warn).
        "loss": float(skm.log_loss(y_idx, proba, labels=labels)),
        "accuracy": float(np.mean(pred == y_idx)),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "matthews": float(skm.matthews_corrcoef(y_idx, pred)),
        "roc_auc": math.nan,
        "n": int(len(y_idx)),
    }
    if n_classes == 2 and len(np.unique(y_idx)) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y_idx, proba[:, 1]))
    return out
