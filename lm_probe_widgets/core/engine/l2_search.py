"""The L2 strengths a probe's final fit compares, and when it looks past its grid.

A held-out choice (k-fold CV, or the validation split) that lands on the grid's edge
says only that the best strength is there *or beyond*: the default grid 1e-3..1 had
CV pick l2=1 on the lesson data and on every SmolLM2 probe. So the final fit goes
on a decade past that edge (x10 or /10), and again while the new strength is the
best, at most EXTENSIONS times; the probe's record keeps what was searched. The
online bank (the strengths trained side by side) stays the config's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Decades past the grid's edge, at most: the default grid 1e-3..1 becomes at most
# 1e-4..1e3 (the weak side stops at WEAKEST). Past that a choice still on the edge is
# said (metrics' l2_note).
EXTENSIONS = 3
# The weak side stops here. Weaker, the problems are all but unregularised: on
# separable rows their optimum runs off to infinite weights and where L-BFGS stops
# (tol, max_iter) decides the choice. On 36 separable rows (the mixed probes of
# tests/test_torch_engine.py) the validation split chose 1e-6 at tol=1e-4 and 1e-4 at
# tol=1e-6, and fits of 1e-5 solved alone and batched differed by 0.3% in weights and
# held-out loss.
WEAKEST = 1e-4


@dataclass
class GridSearch:
    """One probe's compared strengths: first its grid's (`members`, the online bank's
    indices, in the config's order), then each extension; their fits on all rows,
    standardised weights `w` [d, S, c] and biases `b` [S, c], and held-out `losses`
    [S] (None: nothing to choose with, so the probe keeps bank member `default`)."""

    members: list[int]
    strengths: list[float]
    w: np.ndarray
    b: np.ndarray
    losses: np.ndarray | None
    default: int = 0

    @property
    def chosen(self) -> int:
        """Index (into `strengths`) of the strength kept: the lowest held-out loss,
        the first of equals (so a grid member before an extension)."""
        if self.losses is None:
            return self.members.index(self.default)
        return int(np.argmin(self.losses))

    @property
    def searched(self) -> list[float] | None:
        """The strengths compared, ascending (None when nothing was chosen)."""
        return None if self.losses is None else sorted(self.strengths)

    def next_strength(self) -> float | None:
        """The strength to solve next: a decade past the edge the choice is on, or
        None (an interior choice, nothing to choose with, one strength only, the
        extensions spent, or the weak side at WEAKEST or 0)."""
        grid = self.strengths[: len(self.members)]
        if self.losses is None or len(set(grid)) < 2:
            return None
        if len(self.strengths) - len(grid) >= EXTENSIONS:
            return None
        s = self.strengths[self.chosen]
        if s == max(self.strengths):
            return _decade(s * 10)
        if s == min(self.strengths) and _decade(s / 10) >= WEAKEST:
            return _decade(s / 10)
        return None

    def add(self, strength: float, w: np.ndarray, b: np.ndarray, losses: np.ndarray) -> None:
        """One more strength: its fit `w` [d, 1, c], `b` [1, c] and loss [1]."""
        self.strengths.append(float(strength))
        self.w = np.concatenate([self.w, w], 1)
        self.b = np.concatenate([self.b, b], 0)
        self.losses = np.concatenate([np.asarray(self.losses), np.asarray(losses, float)])

    def bank_member(self) -> int:
        """The bank member nearest the chosen strength: itself, or the grid edge an
        extension went past."""
        i, grid = self.chosen, self.strengths[: len(self.members)]
        if i < len(grid):
            return self.members[i]
        edge = np.argmax(grid) if self.strengths[i] > max(grid) else np.argmin(grid)
        return self.members[int(edge)]


def _decade(value: float) -> float:
    """`value` without the float noise of x10 and /10 (1e-5 / 10 is 1.0000000000000002e-06)."""
    return float(f"{value:.12g}")
