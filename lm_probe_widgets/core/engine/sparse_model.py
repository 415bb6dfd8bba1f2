"""k-sparse probes (Gurnee et al. 2023, "Finding Neurons in a Haystack"): a logistic
probe that reads only the k dimensions ranked best on the training rows. Here the
ranking and the probe a fit plan trains (`core.engine.families`);
`core.methods.sparse_probe` builds the k-curve against random dimensions on them.

Rankings (on standardised features, so a dimension's scale does not count):
- "mean_diff": the class means' spread over the within-class spread (scikit-learn's
  ANOVA F, `f_classif`; for two classes a monotone function of the standardised mean
  difference, Gurnee et al.'s first ranking).
- "l1": the order in which dimensions enter scikit-learn's L1-regularised logistic
  path (`l1_min_c`, liblinear; one class against the rest for more than two classes)
  as the penalty weakens; dimensions entering at the same
  strength are ordered by "mean_diff".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import is_int
from ..errors import ProbeError

RANKINGS = ("mean_diff", "l1")
#: Penalty strengths of the L1 path: from the first one with a non-zero weight up 10⁴×.
L1_PATH = np.logspace(0, 4, 60)
#: Logit offset of a class with no training row: probability about e⁻³⁰ (not zero, so
#: a log-loss stays finite).
ABSENT = 30.0


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def _f_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.feature_selection import f_classif

    with np.errstate(divide="ignore", invalid="ignore"):
        f, _ = f_classif(x, y)
    return np.nan_to_num(f, nan=-np.inf, posinf=np.finfo(np.float64).max)


def l1_penalty() -> dict[str, Any]:
    """An L1 penalty in scikit-learn's words: `l1_ratio=1` from 1.8 (where `penalty`
    is deprecated), `penalty="l1"` before."""
    import sklearn

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    return {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}


def l1_entry(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per dimension, the index in `L1_PATH` of the first penalty strength at which
    its weight is non-zero (len(L1_PATH) when it never enters)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import l1_min_c

    xs = _standardise(x)
    entry = np.full(x.shape[1], len(L1_PATH))
    c0 = l1_min_c(xs, y, loss="log")
    for i, c in enumerate(c0 * L1_PATH):
        model = LogisticRegression(
            **l1_penalty(), solver="liblinear", C=c, tol=1e-6, max_iter=1000, random_state=0
        )
        if len(np.unique(y)) > 2:  # liblinear fits two classes: one against the rest each
            fitted = OneVsRestClassifier(model).fit(xs, y).estimators_
            coef = np.vstack([e.coef_ for e in fitted])
        else:
            coef = model.fit(xs, y).coef_
        entered = (np.abs(coef) > 0).any(0) & (entry == len(L1_PATH))
        entry[entered] = i
        if (entry < len(L1_PATH)).all():
            break
    return entry


def rank_dimensions(x: np.ndarray, y: np.ndarray, by: str = "mean_diff") -> np.ndarray:
    """Dimension indices of `x`, best first, by `by` ("mean_diff" or "l1")."""
    if by not in RANKINGS:
        raise ProbeError(f"rank_by {by!r} is not one of {RANKINGS}")
    f = _f_scores(x, y)
    if by == "mean_diff":
        return np.lexsort((np.arange(len(f)), -f))
    return np.lexsort((np.arange(len(f)), -f, l1_entry(x, y)))


def logistic_c(l2: float, n: int) -> float:
    """scikit-learn's C for the engine's loss, mean cross-entropy + l2/2 |w|²
    (C sums the cross-entropy: C = 1 / (n l2))."""
    return 1.0 / (n * l2) if l2 > 0 else 1e12


class SparseModel:
    """Top-`k` dimensions by `rank_by`, then scikit-learn's logistic regression on
    them (standardised), one fit per strength of `l2`. The strength kept: with
    cross-validation folds, the lowest mean held-out log-loss of the whole recipe
    (ranking included, redone on each fold's training rows), then refitted on all
    rows; else the lowest validation log-loss (the first without validation rows)."""

    def __init__(self, k: int, rank_by: str = "mean_diff", l2: Sequence[float] = (1.0,)) -> None:
        if not is_int(k) or k < 1:
            raise ProbeError(f"k must be an integer >= 1, got {k!r}")
        if rank_by not in RANKINGS:
            raise ProbeError(f"rank_by {rank_by!r} is not one of {RANKINGS}")
        self.k, self.rank_by, self.l2 = int(k), rank_by, tuple(float(v) for v in l2)
        self.dims = np.zeros(0, dtype=np.int64)
        self.mu = self.sd = self.intercept = np.zeros(0)
        self.coef = np.zeros((0, 0))
        self.best_l2: float | None = None
        self.val_loss = math.nan

    @property
    def fitted(self) -> bool:
        return len(self.dims) > 0

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        val: tuple[np.ndarray, np.ndarray] | None = None,
        folds: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    ) -> SparseModel:
        """Rank on (x, y), fit each strength on the top k and keep one: by the
        cross-validated log-loss over `folds` ((train rows, held-out rows) of x) when
        given, else on `val`; on bad input nothing changes."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ProbeError(f"need features [rows, d] and one label a row, got {x.shape}")
        if self.k > x.shape[1]:
            raise ProbeError(
                f"k={self.k} is more than the features' width {x.shape[1]}: give k <= width"
            )
        if not np.isfinite(x).all():
            raise ProbeError("features contain NaN or inf")
        if len(np.unique(y)) < 2:
            raise ProbeError("the training rows hold one class: nothing to probe")
        if folds:
            losses = np.zeros(len(self.l2))
            for train, held in folds:
                ranked = self._ranked(x[train], y[train])
                for i, l2 in enumerate(self.l2):
                    fit = self._solve(x[train], y[train], ranked, l2, n_classes)
                    losses[i] += self._loss(x[held], y[held], ranked, fit) / len(folds)
            best = int(np.argmin(losses))
            ranked = self._ranked(x, y)
            loss, l2 = float(losses[best]), self.l2[best]
            coef, b = self._solve(x, y, ranked, l2, n_classes)
        else:
            ranked, best = self._ranked(x, y), None
            for l2 in self.l2:
                fit = self._solve(x, y, ranked, l2, n_classes)
                loss = math.nan
                if val is not None and len(val[1]):
                    loss = self._loss(np.asarray(val[0], dtype=np.float64), val[1], ranked, fit)
                if best is None or loss < best[0]:
                    best = (loss, l2, *fit)
            loss, l2, coef, b = best
        self.val_loss, self.best_l2, self.coef, self.intercept = loss, l2, coef, b
        (self.dims, self.mu, self.sd) = ranked
        return self

    def _ranked(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The top k dimensions of (x, y) and their mean and standard deviation."""
        if len(np.unique(y)) < 2:
            raise ProbeError("a cross-validation fold's training rows hold one class")
        dims = rank_dimensions(x, y, self.rank_by)[: self.k].astype(np.int64)
        mu, sd = x[:, dims].mean(0), x[:, dims].std(0)
        return dims, mu, np.where(sd > 0, sd, 1.0)

    @staticmethod
    def _solve(
        x: np.ndarray, y: np.ndarray, ranked: tuple, l2: float, n_classes: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(coef [classes, k], intercept [classes]) of the logistic fit at `l2` on the
        ranked dimensions; a class with no row gets a logit ABSENT below the rest."""
        from sklearn.linear_model import LogisticRegression

        dims, mu, sd = ranked
        present = np.unique(y)
        model = LogisticRegression(C=logistic_c(l2, len(y)), max_iter=2000)
        model.fit((x[:, dims] - mu) / sd, y)
        coef = np.zeros((n_classes, len(dims)))
        b = np.full(n_classes, float(np.min(model.intercept_)) - ABSENT)
        if len(present) == 2:  # one logit: the second class against the first
            coef[present[1]], b[present[1]] = model.coef_[0], model.intercept_[0]
            b[present[0]] = 0.0
        else:
            coef[present], b[present] = model.coef_, model.intercept_
        return coef, b

    @staticmethod
    def _loss(x: np.ndarray, y: np.ndarray, ranked: tuple, fit: tuple) -> float:
        """Mean log-loss of the fitted `fit` on rows x with class indices y."""
        (dims, mu, sd), (coef, b) = ranked, fit
        logp = _log_softmax((x[:, dims] - mu) / sd @ coef.T + b)
        return float(-logp[np.arange(len(y)), np.asarray(y)].mean())

    def log_proba(self, x: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise ProbeError("this sparse probe is not fitted")
        z = (np.asarray(x, dtype=np.float64)[:, self.dims] - self.mu) / self.sd
        return _log_softmax(z @ self.coef.T + self.intercept)

    def raw_params(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(weight [width, classes], bias [classes]) in the raw feature space: zero
        outside the k dimensions read."""
        w = np.zeros((width, self.coef.shape[0]))
        w[self.dims] = self.coef.T / self.sd[:, None]
        return w, self.intercept - (self.mu / self.sd) @ self.coef.T

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            raise ProbeError("this sparse probe is not fitted: nothing to save")
        return {"dims": self.dims, "mu": self.mu, "sd": self.sd, "coef": self.coef,
                "intercept": self.intercept}  # fmt: skip

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        dims = np.asarray(arrays["dims"], dtype=np.int64)
        if dims.shape != (self.k,) or np.shape(arrays["coef"])[1:] != (self.k,):
            raise ProbeError(f"saved sparse probe weights do not fit k={self.k}")
        self.dims, self.mu, self.sd = dims, arrays["mu"], arrays["sd"]
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))
