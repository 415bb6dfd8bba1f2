"""L-BFGS for many independent problems at once, in torch.

The final fit of a probe solves one small convex problem per L2 strength and per
cross-validation fold. One at a time (scipy) each step costs a Python round trip and
two matrix-vector products per problem; side by side, a step is one pair of matrix
products for all of them (reading the features once), on the CPU or on the
features' accelerator.

Each problem keeps its own history, step length and stopping test, so its path does
not depend on the others; a problem that has converged is frozen. Problems that can be
set apart (`Separable`: a batch of probes, each with several problems) leave the
products once their whole group has converged: a batch runs about as many products as
its problems need, not as many as its slowest needs for all (the final fit of 100
SmolLM2 probes of mixed sites, one batch: 13.0 s kept together to the end, 7.1 s set
apart; benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch.linalg import vecdot

# theta [Q, D] float64 -> (loss [Q] float64, grad [Q, D] float64); row q of the
# result depends on row q of theta alone.
Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@runtime_checkable
class Separable(Protocol):
    """Problems in consecutive groups of `group` rows (a probe's strengths and folds,
    whose products are shared), any groups of which can be posed alone."""

    group: int

    def __call__(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def measure(self, grad: torch.Tensor) -> torch.Tensor:
        """[Q] each problem's size of its gradient, for the `gtol` test."""
        ...

    def restrict(self, groups: torch.Tensor) -> Separable:
        """The problems of `groups` (indices of this batch's groups) alone."""
        ...


_ARMIJO = 1e-4  # sufficient decrease
_MAX_SHRINKS = 30


def minimize_many(
    objective: Objective | Separable,
    theta0: torch.Tensor,
    *,
    max_iter: int = 500,
    gtol: float = 1e-4,
    ftol: float = 2.2e-9,
    history: int = 10,
) -> torch.Tensor:
    """Minimise Q smooth convex problems from `theta0` [Q, D]; returns theta [Q, D].

    A problem stops when its largest gradient entry is <= `gtol` (a `Separable`'s
    `measure(grad)`, for problems solved in other coordinates than `gtol` is meant in),
    when a step lowers its loss by less than `ftol` relatively (scipy's L-BFGS-B tests
    and defaults), or after `max_iter` steps. The line search shrinks the quasi-Newton
    step (the first step has length 1/|g|, as scipy's) until the Armijo condition
    holds."""
    result = theta0.to(torch.float64).clone()  # each row written when its group is set apart
    theta = result.clone()
    q, d = theta.shape
    live = torch.arange(q, device=theta.device)  # the rows of `result` still being solved
    s_hist = theta.new_zeros(history, q, d)
    y_hist = theta.new_zeros(history, q, d)
    rho = theta.new_zeros(history, q)  # 0: an empty slot, which changes nothing
    gamma = theta.new_ones(q)
    separable = isinstance(objective, Separable)
    f, g = objective(theta)
    done = _size(objective, g) <= gtol
    slot = 0
    for it in range(max_iter):
        if bool(done.all()):
            break
        if separable:
            running = ~done.reshape(-1, objective.group).all(1)
            if 4 * int(running.sum()) <= 3 * len(running):  # a quarter finished: set apart
                result[live] = theta
                keep = running.nonzero()[:, 0]
                rows = (
                    keep[:, None] * objective.group
                    + torch.arange(objective.group, device=keep.device)
                ).ravel()
                objective, live = objective.restrict(keep), live[rows]
                theta, f, g, done, gamma = theta[rows], f[rows], g[rows], done[rows], gamma[rows]
                s_hist, y_hist, rho = s_hist[:, rows], y_hist[:, rows], rho[:, rows]
        newest_first = [(slot - 1 - j) % history for j in range(history)]
        direction = _two_loop(g, s_hist, y_hist, rho, gamma, newest_first)
        slope = vecdot(g, direction)
        uphill = slope >= 0  # a stale history: restart from steepest descent
        direction = torch.where(uphill[:, None], -g, direction)
        slope = torch.where(uphill, -vecdot(g, g), slope)
        rho *= ~uphill
        if it == 0:
            step = (1.0 / g.norm(dim=1).clamp_min(1e-12)).clamp_max(1.0)
        else:
            step = torch.ones_like(f)
        step = step.masked_fill(done, 0.0)
        f_new, g_new, step = _line_search(objective, theta, f, g, direction, slope, step, ~done)
        s = direction * step[:, None]
        theta += s
        yv = g_new - g
        sy = vecdot(s, yv)
        ok = sy > 1e-10
        s_hist[slot], y_hist[slot] = s, yv
        rho[slot] = torch.where(ok, 1.0 / sy.clamp_min(1e-300), 0.0)
        gamma = torch.where(ok, sy / vecdot(yv, yv).clamp_min(1e-300), gamma)
        slot = (slot + 1) % history
        small_gain = (f - f_new) <= ftol * torch.maximum(f.abs(), f_new.abs()).clamp_min(1.0)
        f, g = f_new, g_new
        done |= (_size(objective, g) <= gtol) | small_gain | (step == 0)
    result[live] = theta
    return result


def _size(objective: Objective | Separable, grad: torch.Tensor) -> torch.Tensor:
    """[Q] what `gtol` bounds: the largest gradient entry, or the problems' own measure."""
    return objective.measure(grad) if isinstance(objective, Separable) else grad.abs().amax(1)


def _two_loop(
    g: torch.Tensor,
    s_hist: torch.Tensor,
    y_hist: torch.Tensor,
    rho: torch.Tensor,
    gamma: torch.Tensor,
    order: list[int],
) -> torch.Tensor:
    """-H g by the L-BFGS two-loop recursion over the history slots `order` (newest
    first), with H0 = gamma I."""
    r = -g
    alphas = []
    for i in order:
        a = rho[i] * vecdot(s_hist[i], r)
        r = torch.addcmul(r, a[:, None], y_hist[i], value=-1.0)
        alphas.append(a)
    r = r * gamma[:, None]
    for i, a in zip(order[::-1], alphas[::-1], strict=True):
        b = rho[i] * vecdot(y_hist[i], r)
        r = torch.addcmul(r, (a - b)[:, None], s_hist[i])
    return r


def _line_search(
    objective: Objective,
    theta: torch.Tensor,
    f: torch.Tensor,
    g: torch.Tensor,
    direction: torch.Tensor,
    slope: torch.Tensor,
    step: torch.Tensor,
    pending: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pending problem, the first step length (shrinking from `step`) that lowers
    the loss enough, with the loss and gradient there; a problem that finds none, or
    is not pending, keeps its point (step 0)."""
    f_new, g_new = f, g
    for _ in range(_MAX_SHRINKS):
        ft, gt = objective(theta + direction * step[:, None])
        ok = pending & (ft <= f + _ARMIJO * step * slope)
        f_new = torch.where(ok, ft, f_new)
        g_new = torch.where(ok[:, None], gt, g_new)
        pending = pending & ~ok
        if not bool(pending.any()):
            break
        # The minimum of the quadratic through f, the slope and f(step), kept within
        # [0.1, 0.5] of the step (a halving where the loss is not finite).
        curvature = 2.0 * (ft - f - slope * step)
        guess = -slope * step * step / curvature
        guess = torch.where((curvature > 0) & guess.isfinite(), guess, 0.5 * step)
        guess = torch.minimum(torch.maximum(guess, 0.1 * step), 0.5 * step)
        step = torch.where(pending, guess, step)
    return f_new, g_new, step.masked_fill(pending, 0.0)
