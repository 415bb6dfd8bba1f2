"""FitSettings: what a fit computes, beyond its data, spelled and checked once.

`ProbeRunner.fit_probes` takes these as keyword arguments (its public signature);
the plan (`core.engine.plan`), the fit loop and the methods read them from here.
How a fit is shown or guarded (`progress`, `resume`, `memory_check`) is not a
setting: it never changes the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import is_int
from ..errors import ProbeError

# Baselines that need the model (embeddings, random_init) and those that do not
# (majority; the confounds of core.methods.confounds: length, bag_of_words, tfidf).
BASELINES = ("majority", "embeddings", "random_init", "length", "bag_of_words", "tfidf")


@dataclass(frozen=True)
class FitSettings:
    """Epochs, batch size, seed, validation split, bootstrap resamples and the methods
    fitted beside the probes. Checked on construction, in this order, so a bad value
    is a clear error before any data is read."""

    num_epoch: int = 10
    batch_size: int = 32
    seed: int = 0
    validation_size: float | int | None = None  # checked against train_set's size (plan)
    bootstrap: int = 1000
    control: bool = False
    baselines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        num_epoch = check_int(self.num_epoch, "num_epoch", 1)
        batch_size = check_int(self.batch_size, "batch_size", 1)
        seed = check_int(self.seed, "seed", 0)
        if seed >= 2**32:  # numpy's and scikit-learn's limit: their own error is obscure
            raise ProbeError(f"seed must be between 0 and 2**32 - 1, got {seed}")
        checked = {
            "num_epoch": num_epoch,
            "batch_size": batch_size,
            "seed": seed,
            "bootstrap": check_int(self.bootstrap, "bootstrap", 0),
            "baselines": check_baselines(self.baselines),
            "control": bool(self.control),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def alone(self) -> FitSettings:
        """The same settings without the methods fitted beside the probes: what the
        control probes and the baselines themselves are fitted with."""
        return dataclasses.replace(self, control=False, baselines=())


def check_int(value: Any, name: str, low: int) -> int:
    if not is_int(value) or value < low:
        raise ProbeError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_baselines(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validate baseline names early (before any training)."""
    if not names:
        return ()
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ProbeError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    return tuple(dict.fromkeys(names))


def check_seeds(seeds: Any) -> int | list[int]:
    """`stability`'s seeds: a count >= 2, or a list of 2+ distinct seeds numpy and
    scikit-learn take; anything else is a clear error before any refit."""
    if isinstance(seeds, (bool, np.bool_)):
        raise ProbeError(f"seeds must be a count (2 or more) or a list of seeds, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 2:
            raise ProbeError(f"seeds must be at least 2 to have a spread, got {seeds}")
        return int(seeds)
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ProbeError(
            f"seeds must be a count (2 or more) or a list of integer seeds, got {seeds!r}"
        )
    seeds = list(seeds)
    bad = [
        s for s in seeds if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer))
    ]
    if bad:
        raise ProbeError(f"seeds must be integers, got {bad[0]!r}")
    out = [int(s) for s in seeds]
    wide = [s for s in out if not 0 <= s < 2**32]
    if wide:
        raise ProbeError(f"seeds must be between 0 and 2**32 - 1, got {wide[0]}")
    if len(set(out)) < 2:
        raise ProbeError(
            f"seeds must hold at least 2 distinct seeds to have a spread, got {seeds!r}"
        )
    if len(set(out)) < len(out):
        raise ProbeError(f"seeds lists a seed twice ({seeds!r}): each refit needs its own")
    return out
