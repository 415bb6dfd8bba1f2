"""Issue 24, the intervals that were missing: ROC AUC and recall at a false-positive
rate get the bootstrap of the accuracy intervals (rows, or whole texts), and the MDL
compression a bootstrap interval over the coded examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from lm_probe_widgets.core.engine.metrics import held_out_metrics
from lm_probe_widgets.core.engine.uncertainty import ranking_ci, unit_draws
from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.methods.mdl import online_code

FPRS = {"recall_at_1fpr": 0.01, "recall_at_5fpr": 0.05}


def _scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary labels, probabilities with ties (rounded scores) and 40 texts."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-np.round(rng.normal(y, 1.0), 1)))
    return y, np.column_stack([1 - p, p]), rng.integers(0, 40, n)


def _sklearn_percentiles(proba, y, clusters, n_boot, seed, fpr=0.05):
    """The reference: scikit-learn's AUC (one-vs-rest macro over the classes a resample
    holds, for more than two classes) and, for two classes, recall at `fpr` on each of
    `unit_draws`' resamples, the counts as weights; resamples lacking a class skipped.
    [low, high] of each at 95%, NaN where no resample counts."""
    counts, unit = unit_draws(len(y), clusters, n_boot, np.random.default_rng(seed))
    auc, recall = [], []
    for c in counts:
        w = c[unit]
        held = np.unique(y[w > 0])
        if len(held) < 2:
            continue
        if proba.shape[1] == 2:
            auc.append(skm.roc_auc_score(y, proba[:, 1], sample_weight=w))
            fpr_, tpr, _ = skm.roc_curve(y, proba[:, 1], sample_weight=w, drop_intermediate=False)
            recall.append(np.interp(fpr, fpr_, tpr))
        else:
            auc.append(
                np.mean([skm.roc_auc_score(y == k, proba[:, k], sample_weight=w) for k in held])
            )
    pct = lambda v: np.percentile(v, [2.5, 97.5]) if v else [math.nan] * 2  # noqa: E731
    return pct(auc), pct(recall)


def _assert_matches(proba, y, clusters, n_boot, seed):
    got = ranking_ci(proba, y, FPRS, n_boot=n_boot, seed=seed, clusters=clusters)
    auc, recall = _sklearn_percentiles(proba, y, clusters, n_boot, seed)
    np.testing.assert_allclose([got["roc_auc_low"], got["roc_auc_high"]], auc, rtol=1e-6)
    np.testing.assert_allclose(
        [got["recall_at_5fpr_low"], got["recall_at_5fpr_high"]], recall, rtol=1e-6, atol=1e-12
    )


@pytest.mark.parametrize("clustered", [False, True])
def test_ranking_intervals_are_the_percentiles_of_scikit_learn_on_the_same_resamples(clustered):
    """Each resample's AUC and recall at 5% FPR are scikit-learn's with the resample's
    counts as weights (ties included), read over `unit_draws`' resamples: rows, or whole
    texts."""
    y, proba, texts = _scores(300)
    _assert_matches(proba, y, texts if clustered else None, n_boot=50, seed=3)


@settings(max_examples=10)
@given(
    n=st.integers(4, 40),
    n_classes=st.sampled_from([2, 2, 3]),
    levels=st.integers(2, 12),
    texts=st.one_of(st.none(), st.integers(2, 8)),
    seed=st.integers(0, 2**16),
)
def test_ranking_intervals_match_scikit_learn_on_small_awkward_sets(
    n, n_classes, levels, texts, seed
):
    """Small sets where the edges live: scores from few levels (ties across and within
    classes), few texts (resamples that lack a class, left out), three classes (the
    one-vs-rest mean over the classes a resample holds)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    proba = rng.integers(0, levels, (n, n_classes)) + 1.0
    proba /= proba.sum(1, keepdims=True)
    clusters = None if texts is None else rng.integers(0, texts, n)
    if len(np.unique(y)) < 2:
        assert math.isnan(ranking_ci(proba, y, FPRS, n_boot=20, clusters=clusters)["roc_auc_low"])
        return
    _assert_matches(proba, y, clusters, n_boot=12, seed=seed)


def test_ranking_intervals_check_their_inputs_first():
    y, proba, texts = _scores(50)
    with pytest.raises(ProbeError, match="rows"):
        ranking_ci(proba[:-1], y, FPRS)
    with pytest.raises(ProbeError, match="clusters"):
        ranking_ci(proba, y, FPRS, clusters=texts[:-1])


def test_metrics_carry_the_intervals_and_blank_them_where_the_point_is_blank():
    """`held_out_metrics` (every probe's and baseline's row): AUC and operating-point
    intervals around their estimates; NaN where the estimate is (200 negatives allow no
    1% operating point), where the bootstrap is off, and for recall of a 3-class probe."""
    y, proba, _ = _scores(400, seed=1)
    m = held_out_metrics(proba, y, 2, n_boot=300, seed=0)
    assert m["roc_auc_low"] < m["roc_auc"] < m["roc_auc_high"]
    assert m["recall_at_5fpr_low"] <= m["recall_at_5fpr"] <= m["recall_at_5fpr_high"]
    assert math.isnan(m["recall_at_1fpr"]) and math.isnan(m["recall_at_1fpr_low"])
    off = held_out_metrics(proba, y, 2, n_boot=0, seed=0)
    assert math.isnan(off["roc_auc_low"]) and math.isnan(off["recall_at_5fpr_high"])
    rng = np.random.default_rng(2)
    y3 = rng.integers(0, 3, 300)
    p3 = rng.dirichlet(np.ones(3), 300) + 0.6 * np.eye(3)[y3]
    p3 /= p3.sum(1, keepdims=True)
    m3 = held_out_metrics(p3, y3, 3, n_boot=300, seed=0)
    assert m3["roc_auc_low"] < m3["roc_auc"] < m3["roc_auc_high"]
    assert math.isnan(m3["recall_at_5fpr_low"])


def test_token_level_ranking_intervals_resample_texts():
    """Ten tokens of a text share its label and score: resampling tokens as independent
    draws gives an AUC interval several times too narrow; whole texts do not."""
    rng = np.random.default_rng(0)
    y_text = rng.integers(0, 2, 60)
    s_text = rng.normal(y_text * 0.8, 1.0)
    y, s, texts = (np.repeat(a, 10) for a in (y_text, s_text, np.arange(60)))
    p = 1 / (1 + np.exp(-s))
    proba = np.column_stack([1 - p, p])
    tokens = ranking_ci(proba, y, FPRS, n_boot=300, seed=0)
    whole = ranking_ci(proba, y, FPRS, n_boot=300, seed=0, clusters=texts)
    narrow = tokens["roc_auc_high"] - tokens["roc_auc_low"]
    assert whole["roc_auc_high"] - whole["roc_auc_low"] > 2 * narrow


def _features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)


def test_compression_has_a_bootstrap_interval_over_the_examples():
    """The interval brackets the code's compression, widens when the examples come in
    texts of identical copies (resampled as texts), and is off with n_boot=0."""
    x, y = _features(400)
    one = {"mu": np.zeros(8), "inv": np.ones(8)}
    code = online_code(x, y, 2, **one)
    assert code["compression_low"] < code["compression"] < code["compression_high"]
    assert code["compression"] == pytest.approx(code["uniform_bits"] / code["mdl_bits"])
    # texts of 5 copies: as many examples, a fifth of the independent information
    xt, yt = (np.repeat(a[:80], 5, axis=0) for a in (x, y))
    texts = np.repeat(np.arange(80), 5)
    rows = online_code(xt, yt, 2, **one)
    whole = online_code(xt, yt, 2, **one, clusters=texts)
    assert whole["compression"] == rows["compression"]
    width = whole["compression_high"] - whole["compression_low"]
    assert width > 1.5 * (rows["compression_high"] - rows["compression_low"])
    off = online_code(x, y, 2, **one, n_boot=0)
    assert math.isnan(off["compression_low"]) and off["mdl_bits"] == code["mdl_bits"]
    with pytest.raises(ProbeError, match="level"):
        online_code(x, y, 2, **one, level=1.5)
