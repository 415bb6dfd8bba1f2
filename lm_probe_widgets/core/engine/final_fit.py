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

Probes of one shape (width, strengths, classes, folds) are solved together along a
leading probe axis, each with its own features, eigenbasis and folds (rows padded to
the longest, with no weight): one batched product per step for all of them, on the
CPU or on the probe device (`fit_many`; a single probe is the case P = 1). A probe
whose problems have all converged leaves the batch (`lbfgs.Separable`); on the CPU
batches hold a few probes (`group_bytes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from .lbfgs import minimize_many
from .rows import rows_on

# The fold fits only rank the strengths: they stop at this many times `tol`.
FOLD_TOL_FACTOR = 10.0
# The largest curvature of the logistic loss, p(1 - p) at p = 1/2: a direction of the
# features with variance `lam` costs about CURVATURE * lam + l2 to move along.
CURVATURE = 0.25


@dataclass
class _Preconditioner:
    """Coordinates in which the problems are well conditioned: per probe, the
    eigenbasis V of the covariance of its standardised features z (eigenvalues
    `lam`), each direction in units of the inverse square root of its curvature,
    CURVATURE * lam + l2. The bias is a direction of variance 1 with no penalty. Only
    the path depends on these coordinates: V is orthogonal (to float32 rounding), so
    the problems are the same."""

    basis: torch.Tensor  # V [P, d, d]
    lam: torch.Tensor  # [P, d]

    @classmethod
    def of(cls, z: torch.Tensor, counts: torch.Tensor) -> _Preconditioner:
        """`z` [P, n, d] (rows past a probe's `counts` zero)."""
        # float32 is plenty for a preconditioner, and 40% faster than float64
        cov = z.transpose(1, 2) @ z / counts.clamp_min(1).to(z.dtype)[:, None, None]
        lam, basis = torch.linalg.eigh(cov)
        return cls(basis, lam.clamp_min(0.0))

    def scale(self, l2: torch.Tensor) -> torch.Tensor:
        """[P, A, d + 1] float64: the unit of each coordinate (last: the bias) of each
        of a probe's problems, whose strengths are `l2` [P, A]."""
        curv = CURVATURE * self.lam.double()[:, None, :] + l2[:, :, None]
        bias = torch.full_like(l2, CURVATURE)[:, :, None]
        return torch.cat([curv, bias], 2).clamp_min(1e-12).rsqrt()


@dataclass
class _Logistic:
    """The objective of P probes' problems, A per probe, each probe's over its own
    feature matrix, in its preconditioner's coordinates: problem a of probe p fits
    the rows weighted by column `fit[p, a]` of `weights[p]`, with strength
    `l2[p, a]`; its parameters u [d + 1, outputs] are its weights and bias in the
    eigenbasis, divided by `scale[p, a]`. Parameters are [P * A, D], probe-major, as
    `minimize_many` takes them; each problem's loss reads its own row alone."""

    x: torch.Tensor  # [P, n, d] standardised features in the eigenbasis (z V), float32
    basis: torch.Tensor  # V [P, d, d], float64
    y: torch.Tensor  # [P, n] class indices
    weights: torch.Tensor  # [P, n, fits]: 1/count on a fit's rows, else 0
    fit: torch.Tensor  # [P, A] the weight column each problem uses
    l2: torch.Tensor  # [P, A] float64
    scale: torch.Tensor  # [P, A, d + 1] float64
    outputs: int  # logits per problem: 1 (two classes) or the number of classes

    def __post_init__(self) -> None:
        index = self.fit[:, None, :].expand(-1, self.x.shape[1], -1)
        self.row_weights = self.weights.gather(2, index)  # [P, n, A], read every step

    @property
    def group(self) -> int:
        """Problems per probe: they share its products (`lbfgs.Separable`)."""
        return self.fit.shape[1]

    def restrict(self, probes: torch.Tensor) -> _Logistic:
        """The problems of `probes` (indices along the probe axis) alone."""
        return _Logistic(
            self.x[probes],
            self.basis[probes],
            self.y[probes],
            self.weights[probes],
            self.fit[probes],
            self.l2[probes],
            self.scale[probes],
            self.outputs,
        )

    def subset(self, index: torch.Tensor) -> _Logistic:
        """The problems `index` [P, A'] (of each probe, its own) alone."""
        scale = self.scale.gather(1, index[:, :, None].expand(-1, -1, self.scale.shape[2]))
        return dataclasses.replace(
            self, fit=self.fit.gather(1, index), l2=self.l2.gather(1, index), scale=scale
        )

    def rotated(self, theta: torch.Tensor) -> torch.Tensor:
        """[P, A, d + 1, outputs] weights (in the eigenbasis) and bias of `theta`."""
        p, a = self.fit.shape
        return theta.reshape(p, a, -1, self.outputs) * self.scale[..., None]

    def to_parameters(self, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """theta [P * A, D] of standardised weights w [P, A, d, outputs] and bias
        b [P, A, outputs]."""
        rotated = torch.cat([torch.einsum("pji,pajo->paio", self.basis, w), b[:, :, None]], 2)
        return (rotated / self.scale[..., None]).reshape(w.shape[0] * w.shape[1], -1)

    def from_parameters(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardised weights [P, A, d, outputs], bias [P, A, outputs]) of `theta`."""
        v = self.rotated(theta)
        return torch.einsum("pij,pajo->paio", self.basis, v[:, :, :-1]), v[:, :, -1]

    def measure(self, g: torch.Tensor) -> torch.Tensor:
        """[P * A] the largest gradient entry in the standardised weights and bias:
        what `tol` bounds, whatever the coordinates."""
        p, a = self.fit.shape
        g = g.reshape(p, a, -1, self.outputs) / self.scale[..., None]
        g_w = torch.einsum("pij,pajo->paio", self.basis, g[:, :, :-1])  # one product for all
        return torch.maximum(g_w.abs().amax((2, 3)), g[:, :, -1].abs().amax(2)).reshape(-1)

    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        """[P, n, A, outputs] logits of the problems whose parameters are `theta`."""
        (p, a), o, d = self.fit.shape, self.outputs, self.x.shape[2]
        v = self.rotated(theta).to(torch.float32)
        z = torch.bmm(self.x, v[:, :, :d].permute(0, 2, 1, 3).reshape(p, d, a * o))
        return (z + v[:, :, d].reshape(p, 1, a * o)).reshape(p, -1, a, o)

    def row_losses(self, z: torch.Tensor) -> torch.Tensor:
        """[P, n, A] cross-entropy of each row under each problem."""
        if self.outputs == 1:
            z = z[..., 0]
            return F.softplus(z) - self.y[:, :, None].to(z.dtype) * z
        logp = torch.log_softmax(z, -1)
        idx = self.y[:, :, None, None].expand(-1, -1, z.shape[2], 1)
        return -logp.gather(3, idx)[..., 0]

    def __call__(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss [P * A], gradient [P * A, D]) in float64; the products run in float32."""
        (p, a), o, d = self.fit.shape, self.outputs, self.x.shape[2]
        z = self.logits(theta)
        wt = self.row_weights
        loss = (self.row_losses(z) * wt).sum(1, dtype=torch.float64)
        w = self.rotated(theta)[:, :, :d]
        loss += 0.5 * self.l2 * (w * w).sum((2, 3))
        if o == 1:
            dz = (torch.sigmoid(z[..., 0]) - self.y[:, :, None].to(z.dtype)) * wt
            dz = dz[..., None]
        else:
            onehot = F.one_hot(self.y, o).to(z.dtype)[:, :, None, :]
            dz = (torch.softmax(z, -1) - onehot) * wt[..., None]
        g_w = torch.bmm(self.x.transpose(1, 2), dz.reshape(p, -1, a * o))
        g_w = g_w.reshape(p, d, a, o).permute(0, 2, 1, 3).double()
        g_w += self.l2[:, :, None, None] * w
        g = torch.cat([g_w, dz.sum(1, dtype=torch.float64)[:, :, None]], 2)
        return loss.reshape(-1), (g * self.scale[..., None]).reshape(p * a, -1)


@dataclass
class FinalProblem:
    """One probe's final fit: its rows x [n, d] and class indices y [n], its online
    weights w0 [d, K, classes] and biases b0 [K, classes] for the strengths `l2` [K],
    its feature scaler (mu, inv), and its cross-validation folds (train rows, held-out
    rows), if any."""

    x: np.ndarray | torch.Tensor  # float32, host or where the probe maths runs
    y: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    l2: list[float]
    mu: np.ndarray
    inv: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    # (eigenbasis, eigenvalues, standardised rows in the eigenbasis) of its features,
    # once a solve computed them: the grid's extension poses the same rows again
    # (dataclasses.replace keeps them).
    pre: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """What probes solved together share: width, strengths, classes, folds."""
        return (*self.w0.shape, len(self.folds))


# Probes solved together hold their features [P, n, d] (float32) and eigenbases
# [P, d, d] (float32 and float64) in at most this many bytes (more: solves in turn).
# On the CPU, batches past a few probes buy nothing (100 SmolLM2 probes: 6.0 s in
# runs of 64 MiB, 7.0 s in one run of 1 GiB) and cost memory.
GROUP_BYTES = 2**30
CPU_GROUP_BYTES = 2**26


def group_bytes(device: torch.device | str | None) -> int:
    """The bytes of features and eigenbases probes solved together hold on `device`."""
    return CPU_GROUP_BYTES if torch.device(device or "cpu").type == "cpu" else GROUP_BYTES


def fit_many(
    problems: Sequence[FinalProblem],
    *,
    max_iter: int,
    tol: float,
    device: torch.device | str | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each problem: each strength fitted on all rows from (w0, b0), and each fold
    of each strength from zero. Returns (w [d, K, c], b [K, c], cv_loss [K]) each: the
    mean held-out cross-entropy over the folds (nan without folds); with folds, the
    strength with the lowest is the one fitted to `tol`, the others to 10x that. `tol`
    bounds the largest entry of the gradient in the standardised weights and bias.

    Problems of one shape (width, strengths, classes, folds) are solved side by side
    on `device`, one product per step for all of them (which pays on an accelerator);
    each problem's path is its own, so alone or together it ends where it ends, to
    float rounding."""
    dev = torch.device(device or "cpu")
    out: list = [None] * len(problems)
    groups: dict[tuple, list[int]] = {}
    for i, problem in enumerate(problems):
        groups.setdefault(problem.shape, []).append(i)
    for idx in groups.values():
        for chunk in _chunks([problems[i] for i in idx], idx, group_bytes(dev)):
            solved = _fit_group([problems[i] for i in chunk], max_iter, tol, dev)
            for i, result in zip(chunk, solved, strict=True):
                out[i] = result
    return out


def _chunks(group: list[FinalProblem], idx: list[int], budget: int) -> list[list[int]]:
    """`idx` in runs whose padded features fit `budget` bytes (at least one each)."""
    n, d = max(len(p.y) for p in group), group[0].w0.shape[0]
    per = max(1, budget // (4 * n * d + 12 * d * d + 1))
    return [idx[i : i + per] for i in range(0, len(idx), per)]


def _fit_group(
    group: list[FinalProblem], max_iter: int, tol: float, dev: torch.device
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`fit_many` of problems of one shape, side by side (rows padded to the longest,
    with no weight)."""
    p = len(group)
    d, k, c = group[0].w0.shape
    f = len(group[0].folds)
    binary = c == 2
    o = 1 if binary else c
    n = max(len(q.y) for q in group)
    pre, x = _rotated(group, n, dev)
    yt = torch.zeros(p, n, dtype=torch.int64, device=dev)
    masks = torch.zeros(p, n, f + 1, dtype=torch.bool, device=dev)  # all rows, then folds
    for i, q in enumerate(group):
        rows = len(q.y)
        yt[i, :rows] = torch.as_tensor(np.asarray(q.y, dtype=np.int64), device=dev)
        masks[i, :rows, 0] = True
        for j, (train_rows, _) in enumerate(q.folds):
            masks[i, torch.as_tensor(train_rows, device=dev), j + 1] = True
    weights = (masks / masks.sum(1, keepdim=True).clamp_min(1)).to(torch.float32)
    strengths = torch.as_tensor([q.l2 for q in group], dtype=torch.float64, device=dev)
    strengths = strengths / (2 if binary else 1)  # [P, K]
    # Each probe's problems member-major: member m's all-rows fit, then its F fold fits.
    fit_ids = torch.arange(f + 1, device=dev).repeat(k).expand(p, -1)
    problem_l2 = strengths.repeat_interleave(f + 1, dim=1)
    problems = _Logistic(
        x,
        pre.basis.double(),
        yt,
        weights,
        fit_ids,
        problem_l2,
        pre.scale(problem_l2),
        o,
    )
    all_rows = (torch.arange(k, device=dev) * (f + 1)).expand(p, -1)  # [P, K]
    w = torch.as_tensor(np.stack([q.w0 for q in group]), dtype=torch.float64, device=dev)
    b = torch.as_tensor(np.stack([q.b0 for q in group]), dtype=torch.float64, device=dev)
    w = w.permute(0, 2, 1, 3)  # [P, K, d, c]; b [P, K, c]
    if binary:  # v = W1 - W0
        w, b = w[..., 1:] - w[..., :1], b[..., 1:] - b[..., :1]
    start = torch.zeros(p, k * (f + 1), (d + 1) * o, dtype=torch.float64, device=dev)
    start[:, all_rows[0]] = problems.subset(all_rows).to_parameters(w, b).reshape(p, k, -1)
    # With folds, the fits only rank the strengths first: a 10x looser gradient test
    # halves the steps and changed no choice on SmolLM2's 30 layers; the strength
    # chosen is then polished to `tol`.
    coarse = FOLD_TOL_FACTOR * tol if f else tol
    solved = _minimize(problems, start.reshape(p * k * (f + 1), -1), max_iter, coarse)
    solved = solved.reshape(p, k * (f + 1), -1)
    theta = solved[:, all_rows[0]]  # [P, K, D]
    cv_loss = np.full((p, k), np.nan)
    if f:
        fold_ids = torch.tensor([j for j in range(k * (f + 1)) if j % (f + 1)], device=dev)
        fold_fits = problems.subset(fold_ids.expand(p, -1))
        logits = fold_fits.logits(solved[:, fold_ids].reshape(p * k * f, -1))
        per_row = fold_fits.row_losses(logits).reshape(p, n, k, f)
        held_out = (masks[:, :, :1] & ~masks[:, :, 1:]).to(torch.float32)  # [P, n, F]
        fold_loss = (per_row * held_out[:, :, None, :]).sum(1, dtype=torch.float64)
        cv_loss = (fold_loss / held_out.sum(1)[:, None, :]).mean(2).cpu().numpy()
        best = torch.as_tensor(np.argmin(cv_loss, 1), device=dev)
        polish = problems.subset(all_rows.gather(1, best[:, None]))
        rows = torch.arange(p, device=dev)
        theta[rows, best] = _minimize(polish, theta[rows, best], max_iter, tol)
    w, b = problems.subset(all_rows).from_parameters(theta.reshape(p * k, -1))
    if binary:  # back to two columns: W0 = -v/2, W1 = v/2
        w, b = torch.cat([-w / 2, w / 2], 3), torch.cat([-b / 2, b / 2], 2)
    w_out = w.permute(0, 2, 1, 3).to(torch.float32).cpu().numpy()  # [P, d, K, c]
    b_out = b.to(torch.float32).cpu().numpy()
    return [(np.ascontiguousarray(w_out[i]), b_out[i], cv_loss[i]) for i in range(p)]


def _rotated(
    group: list[FinalProblem], n: int, dev: torch.device
) -> tuple[_Preconditioner, torch.Tensor]:
    """The problems' preconditioner and standardised rows in its eigenbasis [P, n, d]
    (padded with zero rows): from the problems' cache when a solve of the same rows
    filled it (the grid's extension), else computed, and cached on each problem."""
    p, d = len(group), group[0].w0.shape[0]
    x = torch.zeros(p, n, d, dtype=torch.float32, device=dev)
    if all(q.pre is not None for q in group):
        for i, q in enumerate(group):
            x[i, : len(q.y)] = q.pre[2]
        basis, lam = (torch.stack([q.pre[j] for q in group]).to(dev) for j in (0, 1))
        return _Preconditioner(basis, lam), x
    for i, q in enumerate(group):
        xt = rows_on(q.x, dev)  # device rows are read in place
        mu, inv = (torch.as_tensor(a, dtype=torch.float32, device=dev) for a in (q.mu, q.inv))
        x[i, : len(q.y)] = (xt - mu) * inv
    pre = _Preconditioner.of(x, torch.tensor([len(q.y) for q in group], device=dev))
    x = torch.bmm(x, pre.basis)
    for i, q in enumerate(group):
        q.pre = (pre.basis[i], pre.lam[i], x[i, : len(q.y)])
    return pre, x


def _minimize(problems: _Logistic, start: torch.Tensor, max_iter: int, tol: float) -> torch.Tensor:
    """Solve `problems` from `start`, `tol` meant in the standardised weights."""
    return minimize_many(problems, start, max_iter=max_iter, gtol=tol)


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
    pre = _Preconditioner.of(z[None], torch.tensor([len(z)], device=dev))
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
    problem_l2 = strengths.repeat_interleave(f)[None]
    problems = _Logistic(
        (z @ pre.basis[0])[None],
        pre.basis.double(),
        yt[None],
        weights[None],
        torch.arange(f, device=dev).repeat(k)[None],
        problem_l2,
        pre.scale(problem_l2),
        o,
    )
    start = torch.zeros(k * f, (z.shape[1] + 1) * o, dtype=torch.float64, device=dev)
    theta = _minimize(problems, start, max_iter, tol)
    losses = problems.row_losses(problems.logits(theta))[0].reshape(n, k, f)
    nats = (losses * coded[:, None, :]).double()
    return ((nats if per_row else nats.sum(0)) / np.log(2)).cpu().numpy()
