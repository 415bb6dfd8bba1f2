"""The batched L-BFGS behind the final fit: problems solved side by side end where each
would end alone, and where scipy's L-BFGS-B ends."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from lm_probe_widgets.core.engine.lbfgs import minimize_many


def _logistic_problems(seed: int = 0, q: int = 6, n: int = 120, d: int = 15):
    """q L2-regularised logistic regressions with their own data, strength and scale
    (so they need different numbers of steps)."""
    rng = np.random.default_rng(seed)
    xs = torch.as_tensor(rng.normal(0, 1, (q, n, d)) * rng.uniform(0.3, 3.0, (q, 1, d)))
    ys = torch.as_tensor(rng.integers(0, 2, (q, n)), dtype=torch.float64)
    l2 = torch.as_tensor(10.0 ** rng.uniform(-3, 0, q))

    every = torch.arange(q)

    def objective(theta: torch.Tensor, rows: torch.Tensor = every):
        z = torch.einsum("qnd,qd->qn", xs[rows], theta)
        loss = (torch.nn.functional.softplus(z) - ys[rows] * z).mean(1)
        loss = loss + 0.5 * l2[rows] * (theta * theta).sum(1)
        g = torch.einsum("qnd,qn->qd", xs[rows], torch.sigmoid(z) - ys[rows]) / n
        return loss, g + l2[rows, None] * theta

    return objective, q, d


def test_problems_side_by_side_end_where_each_ends_alone_and_where_scipy_ends():
    objective, q, d = _logistic_problems()
    start = torch.zeros(q, d, dtype=torch.float64)
    together = minimize_many(objective, start, gtol=1e-8, ftol=0.0)
    for i in range(q):
        rows = torch.tensor([i])
        alone = minimize_many(
            lambda t, rows=rows: objective(t, rows), start[rows], gtol=1e-8, ftol=0.0
        )
        np.testing.assert_allclose(together[i].numpy(), alone[0].numpy(), atol=1e-6)

        def scipy_objective(w: np.ndarray, rows=rows) -> tuple[float, np.ndarray]:
            loss, grad = objective(torch.as_tensor(w)[None], rows)
            return float(loss[0]), grad[0].numpy()

        ref = minimize(
            scipy_objective,
            np.zeros(d),
            jac=True,
            method="L-BFGS-B",
            options={"gtol": 1e-10, "maxiter": 10_000},
        )
        # the same minimum: the loss to float precision, the weights as far as the
        # conditioning (l2 down to 1e-3) lets a gradient of 1e-7 pin them
        assert float(objective(together[i : i + 1], rows)[0][0]) <= ref.fun + 1e-12
        np.testing.assert_allclose(together[i].numpy(), ref.x, atol=1e-4)


def test_a_problem_at_its_optimum_stays_there_while_others_move():
    objective, q, d = _logistic_problems(seed=1)
    solved = minimize_many(objective, torch.zeros(q, d, dtype=torch.float64), gtol=1e-9, ftol=0.0)
    start = solved.clone()
    start[1:] = 0.0  # problem 0 starts at its optimum, the others from zero
    again = minimize_many(objective, start, gtol=1e-9, ftol=0.0)
    loss_before, loss_after = objective(solved)[0][0], objective(again)[0][0]
    assert float(loss_after) <= float(loss_before) + 1e-15  # never worse
    np.testing.assert_allclose(again.numpy(), solved.numpy(), atol=1e-6)


class _Grouped:
    """`_logistic_problems` in groups of two rows (`lbfgs.Separable`), recording how
    many rows each evaluation computed."""

    def __init__(self, objective, groups: torch.Tensor, seen: list[int]):
        self.objective, self.groups, self.seen, self.group = objective, groups, seen, 2

    def rows(self) -> torch.Tensor:
        return (self.groups[:, None] * 2 + torch.arange(2)).ravel()

    def __call__(self, theta: torch.Tensor):
        self.seen.append(len(theta))
        return self.objective(theta, self.rows())

    def measure(self, grad: torch.Tensor) -> torch.Tensor:
        return grad.abs().amax(1)

    def restrict(self, groups: torch.Tensor) -> _Grouped:
        return _Grouped(self.objective, self.groups[groups], self.seen)


def test_groups_that_converged_leave_the_products_and_the_rest_end_where_they_would():
    objective, q, d = _logistic_problems(seed=2, q=8)
    start = torch.zeros(q, d, dtype=torch.float64)
    kept = minimize_many(objective, start, gtol=1e-8, ftol=0.0)
    seen: list[int] = []
    set_apart = minimize_many(
        _Grouped(objective, torch.arange(q // 2), seen), start, gtol=1e-8, ftol=0.0
    )
    np.testing.assert_allclose(set_apart.numpy(), kept.numpy(), atol=1e-9)
    assert seen[0] == q and min(seen) == 2  # the slowest group ran alone at the end
    assert sorted(seen, reverse=True) == seen  # rows only ever leave
