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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .data import ProbeDataset
from .errors import ProbeError

if TYPE_CHECKING:
    from .runner import ProbeRunner


class ControlTask:
    """Random but consistent labels per input type, with the task's class distribution.

    `values` are the label values (dataset label ids), `probs` their frequencies
    in the data the task was fitted on. Ignored tokens (`null_label`) stay ignored.
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
        self.values = np.asarray(values, dtype=np.int64)
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
            y = ds.labels
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
            new.labels = self.sequence_labels(ds.tokens)
        return new

    def __repr__(self) -> str:
        kind = "token type" if self.token_level else "example"
        return f"ControlTask(per {kind}, classes={self.values.tolist()}, seed={self.seed})"


def _null_label(runner: ProbeRunner) -> int:
    nulls = {c.null_label for c in runner.configs if c.token_level}
    if len(nulls) > 1:
        raise ProbeError(
            f"token-level probes use different null_labels {sorted(nulls)}; a control task "
            "needs one ignore label"
        )
    return nulls.pop() if nulls else -100


def shadow_runner(runner: ProbeRunner) -> ProbeRunner:
    """A runner on the same model, configs and feature cache, with no probes yet:
    probes fitted on relabelled copies of already-seen data never run the model."""
    from .events import EventBus

    twin = copy.copy(runner)
    twin.events = EventBus()
    twin.probes = {}
    twin._metrics = {}
    twin._stop_requested = False
    twin.state = "not fitted"
    twin.control = None
    twin.control_task = None
    twin.baselines = {}
    return twin


def fit_control_probes(
    runner: ProbeRunner,
    train_set: ProbeDataset,
    eval_set: ProbeDataset | None,
    *,
    num_epoch: int,
    batch_size: int,
    seed: int = 0,
    validation_size: float | None = None,
) -> tuple[ProbeRunner, ControlTask]:
    """Train one control probe beside each probe, on the same features and splits.

    Returns (control runner, control task); the control runner's metrics are the
    control probes' metrics on the relabelled `eval_set`.
    """
    if eval_set is None:
        raise ProbeError("control=True needs an eval_set: selectivity is a held-out accuracy")
    task = ControlTask.fit(train_set, seed=seed, null_label=_null_label(runner))
    train_part, val_part = runner._validation_split(train_set, eval_set, validation_size, seed)
    twin = shadow_runner(runner)
    twin.fit_probes(
        task.relabel(train_part),
        task.relabel(eval_set),
        num_epoch,
        batch_size,
        seed=seed,
        progress=None,
        validation_set=None if val_part is None else task.relabel(val_part),
    )
    return twin, task


def add_control_columns(runner: ProbeRunner, df: pd.DataFrame) -> pd.DataFrame:
    """`control_accuracy` and `selectivity` columns when control probes were fitted."""
    control = getattr(runner, "control", None)
    if control is None or "accuracy" not in df:
        return df
    acc = control.metrics["accuracy"].reindex(df.index)
    df["control_accuracy"] = acc
    df["selectivity"] = df["accuracy"] - acc
    return df


def control_metrics(runner: ProbeRunner, dataset: ProbeDataset, **kwargs: Any) -> None:
    """Re-evaluate the control probes on `dataset` (relabelled), for compute_metrics."""
    if getattr(runner, "control", None) is not None and runner.control_task is not None:
        runner.control.compute_metrics(runner.control_task.relabel(dataset), **kwargs)
