"""The rows a family probe learns from and is scored on: a probe's features on the
runner's training part and test set, from its cache or store (the model runs only for
data neither holds)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ProbeConfig, is_int
from ..engine.data import ProbeDataset
from ..engine.plan import row_texts, scored_labels
from ..errors import ProbeError


def probe_config(runner: Any, name: str) -> ProbeConfig:
    """The config of probe `name`, with its classes fixed by a fit."""
    by_name = {c.name: c for c in runner.configs}
    if name not in by_name:
        raise ProbeError(f"no probe {name!r}; probes: {list(by_name)}")
    cfg = by_name[name]
    if cfg.task == "regression":
        raise ProbeError(f"probe {name!r} is a regression probe: probe families classify")
    if cfg.classes is None:
        raise ProbeError(f"probe {name!r} has no classes yet: fit it first, or give classes=")
    return cfg


def train_test(
    runner: Any, train: ProbeDataset | None, test: ProbeDataset | None
) -> tuple[ProbeDataset, ProbeDataset]:
    """`train` and `test`, defaulting to the last fit's training part and test set."""
    train = runner.train_part if train is None else train
    test = runner._scored_on if test is None else test
    if train is None or test is None:
        raise ProbeError("give train= and test=, or fit with an eval_set first")
    for ds, what in ((train, "train"), (test, "test")):
        if not isinstance(ds, ProbeDataset) or not ds.has_labels:
            raise ProbeError(f"{what} must be a labelled ProbeDataset")
    return train, test


def rows(
    runner: Any, cfg: ProbeConfig, ds: ProbeDataset
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, class indices, text index of each row) of `ds` at `cfg`'s site."""
    if getattr(cfg, "kind", "linear") == "attention":
        raise ProbeError(
            f"probe {cfg.name!r} is an attention probe: it reads token rows; use "
            "runner.attention_probe, or a probe of the same site with a pooling"
        )
    x = np.asarray(runner.features(ds, [cfg.feature_key])[cfg.feature_key], dtype=np.float64)
    keep, y = scored_labels(cfg, ds)
    if len(keep) != len(x):
        x = x[keep]
    return x, np.asarray(y, dtype=np.int64), row_texts(cfg, ds)


def check_level_seed(level: Any, seed: Any) -> None:
    """The interval level and the seed, checked before any work."""
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ProbeError(f"level must be in (0, 1), got {level!r}")
    if not is_int(seed) or seed < 0:
        raise ProbeError(f"seed must be an integer >= 0, got {seed!r}")
