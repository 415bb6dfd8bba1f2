"""Control tasks and selectivity (Hewitt & Liang 2019).

A control task gives every input *type* a random label that is nevertheless
consistent: the same token sequence (sequence probes) or the same token id
(token-level probes) always gets the same control label, in training, validation
and test data alike. Labels are drawn from the task's class distribution, so a
probe that does well on the control task can only have memorised types, not read
the property. `selectivity = accuracy - control_accuracy` is how much of a
probe's accuracy the control cannot explain.

Labels come from a keyed hash of (seed, type): no table to store, and the same
seed gives the same control labels on any dataset.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import ProbeDataset
from .errors import ProbeError


class ControlTask:
    """Random but consistent labels per input type, with the task's class distribution.

    `values` are the label values (ints or names, as the probes' classes), `probs`
    their frequencies in the data the task was fitted on. Ignored tokens
    (`null_label`) stay ignored.
    """

    def __init__(
        self,
        values: np.ndarray,
        probs: np.ndarray,
        *,
        token_level: bool,
        seed: int = 0,
        null_label: int = -100,
    ) -> None:
        self.values = np.asarray(values)
        self.cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
        self.cdf /= self.cdf[-1]
        self.token_level = token_level
        self.seed = int(seed)
        self.null_label = int(null_label)

    @classmethod
    def fit(cls, ds: ProbeDataset, *, seed: int = 0, null_label: int = -100) -> ControlTask:
        """The control task for `ds`'s label distribution (use the training data)."""
        if not ds.has_labels:
            raise ProbeError("a control task needs labelled data to copy its class distribution")
        if ds.is_token_level:
            y = np.concatenate(ds.token_labels)
            y = y[y != null_label]
        else:
            y = ds.label_values
        if len(y) == 0:
            raise ProbeError("a control task needs at least one labelled example")
        values, counts = np.unique(y, return_counts=True)
        return cls(values, counts, token_level=ds.is_token_level, seed=seed, null_label=null_label)

    def _draw(self, keys: list[bytes]) -> np.ndarray:
        """One label per key: a uniform number from a keyed hash, through the CDF."""
        salt = self.seed.to_bytes(8, "little", signed=True)
        u = np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(k, digest_size=8, key=salt).digest(), "little")
                / 2.0**64
                for k in keys
            ),
            dtype=np.float64,
            count=len(keys),
        )
        pick = np.searchsorted(self.cdf, u, side="right")
        return self.values[np.minimum(pick, len(self.cdf) - 1)]

    def sequence_labels(self, tokens: list[np.ndarray]) -> np.ndarray:
        """Control label of each example, keyed by its whole token sequence."""
        return self._draw([np.asarray(t, dtype=np.int64).tobytes() for t in tokens])

    def token_labels(self, token_ids: np.ndarray) -> np.ndarray:
        """Control label of each token, keyed by its token id."""
        token_ids = np.asarray(token_ids, dtype=np.int64)
        types, inverse = np.unique(token_ids, return_inverse=True)
        return self._draw([int(t).to_bytes(8, "little", signed=True) for t in types])[inverse]

    def relabel(self, ds: ProbeDataset) -> ProbeDataset:
        """`ds` with control labels: same tokens (so cached features are reused)."""
        if ds.is_token_level != self.token_level:
            kind = "per-token" if self.token_level else "per-example"
            raise ProbeError(f"this control task was fitted on {kind} labels; the data differ")
        new = copy.copy(ds)
        if self.token_level:
            flat = self.token_labels(np.concatenate(ds.tokens))
            original = np.concatenate(ds.token_labels)
            flat = np.where(original == self.null_label, self.null_label, flat)
            new.token_labels = np.split(flat, np.cumsum(ds.lengths)[:-1])
        else:
            values = self.sequence_labels(ds.tokens)
            if self.values.dtype.kind in "iu":
                new.labels, new.label_names = values.astype(np.int64), None
            else:  # names: ids into this task's own name list
                names = [str(v) for v in self.values]
                index = {n: i for i, n in enumerate(names)}
                new.labels = np.array([index[str(v)] for v in values], dtype=np.int64)
                new.label_names = names
        return new

    def __repr__(self) -> str:
        kind = "token type" if self.token_level else "example"
        return f"ControlTask(per {kind}, classes={self.values.tolist()}, seed={self.seed})"


def control_null_label(configs: Sequence[Any]) -> int:
    """The one ignore label of the token-level probes (a control task needs one)."""
    nulls = {c.null_label for c in configs if c.token_level}
    if len(nulls) > 1:
        raise ProbeError(
            f"token-level probes use different null_labels {sorted(nulls)}; a control task "
            "needs one ignore label"
        )
    return nulls.pop() if nulls else -100
