"""The converged final fit of a logistic probe: every L2 strength, and every
cross-validation fold of every strength, solved side by side (core.engine.lbfgs).

Fold fits start from zero, never from a fit that has seen their held-out rows: with
weak regularisation the optimiser stops (its relative-decrease test) long before the
fold's own optimum, and such a start scored the weakest strength best (SmolLM2 layer
15 with 1e-5 in the grid: CV loss 0.24 for it instead of 4.8; test accuracy 0.705
instead of 0.790).

Each problem minimises mean cross-entropy + l2/2 |W|^2 over standardised features.
Language-model features are strongly correlated (the covariance of SmolLM2's
standardised layer 15 has eigenvalues from 3e-5 to 320), so plain L-BFGS needs
~100-170 steps. The problems are solved instead in the covariance's eigenbasis, each
direction scaled by its expected curvature (`_Preconditioner`): the same problems
in about 20 steps, and closer to their optimum when they stop.

A two-class probe is solved as one logit: the two-class softmax optimum has
W1 = -W0, so it is the binary problem in v = W1 - W0 with strength l2/2, mapped back
exactly, at half the arithmetic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .lbfgs import minimize_many

# The fold fits only rank the strengths: they stop at this many times `tol`.
FOLD_TOL_FACTOR = 10.0
# The largest curvature of the logistic loss, p(1 - p) at p = 1/2: a direction of the
# features with variance `lam` costs about CURVATURE * lam + l2 to move along.
CURVATURE = 0.25


@dataclass
class _Preconditioner:
    """Coordinates in which the problems are well conditioned: the eigenbasis V of
    the covariance of the standardised features z (eigenvalues `lam`), each direction
    in units of the inverse square root of its curvature, CURVATURE * lam + l2. The
    bias is a direction of variance 1 with no penalty. Only the path depends on these
    coordinates: V is orthogonal (to float32 rounding), so the problems are the same."""

    basis: torch.Tensor  # V [d, d]
    lam: torch.Tensor  # [d]

    @classmethod
    def of(cls, z: torch.Tensor) -> _Preconditioner:
        # float32 is plenty for a preconditioner, and 40% faster than float64
        lam, basis = torch.linalg.eigh(z.T @ z / max(len(z), 1))
        return cls(basis, lam.clamp_min(0.0))

    def scale(self, l2: torch.Tensor) -> torch.Tensor:
        """[problems, d + 1] float64: the unit of each coordinate (last: the bias)."""
        curv = CURVATURE * self.lam.double()[None, :] + l2[:, None]
        bias = torch.full_like(l2, CURVATURE)[:, None]
        return torch.cat([curv, bias], 1).clamp_min(1e-12).rsqrt()


@dataclass
class _Logistic:
    """The objective of problems that share one feature matrix, in a preconditioner's
    coordinates: problem i fits the rows weighted by column `fit[i]` of `weights`,
    with strength `l2[i]`; its parameters u [d + 1, outputs] are its weights and bias
    in the eigenbasis, divided by `scale[i]`."""

    x: torch.Tensor  # [n, d] standardised features in the eigenbasis (z V), float32
    basis: torch.Tensor  # V [d, d], float64
    y: torch.Tensor  # [n] class indices
    weights: torch.Tensor  # [n, fits]: 1/count on a fit's rows, else 0
    fit: torch.Tensor  # [problems] the weight column each problem uses
    l2: torch.Tensor  # [problems] float64
    scale: torch.Tensor  # [problems, d + 1] float64
    outputs: int  # logits per problem: 1 (two classes) or the number of classes

    def __post_init__(self) -> None:
        self.row_weights = self.weights[:, self.fit]  # [n, problems], read every step

    def subset(self, rows: torch.Tensor) -> _Logistic:
        """The problems `rows` alone."""
        return dataclasses.replace(
            self, fit=self.fit[rows], l2=self.l2[rows], scale=self.scale[rows]
        )

    def rotated(self, theta: torch.Tensor) -> torch.Tensor:
        """[A, d + 1, outputs] weights (in the eigenbasis) and bias of `theta`."""
        return theta.reshape(len(theta), -1, self.outputs) * self.scale[:, :, None]

    def to_parameters(self, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """theta [A, D] of standardised weights w [A, d, outputs] and bias b [A, outputs]."""
        rotated = torch.cat([self.basis.T @ w, b[:, None]], 1)
        return (rotated / self.scale[:, :, None]).reshape(len(w), -1)

    def from_parameters(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardised weights [A, d, outputs], bias [A, outputs]) of `theta`."""
        v = self.rotated(theta)
        return self.basis @ v[:, :-1], v[:, -1]

    def largest_gradient(self, g: torch.Tensor) -> torch.Tensor:
        """[A] the largest gradient entry in the standardised weights and bias: what
        `tol` bounds, whatever the coordinates."""
        g = g.reshape(len(g), -1, self.outputs) / self.scale[:, :, None]
        g_w = torch.einsum("ij,ajo->aio", self.basis, g[:, :-1])  # one product for all
        return torch.maximum(g_w.abs().amax((1, 2)), g[:, -1].abs().amax(1))

    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        """[n, A, outputs] logits of the problems whose parameters are `theta`."""
        a, o, d = len(theta), self.outputs, self.x.shape[1]
        v = self.rotated(theta).to(torch.float32)
        z = self.x @ v[:, :d].permute(1, 0, 2).reshape(d, a * o)
        return (z + v[:, d].reshape(1, a * o)).reshape(-1, a, o)

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
        w = self.rotated(theta)[:, :d]
        loss += 0.5 * self.l2 * (w * w).sum((1, 2))
        if o == 1:
            dz = (torch.sigmoid(z[..., 0]) - self.y[:, None].to(z.dtype)) * wt
            dz = dz[..., None]
        else:
            dz = torch.softmax(z, -1)
            dz[torch.arange(len(self.y)), :, self.y] -= 1.0
            dz *= wt[..., None]
        g_w = (self.x.T @ dz.reshape(-1, a * o)).reshape(d, a, o).permute(1, 0, 2).double()
        g_w += self.l2[:, None, None] * w
        g = torch.cat([g_w, dz.sum(0, dtype=torch.float64)[:, None]], 1)
        return loss, (g * self.scale[:, :, None]).reshape(a, -1)


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
    with the lowest is the one fitted to `tol`, the others to 10x that. `tol` bounds
    the largest entry of the gradient in the standardised weights and bias."""
    dev = torch.device(device or "cpu")
    d, k, c = w0.shape
    binary = c == 2
    o = 1 if binary else c
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=dev)
    z = (xt - torch.as_tensor(mu, device=dev)) * torch.as_tensor(inv, device=dev)
    pre = _Preconditioner.of(z)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=dev)
    n = len(yt)
    masks = [torch.ones(n, dtype=torch.bool, device=dev)]
    for train_rows, _ in folds:
        m = torch.zeros(n, dtype=torch.bool, device=dev)
        m[torch.as_tensor(train_rows, device=dev)] = True
        masks.append(m)
    weights = torch.stack([m / m.sum() for m in masks], 1).to(torch.float32)
    strengths = torch.as_tensor(l2, dtype=torch.float64, device=dev) / (2 if binary else 1)
    f = len(folds)
    # Problems member-major: member m's all-rows fit, then its F fold fits.
    fit_ids = torch.arange(f + 1, device=dev).repeat(k)
    problem_l2 = strengths.repeat_interleave(f + 1)
    problems = _Logistic(
        z @ pre.basis,
        pre.basis.double(),
        yt,
        weights,
        fit_ids,
        problem_l2,
        pre.scale(problem_l2),
        o,
    )
    del z, xt
    all_rows = torch.arange(k, device=dev) * (f + 1)
    w = torch.as_tensor(np.asarray(w0, dtype=np.float64), device=dev).permute(1, 0, 2)
    b = torch.as_tensor(np.asarray(b0, dtype=np.float64), device=dev)  # [K, d, c], [K, c]
    if binary:  # v = W1 - W0
        w, b = w[..., 1:] - w[..., :1], b[:, 1:] - b[:, :1]
    start = torch.zeros(k * (f + 1), (d + 1) * o, dtype=torch.float64, device=dev)
    start[all_rows] = problems.subset(all_rows).to_parameters(w, b)  # from the online fit
    # With folds, the fits only rank the strengths first: a 10x looser gradient test
    # halves the steps and changed no choice on SmolLM2's 30 layers; the strength
    # chosen is then polished to `tol`.
    coarse = FOLD_TOL_FACTOR * tol if folds else tol
    solved = _minimize(problems, start, max_iter, coarse)
    theta = solved[all_rows]
    cv_loss = np.full(k, np.nan)
    if folds:
        held_out = torch.stack([~m for m in masks[1:]], 1).to(torch.float32)  # [n, F]
        fold_rows = torch.ones(k * (f + 1), dtype=torch.bool, device=dev)
        fold_rows[all_rows] = False
        fold_fits = problems.subset(fold_rows)
        per_row = fold_fits.row_losses(fold_fits.logits(solved[fold_rows])).reshape(n, k, f)
        fold_loss = (per_row * held_out[:, None, :]).sum(0, dtype=torch.float64)
        cv_loss = (fold_loss / held_out.sum(0)).mean(1).cpu().numpy()
        best = int(np.argmin(cv_loss))
        polish = problems.subset(all_rows[best : best + 1])
        theta[best] = _minimize(polish, theta[best : best + 1], max_iter, tol)[0]
    w, b = problems.subset(all_rows).from_parameters(theta)
    if binary:  # back to two columns: W0 = -v/2, W1 = v/2
        w, b = torch.cat([-w / 2, w / 2], 2), torch.cat([-b / 2, b / 2], 1)
    w_out = w.permute(1, 0, 2).to(torch.float32).cpu().numpy()
    return np.ascontiguousarray(w_out), b.to(torch.float32).cpu().numpy(), cv_loss


def _minimize(problems: _Logistic, start: torch.Tensor, max_iter: int, tol: float) -> torch.Tensor:
    """Solve `problems` from `start`, `tol` meant in the standardised weights."""
    measure = problems.largest_gradient
    return minimize_many(problems, start, max_iter=max_iter, gtol=tol, measure=measure)


def held_out_bits(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: Sequence[float],
    mu: np.ndarray,
    inv: np.ndarray,
    blocks: list[tuple[np.ndarray, np.ndarray]],
    *,
    max_iter: int = 500,
    tol: float = 1e-4,
    device: torch.device | str | None = None,
    per_row: bool = False,
) -> np.ndarray:
    """For each strength in `l2` and each (fit rows, coded rows) of `blocks`: the probe
    fitted from zero to `tol` on the fit rows (mean cross-entropy + l2/2 |W|^2 over
    the standardised features, as the final fit), and the bits -sum log2 p(y) it
    gives the coded rows. All are solved side by side; returns [strengths, blocks], or
    with `per_row` each row's bits [rows, strengths, blocks] (0 where not coded)."""
    dev = torch.device(device or "cpu")
    binary = n_classes == 2
    o = 1 if binary else n_classes
    x, mu, inv = (np.array(a, dtype=np.float32) for a in (x, mu, inv))  # writable copies
    z = (torch.as_tensor(x, device=dev) - torch.as_tensor(mu, device=dev)) * torch.as_tensor(
        inv, device=dev
    )
    pre = _Preconditioner.of(z)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=dev)
    n, f, k = len(yt), len(blocks), len(l2)
    fit_masks = torch.zeros(n, f, dtype=torch.float32, device=dev)
    coded = torch.zeros(n, f, dtype=torch.float32, device=dev)
    for j, (fit_rows, code_rows) in enumerate(blocks):
        fit_masks[torch.as_tensor(fit_rows, device=dev), j] = 1.0
        coded[torch.as_tensor(code_rows, device=dev), j] = 1.0
    weights = fit_masks / fit_masks.sum(0, keepdim=True).clamp_min(1.0)
    # problems strength-major: strength i's f blocks, then the next strength's
    strengths = torch.as_tensor(l2, dtype=torch.float64, device=dev) / (2 if binary else 1)
    problem_l2 = strengths.repeat_interleave(f)
    problems = _Logistic(
        z @ pre.basis,
        pre.basis.double(),
        yt,
        weights,
        torch.arange(f, device=dev).repeat(k),
        problem_l2,
        pre.scale(problem_l2),
        o,
    )
    start = torch.zeros(k * f, (z.shape[1] + 1) * o, dtype=torch.float64, device=dev)
    theta = _minimize(problems, start, max_iter, tol)
    losses = problems.row_losses(problems.logits(theta)).reshape(n, k, f)
    nats = (losses * coded[:, None, :]).double()
    return ((nats if per_row else nats.sum(0)) / np.log(2)).cpu().numpy()
