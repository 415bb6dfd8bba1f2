"""Online steps of many probes at once.

Classification probes of one shape (width, L2 members, classes) that have taken the
same number of steps keep their parameters and Adam state in arrays stacked along a
leading probe axis; each probe's own arrays become views of its row. A step of all of
them is then one batched matrix product per stage (core.engine.probe's maths, the
same calls a single probe makes), not a Python loop over probes: with 30 probes on
SmolLM2 the later epochs cost a third of the loop's time.

Each probe still reads its own rows (its own shuffle) and keeps its own records, so a
stacked step gives every probe what its own step would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .probe import (
    LinearProbe,
    _log_softmax,
    _logit_grad,
    _member_losses,
    adam_update,
    raw_scores,
    scores,
    weight_grads,
)


class ProbeStack:
    """Probes stepped together; their parameters are views of the stack's arrays
    until the stack is dropped (a probe that leaves keeps its last values)."""

    def __init__(self, probes: Sequence[LinearProbe], lrs: Sequence[float]) -> None:
        self.probes = list(probes)
        self.t = self.probes[0]._adam_t
        self.w = np.stack([p._w for p in probes])
        self.b = np.stack([p._b for p in probes])
        self.m = tuple(np.stack([p._adam_m[i] for p in probes]) for i in range(2))
        self.v = tuple(np.stack([p._adam_v[i] for p in probes]) for i in range(2))
        self.l2w = np.stack([p._l2w for p in probes])
        self.lr = np.asarray(lrs, dtype=np.float64)
        scalers = [p._scaler_arrays() for p in probes]  # frozen after the first pass
        self.mu = np.stack([mu for mu, _ in scalers])
        self.inv = np.stack([inv for _, inv in scalers])
        for i, p in enumerate(self.probes):
            p._w, p._b = self.w[i], self.b[i]
            p._adam_m = (self.m[0][i], self.m[1][i])
            p._adam_v = (self.v[0][i], self.v[1][i])

    @staticmethod
    def shape_of(probe: LinearProbe) -> tuple | None:
        """Probes with equal shapes can share a stack; None: this one steps alone."""
        if type(probe) is not LinearProbe or probe.scaler.mean is None:
            return None
        return (probe._w.shape, probe._adam_t, probe.record.steps)

    def step(self, x: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """One Adam step of every probe on its rows x [P, n, d] (unstandardised) with
        labels y_idx [P, n]; returns each probe's loss [P] (its current member's)."""
        z = (x - self.mu[:, None, :]) * self.inv[:, None, :]
        logp = _log_softmax(scores(z, self.w, self.b))
        losses, g = _member_losses(logp, y_idx), _logit_grad(logp, y_idx)
        self.t += 1
        grads = weight_grads(z, g, self.w, self.l2w)
        adam_update((self.w, self.b), grads, self.m, self.v, self.t, self.lr)
        out = np.empty(len(self.probes))
        for i, p in enumerate(self.probes):
            p._adam_t = self.t
            p.record.steps += 1
            p.record.examples_seen += y_idx.shape[1]
            out[i] = losses[i, p._current_member()]
        return out

    def val_losses(self, x: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """Each probe's loss per L2 member [P, k] on validation rows x [P, n, d]."""
        out = raw_scores(x, self.w, self.b, self.mu, self.inv)
        return _member_losses(_log_softmax(out), y_idx)


def stackable_groups(probes: Sequence[LinearProbe], extra: Sequence[tuple]) -> list[list[int]]:
    """Indices of `probes` grouped into stacks (probes of one shape with equal
    `extra` keys; a group of one steps alone), in first-appearance order."""
    groups: dict[object, list[int]] = defaultdict(list)
    for i, (probe, key) in enumerate(zip(probes, extra, strict=True)):
        shape = ProbeStack.shape_of(probe)
        groups[(shape, key) if shape is not None else ("alone", i)].append(i)
    return list(groups.values())
