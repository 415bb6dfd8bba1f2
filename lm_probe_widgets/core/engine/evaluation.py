"""Held-out metrics of one probe on one dataset, with bootstrap intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

from .data import ProbeDataset
from .families import family_inputs
from .metrics import held_out_metrics
from .plan import row_texts, scored_labels
from .probe import LinearProbe
from .regression import regression_metrics


def evaluate_probe(
    probe: LinearProbe, ds: ProbeDataset, x: np.ndarray, bootstrap: int, seed: int
) -> dict[str, Any]:
    """Metrics of `probe` on the feature rows `x` of `ds` (ignored tokens dropped).
    Macro scores average over the classes present in `ds`; `classes_scored` says which.
    An attention probe reads `ds`'s token rows and predicts one label per example."""
    cfg = probe.config
    keep, y_idx = scored_labels(cfg, ds)
    x = family_inputs(cfg, x, keep, ds)
    if cfg.task == "regression":
        out = regression_metrics(probe.predict(x), y_idx, n_boot=bootstrap, seed=seed)
        probe.metrics = out
        return out
    proba = probe.predict_proba(x)
    texts = row_texts(cfg, ds) if cfg.token_level else None  # resample whole texts
    out = held_out_metrics(
        proba, y_idx, len(cfg.classes), n_boot=bootstrap, seed=seed, clusters=texts
    )
    out["classes_scored"] = ", ".join(str(cfg.classes[i]) for i in np.unique(y_idx))
    probe.metrics = out  # the probe's own repr shows its latest held-out metrics
    return out
