"""Probe families (core.families): k-sparse probes recover planted dimensions in
scikit-learn's L1-path order and beat random dimensions of the same k; MLP probes
match a plain torch MLP and report selectivity at the same capacity; attention probes
find a keyword among filler tokens where mean and last pooling cannot. Bad input is
refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.families.sparse import l1_penalty, rank_dimensions, sparse_curve

PLANTED = (5, 11, 2)  # dimensions carrying the label, strongest first


def _planted(n: int, seed: int, width: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Two classes; dimension PLANTED[i] shifts by a decreasing amount with the label,
    every dimension on its own scale (a ranking must not read scale as signal)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, width))
    for shift, d in zip((2.0, 1.2, 0.7), PLANTED, strict=True):
        x[:, d] += shift * (2 * y - 1)
    return x * rng.uniform(0.1, 10.0, width), y


def _l1_path_order(x: np.ndarray, y: np.ndarray, k: int) -> list[int]:
    """The first k dimensions to enter scikit-learn's L1 logistic path (saga: another
    solver than the library's liblinear), in order, as the penalty weakens."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import l1_min_c

    xs = StandardScaler().fit_transform(x)
    entered: list[int] = []
    for c in l1_min_c(xs, y, loss="log") * np.logspace(0, 3, 40):
        coef = LogisticRegression(**l1_penalty(), solver="saga", C=c, tol=1e-6, max_iter=5000)
        nonzero = np.flatnonzero(np.abs(coef.fit(xs, y).coef_[0]) > 1e-8)
        entered += [int(d) for d in nonzero if d not in entered]
        if len(entered) >= k:
            return entered[:k]
    raise AssertionError("the L1 path never reached k dimensions")


@pytest.mark.parametrize("rank_by", ["mean_diff", "l1"])
def test_sparse_ranking_matches_the_l1_path_of_scikit_learn(rank_by):
    x, y = _planted(400, 0)
    order = rank_dimensions(x, y, rank_by)
    assert sorted(order.tolist()) == list(range(x.shape[1]))
    path = _l1_path_order(x, y, 3)
    assert path == list(PLANTED)  # the planted order: the reference sees the data as made
    for k in (1, 2, 3):  # the same k dimensions (ties: none planted)
        assert set(order[:k].tolist()) == set(path[:k])


def test_sparse_curve_beats_random_dimensions_only_where_they_differ():
    x, y = _planted(400, 0)
    xt, yt = _planted(300, 1)
    curve = sparse_curve(x, y, xt, yt, ks=[1, 3, 16], n_random=3)
    by_k = curve.set_index("k")
    assert by_k.loc[1, "dims"] == (PLANTED[0],)
    assert set(by_k.loc[3, "dims"]) == set(PLANTED)
    assert by_k.loc[1, "verdict"] == by_k.loc[3, "verdict"] == "beats"
    # all 16 dimensions are "random 16" too: the same probe, a tie to float rounding
    assert by_k.loc[16, "verdict"] == "ties"
    assert by_k.loc[16, "accuracy"] == pytest.approx(by_k.loc[16, "random_accuracy"], abs=1e-9)
    assert (curve["low"] <= curve["difference"]).all()
    assert (curve["difference"] <= curve["high"]).all()
    assert (curve["p_holm"] >= curve["p"] - 1e-12).all()


@pytest.mark.parametrize(
    "kwargs",
    [{"ks": [0]}, {"ks": [17]}, {"ks": [1.5]}, {"ks": []}, {"rank_by": "max"}, {"n_random": 0}],
)
def test_sparse_curve_refuses_bad_input(kwargs):
    x, y = _planted(40, 0)
    with pytest.raises(ProbeError):
        sparse_curve(x, y, x, y, **kwargs)
