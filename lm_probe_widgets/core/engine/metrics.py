"""Held-out metrics that mean what their names say."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ProbeError
from .uncertainty import RANKING_CI_COLUMNS

METRIC_COLUMNS = [
    "loss",
    "accuracy",
    "accuracy_low",  # bootstrap CI bounds: core/engine/uncertainty.py
    "accuracy_high",
    "precision",
    "recall",
    "f1",
    "f1_low",
    "f1_high",
    "matthews",
    "roc_auc",
    "recall_at_1fpr",  # binary operating points: recall_at_fpr below
    "recall_at_5fpr",
    "brier",
    *RANKING_CI_COLUMNS,  # bootstrap CI bounds of roc_auc and the operating points
]

#: False-positive rates of the `recall_at_<k>fpr` columns.
OPERATING_FPRS = {"recall_at_1fpr": 0.01, "recall_at_5fpr": 0.05}
#: An operating point is reported only when the test set's negatives allow this many
#: false positives at its rate: recall at 1% FPR from 100 negatives rests on one text.
MIN_FALSE_POSITIVES = 5


def baseline_column(name: str, metric: str) -> str:
    """The metrics column of baseline `name`: ``baseline_<name>`` holds held-out
    accuracy (classification probes), ``baseline_<name>_r2`` held-out R² (regression)."""
    suffix = {"accuracy": "", "r2": "_r2"}[metric]  # the two a baseline column can hold
    return f"baseline_{name}{suffix}"


def parse_baseline_column(column: str) -> tuple[str, str] | None:
    """(baseline name, "accuracy" or "r2") of a `baseline_column`; None for others."""
    if not column.startswith("baseline_"):
        return None
    name = column[len("baseline_") :]
    if name.endswith("_r2"):
        return name[: -len("_r2")], "r2"
    return name, "accuracy"


def classification_metrics(proba: np.ndarray, y_idx: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Log-loss of the probe's calibrated probabilities, accuracy, macro P/R/F1,
    Matthews correlation, ROC AUC (one-vs-rest macro for more than two classes),
    the Brier score and, for binary probes, recall at 1% and 5% false positives.

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
        **operating_points(proba, y_idx),
        "brier": brier(proba, y_idx),
        "n": int(len(y_idx)),
    }


def operating_points(proba: np.ndarray, y_idx: np.ndarray) -> dict[str, Any]:
    """`recall_at_<k>fpr` for each of OPERATING_FPRS; NaN, with an `operating_note`
    saying why, where the negatives allow fewer than MIN_FALSE_POSITIVES false
    positives at that rate."""
    out: dict[str, Any] = {}
    notes = []
    negatives = int(np.sum(np.asarray(y_idx) != np.asarray(proba).shape[1] - 1))
    for col, fpr in OPERATING_FPRS.items():
        value = recall_at_fpr(proba, y_idx, fpr)
        if not math.isnan(value) and negatives * fpr < MIN_FALSE_POSITIVES:
            need = math.ceil(MIN_FALSE_POSITIVES / fpr)
            notes.append(f"{col}: NaN, {negatives} negatives (need {need} for {fpr:.0%})")
            value = math.nan
        out[col] = value
    if notes:
        out["operating_note"] = "; ".join(notes)
    return out


def held_out_metrics(
    proba: np.ndarray,
    y_idx: np.ndarray,
    n_classes: int,
    *,
    n_boot: int,
    seed: int,
    clusters: np.ndarray | None = None,
) -> dict[str, Any]:
    """`classification_metrics` plus bootstrap intervals for accuracy and macro F1
    over the same classes (those present), ROC AUC and the operating points (NaN
    where the point estimate is): what every probe and baseline reports. `clusters`
    (each row's text, for token-level probes) makes the bootstrap draw whole texts."""
    from .uncertainty import bootstrap_ci, ranking_ci

    out = classification_metrics(proba, y_idx, n_classes)
    present = np.unique(y_idx)
    out.update(
        bootstrap_ci(
            y_idx,
            proba.argmax(1),
            n_classes,
            n_boot=n_boot,
            seed=seed,
            classes=present,
            clusters=clusters,
        )
    )
    # intervals only where there is a point estimate (operating_note says why not)
    live = {col: fpr for col, fpr in OPERATING_FPRS.items() if not math.isnan(out[col])}
    ranks = ranking_ci(proba, y_idx, live, n_boot=n_boot, seed=seed, clusters=clusters)
    if math.isnan(out["roc_auc"]):
        ranks["roc_auc_low"] = ranks["roc_auc_high"] = math.nan
    out.update({col: math.nan for col in RANKING_CI_COLUMNS})
    out.update(ranks)
    return out


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


def recall_at_fpr(proba: np.ndarray, y_idx: np.ndarray, fpr: float) -> float:
    """Recall of the positive (last) class when the threshold lets through a
    false-positive rate of `fpr`: what a monitor catches at the alarm rate one can
    afford. Linearly interpolated on the ROC curve; NaN unless the probe is binary
    and both classes are present."""
    from sklearn import metrics as skm

    proba, y_idx = np.asarray(proba), np.asarray(y_idx)
    if proba.ndim != 2 or proba.shape[1] != 2 or len(np.unique(y_idx)) < 2:
        return math.nan
    fprs, tprs, _ = skm.roc_curve(y_idx == 1, proba[:, 1], drop_intermediate=False)
    return float(np.interp(fpr, fprs, tprs))


def brier(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """Brier score (lower is better; it rewards calibrated probabilities, which
    accuracy ignores). Binary: mean squared error of p(positive = last class), as
    scikit-learn's `brier_score_loss`. More classes: the mean over classes of each
    one-vs-rest Brier score, i.e. the multiclass Brier sum divided by the classes."""
    proba, y_idx = np.asarray(proba, dtype=np.float64), np.asarray(y_idx)
    if len(y_idx) == 0:
        return math.nan
    onehot = np.eye(proba.shape[1])[y_idx]
    if proba.shape[1] == 2:
        return float(np.mean((proba[:, 1] - onehot[:, 1]) ** 2))
    return float(np.mean((proba - onehot) ** 2))


def calibration_curve(
    proba: np.ndarray, y_idx: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability-plot points: per equal-width bin of predicted probability, (mean
    predicted, fraction observed, count). A calibrated probe lies on the diagonal.

    Binary probes bin p(positive = last class); with more classes every class's
    one-vs-rest probability is binned together. Empty bins are NaN with count 0, so
    every call returns `n_bins` rows."""
    proba, y_idx = np.asarray(proba, dtype=np.float64), np.asarray(y_idx)
    if n_bins < 1:
        raise ProbeError(f"n_bins must be >= 1, got {n_bins}")
    onehot = np.eye(proba.shape[1])[y_idx]
    if proba.shape[1] == 2:
        p, hit = proba[:, 1], onehot[:, 1]
    else:
        p, hit = proba.ravel(), onehot.ravel()
    # scikit-learn's binning (a value on an edge goes to the lower bin)
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(bins, weights=p, minlength=n_bins) / count
        frac_pos = np.bincount(bins, weights=hit, minlength=n_bins) / count
    return mean_pred, frac_pos, count


def incomplete_note(incomplete: dict[str, str]) -> str:
    """What a stopped fit left unfinished, and how to finish it (one sentence each)."""
    if not incomplete:
        return ""
    items = ", ".join(f"{name} ({why})" for name, why in incomplete.items())
    return (
        f"Not finished, the fit was stopped: {items}. Their columns are blank (NaN), never "
        "numbers from half-trained probes; run the same fit_probes call again with "
        "resume=True to finish them."
    )


class MetricsTable(pd.DataFrame):
    """`runner.metrics`: the full DataFrame, one row per probe. Its `to_string()` (the
    original lm_probe's way of printing it) wraps the columns to the terminal's width
    and writes floats with 3 decimals; pass `line_width=None` or `float_format` to
    choose otherwise; after a Stop it ends with what was left unfinished
    (``attrs["incomplete"]``). Anything derived from it is a plain DataFrame."""

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    def to_string(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        import shutil
        import textwrap

        if not args:
            kwargs.setdefault("line_width", shutil.get_terminal_size((100, 24)).columns)
            kwargs.setdefault("float_format", "{:.3f}".format)
        width = kwargs.get("line_width")
        frame = pd.DataFrame(self)
        if width:  # a note column (l2_note, operating_note) wider than the line: clip it
            room = max(20, width - max(map(len, map(str, frame.index)), default=0) - 6)
            for col in frame.columns:
                long = frame[col].map(lambda v: isinstance(v, str) and len(v) > room)
                if long.any():
                    frame[col] = (
                        frame[col]
                        .astype(object)
                        .where(~long, frame[col].map(lambda v: str(v)[: room - 1] + "…"))
                    )
        text = frame.to_string(*args, **kwargs)
        note = incomplete_note(self.attrs.get("incomplete") or {})
        if note and width:
            note = textwrap.fill(note, width)
        return f"{text}\n{note}" if note and text is not None else text
