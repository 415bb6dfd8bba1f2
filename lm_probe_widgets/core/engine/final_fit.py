"""The converged final fit of a logistic probe: every L2 strength, and every
cross-validation fold of every strength, solved side by side (core.engine.lbfgs).

Fold fits start from zero, never from a fit that has seen their held-out rows: with
weak regularisation the optimiser stops (its relative-decrease test) long before the
fold's own optimum, and such a start scored the weakest strength best (SmolLM2 layer
15 with 1e-5 in the grid: CV loss 0.24 for it instead of 4.8; test accuracy 0.705
instead of 0.790).

Each problem minimises mean cross-entropy + l2/2 |W|^2 over standardised features.
The features stay raw (they may be a disk-backed array); the scaler is folded into
the weights. A two-class probe is solved as one logit: the two-class softmax optimum
has W1 = -W0, so it is the binary problem in v = W1 - W0 with strength l2/2, mapped
back exactly, at half the arithmetic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .lbfgs import minimize_many

# The fold fits only rank the strengths: they stop at this many times `tol`.
FOLD_TOL_FACTOR = 10.0


@dataclass
class _Logistic:
    """The objective of problems that share one feature matrix: problem i fits the
    rows weighted by column `fit[i]` of `weights`, with strength `l2[i]`."""

    x: torch.Tensor  # [n, d] raw features, float32
    mu: torch.Tensor  # [d]
    inv: torch.Tensor  # [d] 1 / scale
    y: torch.Tensor  # [n] class indices
    weights: torch.Tensor  # [n, fits]: 1/count on a fit's rows, else 0
    fit: torch.Tensor  # [problems] the weight column each problem uses
    l2: torch.Tensor  # [problems] float64
    outputs: int  # logits per problem: 1 (two classes) or the number of classes

    def __post_init__(self) -> None:
        self.row_weights = self.weights[:, self.fit]  # [n, problems], read every step

    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        """[n, A, outputs] logits of the problems whose parameters are `theta`."""
        a, o, d = len(theta), self.outputs, self.x.shape[1]
        w = theta[:, : d * o].reshape(a, d, o).to(torch.float32) * self.inv[None, :, None]
        b = theta[:, d * o :].to(torch.float32) - torch.einsum("d,ado->ao", self.mu, w)
        z = self.x @ w.permute(1, 0, 2).reshape(d, a * o)
        return (z + b.reshape(1, a * o)).reshape(-1, a, o)

    def row_losses(self, z: torch.Tensor) -> torch.Tensor:
        """[n, A] cross-entropy of each row under each problem."""
        if self.outputs == 1:
            z = z[..., 0]
            return F.softplus(z) - self.y[:, None].to(z.dtype) * z
        logp = torch.log_softmax(z, -1)
        idx = self.y[:, None, None].expand(-1, z.shape[1], 1)
        return -logp.gather(2, idx)[..., 0]

    def __call__(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss [A], gradient [A, D]) in float64; the products run in float32."""
        a, o, d = len(theta), self.outputs, self.x.shape[1]
        z = self.logits(theta)
        wt = self.row_weights
        loss = (self.row_losses(z) * wt).sum(0, dtype=torch.float64)
        w = theta[:, : d * o].reshape(a, d, o)
        l2 = self.l2
        loss += 0.5 * l2 * (w * w).sum((1, 2))
        if o == 1:
            dz = (torch.sigmoid(z[..., 0]) - self.y[:, None].to(z.dtype)) * wt
            dz = dz[..., None]
        else:
            dz = torch.softmax(z, -1)
            dz[torch.arange(len(self.y)), :, self.y] -= 1.0
            dz *= wt[..., None]
        g_b = dz.sum(0)  # [A, o]
        g_raw = (self.x.T @ dz.reshape(-1, a * o)).reshape(d, a, o).permute(1, 0, 2)
        g_w = self.inv[None, :, None] * (g_raw - self.mu[None, :, None] * g_b[:, None, :])
        grad = torch.cat(
            [(g_w.double() + l2[:, None, None] * w).reshape(a, d * o), g_b.double()], 1
        )
        return loss, grad


def fit_strengths(
    x: np.ndarray,
    y: np.ndarray,
    w0: np.ndarray,
    b0: np.ndarray,
    l2: list[float],
    mu: np.ndarray,
    inv: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    *,
    max_iter: int,
    tol: float,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit each strength on all rows from (w0 [d, K, c], b0 [K, c]), and each fold of
    each strength from zero. Returns (w [d, K, c], b [K, c], cv_loss [K]): the mean
    held-out cross-entropy over the folds (nan without folds); with folds, the strength
    with the lowest is the one fitted to `tol`, the others to 10x that."""
    dev = torch.device(device or "cpu")
    d, k, c = w0.shape
    binary = c == 2
    o = 1 if binary else c
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=dev)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=dev)
    n = len(yt)
    masks = [torch.ones(n, dtype=torch.bool)]
    for train_rows, _ in folds:
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.as_tensor(train_rows)] = True
        masks.append(m)
    weights = torch.stack([m / m.sum() for m in masks], 1).to(dev, torch.float32)
    strengths = torch.as_tensor(l2, dtype=torch.float64, device=dev) / (2 if binary else 1)
    f = len(folds)
    # Problems member-major: member m's all-rows fit, then its F fold fits.
    fit_ids = torch.arange(f + 1, device=dev).repeat(k)
    problems = _Logistic(
        xt,
        torch.as_tensor(mu, device=dev),
        torch.as_tensor(inv, device=dev),
        yt,
        weights,
        fit_ids,
        strengths.repeat_interleave(f + 1),
        o,
    )
    w = torch.as_tensor(np.asarray(w0, dtype=np.float64)).permute(1, 0, 2)  # [K, d, c]
    b = torch.as_tensor(np.asarray(b0, dtype=np.float64))
    if binary:  # v = W1 - W0
        w, b = w[..., 1:] - w[..., :1], b[:, 1:] - b[:, :1]
    start = torch.zeros(k, f + 1, d * o + o, dtype=torch.float64)
    start[:, 0] = torch.cat([w.reshape(k, d * o), b], 1)  # all rows: from the online fit
    start = start.reshape(k * (f + 1), -1).to(dev)
    # With folds, the fits only rank the strengths first: a 10x looser gradient test
    # halves the steps and changed no choice on SmolLM2's 30 layers; the strength
    # chosen is then polished to `tol`.
    coarse = FOLD_TOL_FACTOR * tol if folds else tol
    solved = minimize_many(problems, start, max_iter=max_iter, gtol=coarse)
    solved = solved.reshape(k, f + 1, -1)
    theta = solved[:, 0].clone()
    cv_loss = np.full(k, np.nan)
    if folds:
        held_out = torch.stack([~m for m in masks[1:]], 1).to(dev, torch.float32)  # [n, F]
        fold_fits = solved[:, 1:].reshape(k * f, -1)
        per_row = problems.row_losses(problems.logits(fold_fits)).reshape(n, k, f)
        fold_loss = (per_row * held_out[:, None, :]).sum(0, dtype=torch.float64)
        cv_loss = (fold_loss / held_out.sum(0)).mean(1).cpu().numpy()
        best = int(np.argmin(cv_loss))
        polish = dataclasses.replace(problems, fit=fit_ids[:1], l2=strengths[best : best + 1])
        theta[best] = minimize_many(polish, theta[best : best + 1], max_iter=max_iter, gtol=tol)[0]
    w = theta[:, : d * o].reshape(k, d, o)
    b = theta[:, d * o :]
    if binary:  # back to two columns: W0 = -v/2, W1 = v/2
        w, b = torch.cat([-w / 2, w / 2], 2), torch.cat([-b / 2, b / 2], 1)
    w_out = w.permute(1, 0, 2).to(torch.float32).cpu().numpy()
    return np.ascontiguousarray(w_out), b.to(torch.float32).cpu().numpy(), cv_loss
