"""Control tasks and selectivity (Hewitt & Liang 2019).

A control task gives every *word type* a random but consistent label, so a probe can
only do well on it by memorising types. The design works because types recur between
training and test data:

- token-level probes: each token id gets a seeded random class (drawn from the task's
  class distribution); ignored tokens stay ignored.
- pooled (sequence) probes: each token id gets a seeded random score per class, an
  example's control label is the class with the highest *mean* score over its tokens
  (the way mean pooling sees a text), with per-class offsets fitted on the training
  data so the control classes keep the task's class frequencies. A random label per
  whole text would be unlearnable on held-out texts (they are all new sequences), and
  selectivity would collapse to accuracy minus chance.

Reading it: `control_accuracy` is how well a probe of this capacity, on this layer, can
fit labels that depend only on which tokens a text contains; `selectivity = accuracy -
control_accuracy` is what the control cannot explain. High control accuracy at the
embeddings and low at deep layers is the usual picture. Selectivity is a paired
difference on the same test texts: `runner.compare(name, "control")` gives its
interval, and the validity card its verdict.

What the pooled control is, and where it misleads (a design choice, documented in
docs/methodology.md):

- It is a random bag-of-words function (a logistic regression on word counts recovers
  it almost exactly): it measures what a probe gets from lexical identity, the
  pooled analogue of Hewitt & Liang's per-type labels, not their quantity itself.
- Every pooling gets the same mean-based labels: for `last` or `first` pooling the
  control asks for the words of the whole text from one position's vector.
- It has no label noise, while real labels usually have some: label noise lowers the
  task's accuracy but not the control's, so a noisy task shows *negative* selectivity
  from noise alone. Negative selectivity reads "no evidence beyond the words", never
  "the layer knows less than the words"; the card says so.

Randomness comes from a keyed hash of (seed, type): no table to store, and the same
seed gives the same control labels on any dataset.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.data import ProbeDataset
from ..errors import ProbeError


class ControlTask:
    """Random but consistent labels per token type, with the task's class distribution.

    `values` are the label values (ints or names, as the probes' classes), `probs`
    their frequencies in the data the task was fitted on.
    """

    def __init__(
        self,
        values: np.ndarray,
        probs: np.ndarray,
        *,
        token_level: bool,
        seed: int = 0,
        null_label: int = -100,
        offsets: np.ndarray | None = None,
    ) -> None:
        self.values = np.asarray(values)
        self.probs = np.asarray(probs, dtype=np.float64) / np.sum(probs)
        self.cdf = np.cumsum(self.probs)
        self.token_level = token_level
        self.seed = int(seed)
        self.null_label = int(null_label)
        self.offsets = np.zeros(len(self.values)) if offsets is None else np.asarray(offsets)

    @classmethod
    def fit(
        cls,
        ds: ProbeDataset,
        *,
        seed: int = 0,
        null_label: int = -100,
        regression: bool | None = None,
    ) -> ControlTask:
        """The control task for `ds`'s label distribution (use the training data);
        `regression` (default: continuous labels) shuffles targets instead."""
        if not ds.has_labels:
            raise ProbeError("a control task needs labelled data to copy its class distribution")
        if ds.is_token_level:
            y = np.concatenate(ds.token_labels)
            y = y[y != null_label]
        else:
            y = ds.label_values
        if len(y) == 0:
            raise ProbeError("a control task needs at least one labelled example")
        if regression is None:
            regression = not ds.is_token_level and ds.labels.dtype.kind == "f"
        if regression:
            return RegressionControlTask(np.sort(np.asarray(y, dtype=np.float64)), ds.tokens, seed)
        values, counts = np.unique(y, return_counts=True)
        task = cls(values, counts, token_level=ds.is_token_level, seed=seed, null_label=null_label)
        if not task.token_level:
            task.offsets = task._fit_offsets(task._mean_scores(ds.tokens))
        return task

    def _uniform(self, keys: list[bytes]) -> np.ndarray:
        """A uniform number in [0, 1) per key, from a keyed hash."""
        salt = self.seed.to_bytes(8, "little", signed=True)
        return np.fromiter(
            (
                int.from_bytes(hashlib.blake2b(k, digest_size=8, key=salt).digest(), "little")
                / 2.0**64
                for k in keys
            ),
            dtype=np.float64,
            count=len(keys),
        )

    def _draw(self, keys: list[bytes]) -> np.ndarray:
        """One label per key through the class distribution's CDF."""
        pick = np.searchsorted(self.cdf, self._uniform(keys), side="right")
        return self.values[np.minimum(pick, len(self.cdf) - 1)]

    def _mean_scores(self, tokens: list[np.ndarray], k: int | None = None) -> np.ndarray:
        """[examples, k]: the mean over each example's tokens of its types' random
        scores (k: one per class by default)."""
        flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in tokens])
        types, inverse = np.unique(flat, return_inverse=True)
        k = len(self.values) if k is None else k
        keys = [
            int(t).to_bytes(8, "little", signed=True) + bytes([c]) for t in types for c in range(k)
        ]
        scores = self._uniform(keys).reshape(len(types), k)[inverse]
        starts = np.concatenate([[0], np.cumsum([len(t) for t in tokens])[:-1]])
        sums = np.add.reduceat(scores, starts, axis=0)
        return sums / np.array([len(t) for t in tokens], dtype=np.float64)[:, None]

    def _fit_offsets(self, scores: np.ndarray) -> np.ndarray:
        """Per-class offsets so that argmax(scores + offsets) has the task's class
        frequencies on the training data (iterative proportional fitting)."""
        offsets = np.zeros(scores.shape[1])
        target = np.log(self.probs)
        spread = float(scores.std()) or 1.0
        for _ in range(200):
            counts = np.bincount((scores + offsets).argmax(1), minlength=len(offsets))
            share = np.log(np.maximum(counts, 0.5) / len(scores))
            offsets += 0.1 * spread * (target - share)
        return offsets

    def sequence_labels(self, tokens: list[np.ndarray]) -> np.ndarray:
        """Control label of each example from its tokens' types (see the module doc)."""
        return self.values[(self._mean_scores(tokens) + self.offsets).argmax(1)]

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
            if self.values.dtype.kind in "iub":  # numbers, or booleans (as 0/1)
                new.labels, new.label_names = values.astype(np.int64), None
            else:  # names: ids into this task's own name list
                names = [str(v) for v in self.values]
                index = {n: i for i, n in enumerate(names)}
                new.labels = np.array([index[str(v)] for v in values], dtype=np.int64)
                new.label_names = names
        return new

    def __repr__(self) -> str:
        kind = "token" if self.token_level else "example, from its token types"
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


class RegressionControlTask(ControlTask):
    """The control task of a regression probe: targets shuffled consistently per
    token type. Each type gets a seeded random score; an example's control target is
    the training target at the rank its mean score has among the training examples'
    (so the control targets have the training targets' distribution)."""

    def __init__(self, sorted_targets: np.ndarray, train_tokens: list[np.ndarray], seed: int):
        super().__init__(np.array([0.0]), np.array([1.0]), token_level=False, seed=seed)
        self.targets = np.asarray(sorted_targets, dtype=np.float64)
        self.train_scores = np.sort(self._mean_scores(train_tokens, 1)[:, 0])

    def sequence_labels(self, tokens: list[np.ndarray]) -> np.ndarray:
        scores = self._mean_scores(tokens, 1)[:, 0]
        rank = np.searchsorted(self.train_scores, scores) / max(len(self.train_scores), 1)
        pick = np.clip((rank * len(self.targets)).astype(int), 0, len(self.targets) - 1)
        return self.targets[pick]

    def relabel(self, ds: ProbeDataset) -> ProbeDataset:
        new = copy.copy(ds)
        new.labels, new.label_names = self.sequence_labels(ds.tokens), None
        return new

    def __repr__(self) -> str:
        return f"RegressionControlTask(targets shuffled per token type, seed={self.seed})"
