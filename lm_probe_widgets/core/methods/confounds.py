"""Confound baselines: what the surface of the text alone predicts.

A probe that does not beat a bag of words may be reading which tokens occur rather
than anything the model computed; one that does not beat text length may be reading
length. Each baseline here is a scikit-learn logistic regression (for classification
probes) or ridge regression (for regression probes) on the same splits as the probes
(fitted on their training data, `plan.train` plus `plan.val`, scored on any dataset
with the same metrics and bootstrap as the probes: accuracy, F1, ... or R², Pearson,
Spearman, MSE, MAE):

- `length`: token count and its log.
- `bag_of_words`: which token ids occur (binary counts; each token id is a "word",
  so no texts are needed and the "words" are exactly what the model read).
- `tfidf`: TF-IDF weights of the token ids.

The text classifiers choose their L2 strength by seeded, stratified k-fold
cross-validation on log-loss and refit on all the training data (what
`LogisticRegressionCV` does; a grid search keeps one API across scikit-learn
versions). Every ridge regression (length too) chooses its alpha by seeded k-fold
cross-validation on mean squared error over the same training rows (never the test
set), as the regression probes choose theirs, and refits on all of them. All of
them read whole texts: token-level probes get NaN metrics and a `note` saying why.

All classification probes share one classifier and all regression probes one
regressor: a fit reads one dataset, so they learn the same labels (each
classification probe's probabilities are mapped to its own class order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.data import ProbeDataset
from ..engine.plan import FitPlan, scored_labels
from ..errors import ProbeError
from ..labels import encode_labels
from .baselines import HeldOutBaseline, is_regression

TOKEN_LEVEL_NOTE = "token-level probe: confound baselines score whole texts, not tokens"


def skip_note(cfg: Any) -> str | None:
    """Why a probe gets no confound baseline (NaN metrics), or None when it gets one."""
    if cfg.token_level:
        return TOKEN_LEVEL_NOTE
    return None


C_GRID = np.logspace(-4, 4, 10)  # LogisticRegressionCV's default Cs
ALPHA_GRID = np.logspace(-4, 4, 10)  # ridge strengths (alpha ~ 1 / C)


def token_documents(ds: ProbeDataset) -> list[str]:
    """Each example's token ids as a space-separated "document" for text vectorizers."""
    return [" ".join(map(str, t.tolist())) for t in ds.tokens]


class ConfoundBaseline(HeldOutBaseline):
    """Shared fitting; subclasses say what the model sees (`inputs`) and which
    scikit-learn estimators read it (`estimator` for classification probes; for
    regression probes, ridge after `features()`). Scored as `HeldOutBaseline`."""

    name = "confound"

    def __init__(self, plan: FitPlan) -> None:
        super().__init__(plan)
        # Every probe's training labels are inside its classes (the plan checks), so
        # one fit, in the first probe's label space, serves them all: each probe's
        # columns are mapped by class value in `predict_proba`. Regression probes all
        # read the same numeric targets: one regressor serves them all.
        scored = [c for c in self.configs if skip_note(c) is None]
        classifying = [c for c in scored if not is_regression(c)]
        regressing = [c for c in scored if is_regression(c)]
        self.model: Any = None  # None when no classification probe gets a baseline
        self.regressor: Any = None  # None when no regression probe gets one
        self.fit_classes: tuple[Any, ...] = ()
        parts = [d for d in (plan.train, plan.val) if d is not None]
        x = self._stack([self.inputs(d) for d in parts]) if scored else None
        # the fit's groups (tt_split(groups=...)): CV folds keep them whole
        ids = [getattr(d, "groups", None) for d in parts]
        self.groups = None if any(g is None for g in ids) else np.concatenate(ids)
        if classifying:
            y = np.concatenate([scored_labels(classifying[0], d)[1] for d in parts])
            self.model = self.estimator(y).fit(x, y)
            self.fit_classes = tuple(classifying[0].classes[k] for k in self.model.classes_)
        if regressing:
            t = np.concatenate([scored_labels(regressing[0], d)[1] for d in parts])
            self.regressor = self.regression_estimator(t).fit(x, t)

    # -- what subclasses define ---------------------------------------------------------
    def inputs(self, ds: ProbeDataset) -> Any:
        raise NotImplementedError

    def estimator(self, y: np.ndarray) -> Any:
        raise NotImplementedError

    def features(self) -> Any:
        """The scikit-learn steps before the linear model (a scaler, a vectorizer)."""
        raise NotImplementedError

    def regression_estimator(self, t: np.ndarray) -> Any:
        """Ridge regression on `features()`, alpha by k-fold CV on the training rows."""
        from sklearn.pipeline import make_pipeline

        return make_pipeline(self.features(), cross_validated_ridge(len(t), self.seed, self.groups))

    @staticmethod
    def _stack(parts: list[Any]) -> Any:
        if isinstance(parts[0], np.ndarray):
            return np.concatenate(parts)
        return [doc for p in parts for doc in p]

    # -- scoring ------------------------------------------------------------------------
    def _config(self, probe: str) -> Any:
        cfg = next((c for c in self.configs if c.name == probe), None)
        if cfg is None:
            raise ProbeError(f"no probe {probe!r}; probes: {[c.name for c in self.configs]}")
        if skip_note(cfg):
            raise ProbeError(f"probe {probe!r}: {skip_note(cfg)}")
        return cfg

    def predict_proba(self, probe: str, dataset: ProbeDataset) -> np.ndarray:
        """Probabilities over the probe's classes (a class unseen in training gets 0)."""
        cfg = self._config(probe)
        if is_regression(cfg):
            raise ProbeError(f"probe {probe!r} is a regression probe: use predict()")
        cols = encode_labels(cfg.name, cfg.classes, self.fit_classes)
        full = np.zeros((len(dataset), len(cfg.classes)))
        full[:, cols] = self.model.predict_proba(self.inputs(dataset))
        return full

    def predict(self, probe: str, dataset: ProbeDataset) -> np.ndarray:
        """A regression probe's targets as the ridge regression predicts them."""
        cfg = self._config(probe)
        if not is_regression(cfg):
            raise ProbeError(f"probe {probe!r} is a classification probe: use predict_proba()")
        return self.regressor.predict(self.inputs(dataset))

    def proba(self, cfg: Any, dataset: ProbeDataset, n_rows: int) -> np.ndarray:
        return self.predict_proba(cfg.name, dataset)

    def targets(self, cfg: Any, dataset: ProbeDataset) -> np.ndarray:
        return self.predict(cfg.name, dataset)

    def skip(self, cfg: Any) -> str | None:
        return skip_note(cfg)

    def extra_columns(self, cfg: Any) -> dict[str, Any]:
        return {"note": skip_note(cfg)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.configs)} probes)"


def cross_validated_logistic(y: np.ndarray, seed: int, groups: np.ndarray | None = None) -> Any:
    """Logistic regression whose L2 strength is chosen by seeded stratified k-fold
    cross-validation on log-loss (folds that keep `groups` whole, when given), then
    refitted on everything; a plain C=1 fit when a class has too few examples for two
    folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    from ..engine.probe import cv_folds

    base = LogisticRegression(max_iter=2000)
    _, y_idx = np.unique(y, return_inverse=True)
    cv = cv_folds(y_idx, 5, seed, groups)
    if not cv:
        return base
    return GridSearchCV(base, {"C": C_GRID}, cv=cv, scoring="neg_log_loss")


def cross_validated_ridge(n_rows: int, seed: int, groups: np.ndarray | None = None) -> Any:
    """Ridge regression whose alpha is chosen by seeded k-fold cross-validation on
    mean squared error over the rows it is fitted on (groups kept whole, when given),
    then refitted on all of them; a plain alpha=1 fit when there are too few rows (or
    groups) for two folds."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, GroupKFold, KFold

    folds = min(5, n_rows // 2 if groups is None else len(np.unique(groups)))
    if folds < 2:
        return Ridge(alpha=1.0)
    if groups is not None:
        splits = GroupKFold(folds, shuffle=True, random_state=seed)
        cv: Any = list(splits.split(np.zeros(n_rows), groups=groups))
    else:
        cv = KFold(folds, shuffle=True, random_state=seed)
    return GridSearchCV(Ridge(), {"alpha": ALPHA_GRID}, cv=cv, scoring="neg_mean_squared_error")


class LengthBaseline(ConfoundBaseline):
    """Logistic or ridge regression on the token count and its log (standardised)."""

    name = "length"

    def inputs(self, ds: ProbeDataset) -> np.ndarray:
        n = ds.lengths.astype(np.float64)
        return np.column_stack([n, np.log(n)])

    def features(self) -> Any:
        from sklearn.preprocessing import StandardScaler

        return StandardScaler()

    def estimator(self, y: np.ndarray) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        return make_pipeline(self.features(), LogisticRegression(max_iter=2000))


class TokenTextBaseline(ConfoundBaseline):
    """A text vectorizer over token-id documents, then cross-validated logistic or
    ridge regression."""

    def inputs(self, ds: ProbeDataset) -> list[str]:
        return token_documents(ds)

    def vectorizer(self) -> Any:
        raise NotImplementedError

    def features(self) -> Any:
        return self.vectorizer()

    def estimator(self, y: np.ndarray) -> Any:
        from sklearn.pipeline import make_pipeline

        return make_pipeline(self.vectorizer(), cross_validated_logistic(y, self.seed, self.groups))


class BagOfWordsBaseline(TokenTextBaseline):
    """Which token ids occur (binary counts)."""

    name = "bag_of_words"

    def vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(token_pattern=r"\S+", lowercase=False, binary=True)


class TfidfBaseline(TokenTextBaseline):
    """TF-IDF weights of the token ids."""

    name = "tfidf"

    def vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(token_pattern=r"\S+", lowercase=False)


CONFOUNDS: dict[str, type[ConfoundBaseline]] = {
    "length": LengthBaseline,
    "bag_of_words": BagOfWordsBaseline,
    "tfidf": TfidfBaseline,
}
