"""Online steps of many probes at once.

Classification probes of one shape (width, L2 members, classes) that have taken the
same number of steps keep their parameters and Adam state in arrays stacked along a
leading probe axis; each probe's own arrays become views of its row. A step of all of
them is then one batched matrix product per stage (core.engine.probe's maths, the
same calls a single probe makes), not a Python loop over probes: with 30 probes on
SmolLM2 the later epochs took 1.3 s instead of 3.7 s (benchmarks/README.md).

Each probe still reads its own rows (its own shuffle) and keeps its own records, so a
stacked step gives every probe what its own step would.

A stack runs where its features are: torch tensors on `device` (an accelerator), or
numpy arrays on the host (on the CPU numpy is faster than torch at probe sizes). The
maths is the same functions either way (core.engine.probe); only where arrays live
differs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from .probe import (
    LinearProbe,
    _host,
    _label_bits,
    _log_softmax,
    _logit_grad,
    _losses_of,
    _member_losses,
    _ops,
    adam_update,
    scores,
    weight_grads,
)


class ProbeStack:
    """Probes stepped together; their parameters are views of the stack's arrays,
    until `drop` gives a probe that stops its own copies."""

    # Arrays with one row per probe (besides the Adam step, shared).
    _ROWS = ("w", "b", "m_w", "m_b", "v_w", "v_b", "l2w", "mu", "inv", "val_x", "val_y")
    _ROWS += ("held_x", "held_y")

    def __init__(
        self,
        probes: Sequence[LinearProbe],
        val: tuple[np.ndarray, np.ndarray] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        """`val`: each probe's validation rows [P, n, d] and labels [P, n], if any.
        `device`: where to step in torch (any device); None: numpy on the host."""
        self.device = torch.device(device) if device is not None else None
        self.probes = list(probes)
        self.t = self.probes[0]._adam_t
        self.w = self._stack([p._w for p in probes])
        self.b = self._stack([p._b for p in probes])
        self.m_w, self.m_b = (self._stack([p._adam_m[i] for p in probes]) for i in range(2))
        self.v_w, self.v_b = (self._stack([p._adam_v[i] for p in probes]) for i in range(2))
        self.l2w = self._stack([p._l2w for p in probes])
        self.mu = self.inv = self.here(np.empty(0, dtype=np.float32))  # refresh_scalers
        val_x, val_y = val if val is not None else (np.empty(0, np.float32), np.empty(0, int))
        self.val_x, self.val_y = self.here(val_x), self.here(val_y)
        self.held_x = self.held_y = self.val_x[:0]  # hold(): training rows kept here
        for i in range(len(self.probes)):
            self._point(i)

    def here(self, a: np.ndarray) -> np.ndarray | torch.Tensor:
        """Array `a` where the stack steps (no copy when it is there already)."""
        if self.device is None:
            return np.asarray(a)
        return torch.as_tensor(a, device=self.device)

    def _stack(self, arrays: list) -> np.ndarray | torch.Tensor:
        return self.here(np.stack([_host(a) for a in arrays]))

    @property
    def has_scalers(self) -> bool:
        return _size(self.mu) > 0

    @property
    def has_validation(self) -> bool:
        return _size(self.val_x) > 0

    @property
    def holds_rows(self) -> bool:
        return _size(self.held_x) > 0

    def hold(self, x: np.ndarray, y_idx: np.ndarray) -> None:
        """Keep each probe's training rows x [P, N, d] and labels [P, N] where the stack
        steps, for `step_rows` (a torch stack: the features cross to the device once,
        not once per step)."""
        self.held_x, self.held_y = self.here(x), self.here(y_idx)

    def step_rows(self, rows: np.ndarray, lr: np.ndarray) -> tuple[np.ndarray, None]:
        """`step` on rows [P, b] of the held rows (each probe its own)."""
        idx = self.here(rows)
        probe = self.here(np.arange(len(rows)))[:, None]
        return self.step(self.held_x[probe, idx], self.held_y[probe, idx], lr)

    @property
    def width(self) -> int:
        return int(self.w.shape[1])

    def _point(self, i: int) -> None:
        """Make probe i's parameters and Adam state views of row i."""
        p = self.probes[i]
        p._w, p._b = self.w[i], self.b[i]
        p._adam_m, p._adam_v = (self.m_w[i], self.m_b[i]), (self.v_w[i], self.v_b[i])

    @staticmethod
    def shape_of(probe: LinearProbe) -> tuple | None:
        """Probes with equal shapes can share a stack; None: this one steps alone."""
        if type(probe) is not LinearProbe:
            return None
        return (probe._w.shape, probe._adam_t, probe.record.steps)

    def drop(self, i: int) -> None:
        """Take member i out: it keeps copies of its parameters, and the last member
        moves into row i (one row copied, not the stack)."""
        p = self.probes[i]
        p._w, p._b = _copy(p._w), _copy(p._b)
        p._adam_m = tuple(_copy(a) for a in p._adam_m)
        p._adam_v = tuple(_copy(a) for a in p._adam_v)
        last = len(self.probes) - 1
        rows = [name for name in self._ROWS if _size(getattr(self, name))]
        if i != last:
            for name in rows:
                a = getattr(self, name)
                a[i] = a[last]
            self.probes[i] = self.probes[last]
            self._point(i)
        self.probes.pop()
        for name in rows:
            setattr(self, name, getattr(self, name)[:last])

    def release(self) -> None:
        """Give every member host copies of its parameters (a torch stack ends so: the
        rest of the library reads probes' parameters as numpy arrays); a numpy
        stack's views are left as they are."""
        if self.device is not None:
            while self.probes:
                self.drop(len(self.probes) - 1)

    def refresh_scalers(self) -> None:
        """Read the probes' feature scalers (each step of the first pass moves them)."""
        scalers = [p._scaler_arrays() for p in self.probes]
        self.mu = self.here(np.stack([mu for mu, _ in scalers]))
        self.inv = self.here(np.stack([inv for _, inv in scalers]))

    def step(
        self, x: np.ndarray, y_idx: np.ndarray, lr: np.ndarray, code_length: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One Adam step of every probe (learning rates `lr` [P]) on its rows x [P, n, d]
        (unstandardised) with labels y_idx [P, n]. Returns each probe's loss [P] (of
        its current member) and, with `code_length`, the bits [P] its current member
        needed for these labels before the step (LinearProbe.code_length); both numpy."""
        x, y_idx = self.here(x), self.here(y_idx)
        logp = _log_softmax(scores(x, self.w, self.b, self.mu, self.inv))
        members = [p._current_member() for p in self.probes]
        rows = np.arange(len(members))
        picked = _ops(logp).picked(logp, y_idx)  # [P, n, k]
        bits = _host(_label_bits(picked, members)) if code_length else None
        losses, g = _losses_of(picked), _logit_grad(logp, y_idx)
        self.t += 1
        grads = weight_grads(x, g, self.w, self.l2w, self.mu, self.inv)
        state = (self.m_w, self.m_b), (self.v_w, self.v_b)
        adam_update((self.w, self.b), grads, *state, self.t, lr)
        for p in self.probes:
            p._adam_t = self.t
            p.record.steps += 1
            p.record.examples_seen += y_idx.shape[1]
        return _host(losses)[rows, members], bits

    def val_losses(self) -> np.ndarray:
        """Each probe's loss per L2 member [P, k] on its validation rows (numpy)."""
        out = scores(self.val_x, self.w, self.b, self.mu, self.inv)
        return _host(_member_losses(_log_softmax(out), self.val_y))


def _size(a: np.ndarray | torch.Tensor) -> int:
    return a.numel() if isinstance(a, torch.Tensor) else a.size


def _copy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    """A host (numpy) copy of a parameter array."""
    return _host(a).copy()


def stackable_groups(probes: Sequence[LinearProbe], extra: Sequence[tuple]) -> list[list[int]]:
    """Indices of `probes` grouped into stacks (probes of one shape with equal
    `extra` keys; a group of one steps alone), in first-appearance order."""
    groups: dict[object, list[int]] = defaultdict(list)
    for i, (probe, key) in enumerate(zip(probes, extra, strict=True)):
        shape = ProbeStack.shape_of(probe)
        groups[(shape, key) if shape is not None else ("alone", i)].append(i)
    return list(groups.values())
