"""Regression probes: ridge regression on pooled features, for continuous targets.

They train beside the classification probes in the same pass, with the same online
machinery (a bank of L2 strengths, Adam, honest early stopping on a validation split),
and end with a closed-form ridge fit per strength, the strength chosen by k-fold
cross-validation as for classification. Targets are standardised inside the probe
with training statistics, so `val_loss` is the mean squared error in units of the
training targets' variance (about 1 - R² on the validation data).

Online code length (MDL) needs a discrete code; for continuous targets it would
depend on a quantisation step we have no principled way to choose, so regression
probes report none (`code_length_bits` and `compression` are NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from ..config import ProbeConfig
from ..errors import ProbeError
from .families import FamilyProbe
from .l2_search import GridSearch
from .probe import LinearProbe, _Scaler

REGRESSION_COLUMNS = [
    "r2",
    "r2_low",
    "r2_high",
    "pearson",
    "spearman",
    "mse",
    "mse_low",
    "mse_high",
    "mae",
    "mae_low",
    "mae_high",
]


class RidgeProbe(LinearProbe):
    """Ridge regression on pooled features, trained online like `LinearProbe`."""

    def __init__(self, config: ProbeConfig, dim: int) -> None:
        self.classes = np.asarray([], dtype=object)
        self._class_index = {}
        self.target_scaler = _Scaler()
        self._init_params(config, dim, 1)

    # -- targets ------------------------------------------------------------------------
    def encode(self, y: np.ndarray) -> np.ndarray:
        """Targets as float64; NaN or inf is a clear error."""
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ProbeError(
                f"probe {self.name!r} is a regression probe: targets must be numbers"
            ) from e
        if not np.isfinite(y).all():
            raise ProbeError(
                f"probe {self.name!r}: targets contain NaN or inf; drop those examples"
            )
        return y

    def _target_stats(self) -> tuple[float, float]:
        sc = self.target_scaler
        if sc.mean is None:
            return 0.0, 1.0
        return float(sc.mean[0]), float(sc.scale[0])

    def _standard_targets(self, y: np.ndarray) -> np.ndarray:
        mean, scale = self._target_stats()
        return ((np.asarray(y, dtype=np.float64) - mean) / scale).astype(np.float32)

    # -- the loss: squared error in standardised target units ---------------------------
    def _losses(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        diff = out[..., 0] - self._standard_targets(y)[:, None]
        return np.mean(diff.astype(np.float64) ** 2, axis=0)

    def _loss_grad(self, out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = out[..., 0] - self._standard_targets(y)[:, None]
        losses = np.mean(diff.astype(np.float64) ** 2, axis=0)
        return losses, (2.0 / len(y)) * diff[..., None]

    def step(self, x: np.ndarray, y: np.ndarray, lr: float | None = None) -> float:
        if not self.scaler.frozen:  # target statistics follow the first pass, like features
            self.target_scaler.update(np.asarray(y, dtype=np.float64)[:, None])
        return super().step(x, y, lr)

    def code_length(self, x: np.ndarray, y: np.ndarray) -> float:
        return 0.0  # no code length for continuous targets (see the module doc)

    def uniform_bits(self, n: int) -> float:
        return 0.0

    # -- the final fit: closed-form ridge, strength by k-fold CV ------------------------
    def refine(
        self,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        *,
        merge_validation: bool = True,
        groups: np.ndarray | None = None,
        val_groups: np.ndarray | None = None,
        **_: Any,
    ) -> None:
        """Ridge per L2 strength in closed form; the strength with the lowest k-fold
        cross-validated error over training (+ validation) rows, refitted on all
        (the validation split's error with `cv_folds=0`); a choice on the grid's
        edge looks a decade past it, as `LinearProbe.refine` does. With `groups`
        (and `val_groups`) the folds keep each group whole."""
        from sklearn.model_selection import GroupKFold, KFold

        z, t = self._standardise(x), self._standard_targets(y)
        if x_val is not None and merge_validation and self.config.cv_folds >= 2:
            z = np.concatenate([z, self._standardise(x_val)])
            t = np.concatenate([t, self._standard_targets(y_val)])
            if groups is not None:
                groups = np.concatenate([groups, np.asarray(val_groups)])
        l2 = self.config.l2
        folds = []
        k, seed = self.config.cv_folds, self.config.seed
        if groups is not None:
            k = min(k, len(np.unique(groups)))
            if k >= 2:
                folds = list(GroupKFold(k, shuffle=True, random_state=seed).split(z, groups=groups))
        elif k >= 2 and len(t) >= 2 * k:
            folds = list(KFold(k, shuffle=True, random_state=seed).split(z))
        full = _Gram(z, t)
        fold_grams = [(_Gram(z[tr], t[tr]), te) for tr, te in folds]  # once per fold

        def solve(strength: float) -> tuple[np.ndarray, np.ndarray, float]:
            w, b = full.solve(strength)
            cv = math.nan
            if folds:
                errors = []
                for gram, te in fold_grams:
                    wf, bf = gram.solve(strength)
                    errors.append(np.mean((z[te] @ wf + bf - t[te]) ** 2))
                cv = float(np.mean(errors))
            return w[:, None, None], np.array([[b]], dtype=np.float32), cv

        fits = [solve(s) for s in l2]
        w, b = np.concatenate([f[0] for f in fits], 1), np.concatenate([f[1] for f in fits])
        cv_folds = bool(folds)
        losses = self._strength_losses(cv_folds, w, b, [f[2] for f in fits], x_val, y_val)
        search = GridSearch(list(range(len(l2))), list(l2), w, b, losses, self._current_member())
        # a choice on the grid's edge: a decade past it, while that is the best
        while (strength := search.next_strength()) is not None:
            w1, b1, cv = solve(strength)
            loss = self._strength_losses(cv_folds, w1, b1, [cv], x_val, y_val)
            search.add(strength, w1, b1, loss)
        self.take_search(search, cross_validated=cv_folds)

    def _raw(self, w: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        """Raw-space weights [dim, 1] and bias [1] predicting targets in their own units."""
        w, b = super()._raw(w, b)
        mean, scale = self._target_stats()
        return w * scale, b * scale + mean

    # -- prediction ---------------------------------------------------------------------
    def predict(self, x: Any) -> np.ndarray:
        """Predicted targets, in the targets' own units."""
        return self.decision_function(x)[:, 0]

    def predict_proba(self, x: Any) -> np.ndarray:
        raise ProbeError(f"probe {self.name!r} is a regression probe: use predict()")

    def score(self, x: Any, y: Any) -> float:
        """R² on (x, y), like scikit-learn's regressors."""
        return r2_score(self.encode(y), self.predict(x))

    def direction(self, positive: Any = None) -> np.ndarray:
        """Unit vector in activation space along which the prediction grows."""
        v = self.coef_[0]
        return v / (np.linalg.norm(v) + 1e-12)

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        w = np.asarray(arrays["weight"], dtype=np.float64)
        b = np.asarray(arrays["bias"], dtype=np.float64)
        if w.shape != (self.dim, 1) or b.shape != (1,):
            raise ProbeError(
                f"saved probe {self.name!r} has weights {w.shape}, expected ({self.dim}, 1): "
                "was it saved for another model?"
            )
        self._best = (0, w, b)
        self.scaler.frozen = True

    def __repr__(self) -> str:
        return (
            f"RidgeProbe({self.name!r}, dim={self.dim}, state={str(self.state)!r}, "
            f"steps={self.record.steps})"
        )


class _Gram:
    """The normal equations of ridge regression with a free bias, built once per row
    set and solved for any L2 strength: argmin mean((z w + b - t)^2) + l2/2 |w|^2
    (the online loss)."""

    def __init__(self, z: np.ndarray, t: np.ndarray) -> None:
        n, self.d = z.shape
        a = np.hstack([z.astype(np.float64), np.ones((n, 1))])
        self.m = (2.0 / n) * (a.T @ a)
        self.rhs = (2.0 / n) * (a.T @ t.astype(np.float64))

    def solve(self, l2: float) -> tuple[np.ndarray, float]:
        m = self.m + 1e-10 * np.eye(self.d + 1)
        m[np.arange(self.d), np.arange(self.d)] += l2
        sol = np.linalg.solve(m, self.rhs)
        return sol[: self.d].astype(np.float32), float(sol[self.d])


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / ss if ss > 0 else math.nan


def regression_metrics(
    pred: np.ndarray, y: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """R², Pearson and Spearman r, MSE and MAE, with percentile-bootstrap intervals
    (over examples, seeded) for R², MSE and MAE."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    err = pred - y
    constant = np.ptp(y) == 0 or np.ptp(pred) == 0
    out: dict[str, Any] = {
        "r2": r2_score(y, pred),
        "pearson": math.nan if constant else float(pearsonr(y, pred)[0]),
        "spearman": math.nan if constant else float(spearmanr(y, pred)[0]),
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "n": int(len(y)),
    }
    for name in ("r2", "mse", "mae"):
        out[f"{name}_low"] = out[f"{name}_high"] = math.nan
    if n_boot <= 0 or len(y) < 2:
        return out
    rng = np.random.default_rng(seed)
    stats = {"r2": [], "mse": [], "mae": []}
    for start in range(0, n_boot, 100):  # chunks: n_boot x n indices at once is too big
        idx = rng.integers(0, len(y), size=(min(100, n_boot - start), len(y)))
        yy, ee = y[idx], err[idx]
        ss = ((yy - yy.mean(1, keepdims=True)) ** 2).sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats["r2"].append(np.where(ss > 0, 1 - (ee**2).sum(1) / ss, np.nan))
        stats["mse"].append((ee**2).mean(1))
        stats["mae"].append(np.abs(ee).mean(1))
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    for name, parts in stats.items():
        values = np.concatenate(parts)
        out[f"{name}_low"], out[f"{name}_high"] = (
            float(v) for v in np.nanpercentile(values, [lo, hi])
        )
    return out


def make_probe(config: ProbeConfig, dim: int) -> LinearProbe:
    """The probe a config asks for: a family probe for `kind` other than "linear"
    (core.engine.families), ridge for `task="regression"`, else logistic."""
    if config.kind != "linear":
        return FamilyProbe(config, dim)
    return RidgeProbe(config, dim) if config.task == "regression" else LinearProbe(config, dim)
