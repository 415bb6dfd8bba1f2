"""k-sparse probes (Gurnee et al. 2023, "Finding Neurons in a Haystack"): is a concept
localised in a few dimensions? Rank the dimensions on the training rows, fit a
logistic probe on the top k for k = 1, 2, 4, ..., and score each on the test rows
against probes on k *random* dimensions (the same k, `n_random` draws averaged row by
row): the paired interval of that difference says whether the chosen dimensions carry
more than any k dimensions would (`core.methods.compare`, Holm-corrected over the ks).

Rankings: `core.engine.sparse_model` ("mean_diff", "l1"); the probe a fit plan
trains with `ProbeConfig(kind="sparse", k=...)` is `core.engine.sparse_model.SparseModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import is_int
from ..engine.data import ProbeDataset
from ..engine.sparse_model import (  # noqa: F401 (re-exported)
    L1_PATH,
    RANKINGS,
    l1_entry,
    l1_penalty,
    rank_dimensions,
)
from ..errors import ProbeError
from .compare import LEVEL, Outcomes, compare_outcomes, holm_family
from .family_rows import check_level_seed, probe_config, rows, train_test

COLUMNS = [
    "k",
    "accuracy",
    "random_accuracy",
    "difference",
    "low",
    "high",
    "p",
    "p_holm",
    "verdict",
    "dims",
]


def check_ks(ks: Sequence[int] | None, width: int) -> list[int]:
    """Sorted distinct ks within 1..width; None: 1, 2, 4, ... up to width."""
    if ks is None:
        return [k for k in (2 ** np.arange(int(np.log2(width)) + 1)).tolist() if k <= width]
    ks = list(np.atleast_1d(ks)) if not isinstance(ks, (str, bytes)) else [ks]
    bad = [k for k in ks if not is_int(k) or not 1 <= k <= width]
    if not ks or bad:
        raise ProbeError(f"ks must be integers in 1..{width} (the feature width), got {bad or ks}")
    return sorted({int(k) for k in ks})


def _fit_predict(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, c: float) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    return model.fit(xa, ya).predict(xb)


def _check_options(rank_by: Any, n_random: Any, c: Any, level: Any, seed: Any) -> None:
    if rank_by not in RANKINGS:
        raise ProbeError(f"rank_by {rank_by!r} is not one of {RANKINGS}")
    if not is_int(n_random) or n_random < 1:
        raise ProbeError(f"n_random must be an integer >= 1, got {n_random!r}")
    if not isinstance(c, (int, float)) or not c > 0:
        raise ProbeError(f"c must be a number > 0, got {c!r}")
    check_level_seed(level, seed)


def sparse_curve(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    ks: Sequence[int] | None = None,
    rank_by: str = "mean_diff",
    n_random: int = 5,
    c: float = 1.0,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy of a logistic probe (inverse L2 strength `c`) on the top-k dimensions
    for each k, against the mean of `n_random` probes on random k dimensions, paired
    over the test texts (`clusters`: each test row's text; default one text a row).
    One row per k (`COLUMNS`); `dims` the chosen dimensions, best first."""
    _check_options(rank_by, n_random, c, level, seed)
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ProbeError("x_train and x_test must be 2-d feature arrays of one width")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ProbeError("each feature array needs one label per row")
    if len(np.unique(y_train)) < 2:
        raise ProbeError("the training rows hold one class: nothing to probe")
    if not (np.isfinite(x_train).all() and np.isfinite(x_test).all()):
        raise ProbeError("features contain NaN or inf")
    width = x_train.shape[1]
    ks = check_ks(ks, width)
    clusters = np.arange(len(y_test)) if clusters is None else np.asarray(clusters)
    order = rank_dimensions(x_train, y_train, rank_by)
    rng = np.random.default_rng(seed)
    zeros = np.zeros(len(y_test))
    made, dims = [], []
    for k in ks:
        top = order[:k]
        gain = (_fit_predict(x_train[:, top], y_train, x_test[:, top], c) == y_test).astype(float)
        rand = np.zeros(len(y_test))
        for _ in range(n_random):
            pick = rng.choice(width, size=k, replace=False)
            rand += _fit_predict(x_train[:, pick], y_train, x_test[:, pick], c) == y_test
        sparse = Outcomes("accuracy", gain, zeros, clusters)
        random = Outcomes("accuracy", rand / n_random, zeros, clusters)
        made.append(
            compare_outcomes(sparse, random, f"top-{k}", f"random-{k}", level=level, seed=seed)
        )
        dims.append(tuple(int(d) for d in top))
    made = holm_family(made)
    out = pd.DataFrame(
        [
            [k, m.a_score, m.b_score, m.difference, m.low, m.high, m.p, m.p_holm, m.verdict, d]
            for k, m, d in zip(ks, made, dims, strict=True)
        ],
        columns=COLUMNS,
    )
    out.attrs.update(rank_by=rank_by, level=level, ranking=order.tolist())
    return out


def sparse_probe(
    runner: Any,
    name: str,
    ks: Sequence[int] | None = None,
    *,
    rank_by: str = "mean_diff",
    train: ProbeDataset | None = None,
    test: ProbeDataset | None = None,
    n_random: int = 5,
    c: float = 1.0,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """`sparse_curve` at probe `name`'s site, from the runner's cached features
    (defaults: the last fit's training part and test set)."""
    _check_options(rank_by, n_random, c, level, seed)  # before any forward pass
    if ks is not None:
        check_ks(ks, np.iinfo(np.int64).max)  # integers >= 1; the width is checked later
    cfg = probe_config(runner, name)
    train, test = train_test(runner, train, test)
    x, y, _ = rows(runner, cfg, train)
    xt, yt, texts = rows(runner, cfg, test)
    return sparse_curve(
        x, y, xt, yt, texts, ks=ks, rank_by=rank_by, n_random=n_random, c=c, level=level, seed=seed
    )
