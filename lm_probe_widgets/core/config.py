"""ProbeConfig: what one probe reads, how it pools, and how it is trained."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import ProbeError
from .labels import ordered_classes

POOLINGS = ("mean", "last", "first", "max", "none")
VALIDATIONS = ("split", "eval", "none")
TASKS = ("classification", "regression")
KINDS = ("linear", "mlp", "sparse", "attention")
# Each family's options and their defaults; an option of another family is an error.
FAMILY_OPTIONS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": 64, "weight_decay": 1e-2},
    "sparse": {"k": 16, "rank_by": "mean_diff"},
    "attention": {"heads": 1, "weight_decay": 1e-3},
}
_MODEL_KWARGS = {"lr", "l2", "alpha", "batch_size"}


@dataclass
class ProbeConfig:
    """One probe. The original lm_probe's fields keep working.

    - `submodule`: dotted module path plus ".output" (default) or ".input",
      e.g. "model.layers.15.output".
    - `classes`: the label values this probe predicts (any ints, or names when the
      dataset has string labels), in the order of `predict_proba`'s columns. A set is
      sorted (its own order changes with the hash seed); None (the default) takes the
      training data's values, sorted, and keeps them for every later dataset.
    - `name`: unique key in the runner; defaults to `submodule`, so give names when
      several probes read one submodule.
    - `pooling`: "mean" (over real tokens), "last" (last real token), "first",
      "max", or "none" for token-level probes. `pool=False` means "none".
    - `test_size`: fraction of the training set held out as the validation split
      that early stopping watches (`validation="split"`). `validation="eval"` watches
      the evaluation set instead (optimistic: say so when reporting), "none" trains
      every epoch without early stopping.
    - early stopping: evaluated every `eval_every` steps after `warmup_steps`;
      stops after `patience` evaluations without a validation-loss improvement larger
      than `threshold`, then restores the best weights. `max_steps` caps the steps.
    - `l2`: regularisation strengths trained side by side; the one with the lowest
      validation loss wins. `first_pass_lr`: Adam learning rate while the data streams
      through the model the first time; `lr`: for the later epochs over cached features.
    - `refine`: once training ends (not when stopped), fit every `l2` strength to
      convergence on the cached training features (full-batch L-BFGS from the online
      weights) and keep the strength with the lowest validation loss. Online steps
      alone stayed up to 6 points below a converged logistic regression on SmolLM2
      (benchmarks/README.md); `refine=False` keeps the best online step instead.
    - `cv_folds`: the final fit chooses the L2 strength by stratified k-fold
      cross-validation over the training and validation rows, then refits it on all of
      them (as scikit-learn's `LogisticRegressionCV`); 0 chooses on the validation
      split alone. `val_loss` is then the cross-validated log-loss of that strength.
      A choice on the edge of `l2` makes the final fit try a decade past it (x10 or
      /10), again while that wins, at most 3 decades and not below 1e-4
      (`record.l2_searched` keeps what was compared; docs/methodology.md); a single
      strength is kept as given.
    - `task`: "classification" (logistic regression over `classes`) or "regression"
      (ridge regression on continuous targets: metrics R², Pearson/Spearman r, MSE,
      MAE); None (the default) is regression when the training labels are
      non-integer numbers, with a warning saying so.
    - `model_kwargs`: accepted for compatibility: keys `lr`, `l2`, `alpha` (= l2).
    - `kind`: the probe family. "linear" (the default: the logistic or ridge read-out
      above); "mlp" (one hidden layer of width `hidden`, AdamW `weight_decay`);
      "sparse" (logistic on the `k` dimensions ranked best by `rank_by`, "mean_diff"
      or "l1", its strength chosen from `l2` as a linear probe's: by `cv_folds`-fold
      cross-validation, ranking redone in each fold, or on the validation split with
      `cv_folds=0`); "attention"
      (learned pooling over the text's token rows, `heads` queries, AdamW
      `weight_decay`: it reads token-level features and predicts one label per
      example, so leave `pooling` unset). Families take no online steps: they are
      fitted once, from the cached training features, in the final fit, the torch
      ones (mlp, attention) for up to `max_steps` AdamW steps with early stopping on
      the validation split (`patience`, `eval_every`, `warmup_steps`, `threshold`).
      They classify (no `task="regression"`) and ignore `lr` (the torch ones
      `cv_folds` too).
    """

    submodule: str
    classes: Sequence[Any] | None = None
    name: str | None = None
    pooling: str | None = None
    test_size: float = 0.1
    max_steps: int = 1000
    early_stopping: bool = True
    # Evaluations (= steps at eval_every=1). The validation loss on a small split is
    # noisy step to step: with patience=10 probes stopped inside the first epoch, 3-16
    # points below a converged logistic regression (benchmarks/README.md). The bank
    # reaches l2=1 because the strongest strength (0.1) was the one chosen every time.
    patience: int = 300
    threshold: float = 1e-4
    warmup_steps: int = 10
    eval_every: int = 1
    pool: bool = True
    null_label: int = -100
    seed: int = 0
    validation: str = "split"
    l2: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0)
    # The first pass over the data learns fast (it is also the online code length);
    # later epochs over the cached features move slowly. Online steps alone stayed up
    # to 6 points short of a converged logistic regression; the final fit (`refine`)
    # closes that gap (benchmarks/README.md, run 4).
    first_pass_lr: float = 3e-3
    lr: float = 1e-3
    refine: bool = True
    cv_folds: int = 5
    task: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "linear"
    hidden: int | None = None
    weight_decay: float | None = None
    k: int | None = None
    rank_by: str | None = None
    heads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.submodule, str) or not self.submodule.strip():
            raise ProbeError("submodule must be a dotted string like 'model.layers.3.output'")
        self.submodule = self.submodule.strip()
        if self.name is None:
            self.name = self.submodule
        self._check_kind()
        if self.pooling is None:
            self.pooling = "mean" if self.pool else "none"
        if self.pooling not in POOLINGS:
            raise ProbeError(f"pooling {self.pooling!r} is not one of {POOLINGS}")
        self.pool = self.pooling != "none"
        if self.validation not in VALIDATIONS:
            raise ProbeError(f"validation {self.validation!r} is not one of {VALIDATIONS}")
        if self.task is not None and self.task not in TASKS:
            raise ProbeError(f"task {self.task!r} is not one of {TASKS}")
        if self.task == "regression" and self.token_level:
            raise ProbeError("regression probes pool to one vector per example; pick a pooling")
        if self.classes is not None and self.task != "regression":
            self.classes = check_classes(self.name, self.classes)
        unknown = set(self.model_kwargs) - _MODEL_KWARGS
        if unknown:
            raise ProbeError(
                f"model_kwargs keys {sorted(unknown)} are not supported; "
                f"use {sorted(_MODEL_KWARGS)}"
            )
        if "lr" in self.model_kwargs:
            self.lr = float(self.model_kwargs["lr"])
        l2 = self.model_kwargs.get("l2", self.model_kwargs.get("alpha", self.l2))
        self.l2 = tuple(float(v) for v in np.atleast_1d(l2))
        for key in ("max_steps", "patience", "warmup_steps", "eval_every", "seed", "cv_folds"):
            value = getattr(self, key)
            low = 0 if key in ("warmup_steps", "seed", "cv_folds") else 1
            if not is_int(value) or value < low:
                raise ProbeError(f"{key} must be an integer >= {low}, got {value!r}")
        if min(self.lr, self.first_pass_lr) <= 0 or any(v < 0 for v in self.l2) or not self.l2:
            raise ProbeError("learning rates must be > 0 and l2 a non-empty list of values >= 0")

    def _check_kind(self) -> None:
        """The family and its options, filled with the family's defaults."""
        if self.kind not in KINDS:
            raise ProbeError(f"kind {self.kind!r} is not one of {KINDS}")
        options = FAMILY_OPTIONS.get(self.kind, {})
        for key in ("hidden", "weight_decay", "k", "rank_by", "heads"):
            if key not in options and getattr(self, key) is not None:
                owners = [k for k, o in FAMILY_OPTIONS.items() if key in o]
                raise ProbeError(
                    f"probe {self.name!r}: {key}= is an option of kind={' or '.join(owners)} "
                    f"probes, not of kind={self.kind!r}"
                )
        for key, default in options.items():
            if getattr(self, key) is None:
                setattr(self, key, default)
        if self.kind == "linear":
            return
        if self.task == "regression":
            raise ProbeError(
                f"probe {self.name!r}: kind={self.kind!r} probes classify; for continuous "
                "targets use kind='linear' (ridge regression)"
            )
        if not self.refine:
            raise ProbeError(
                f"probe {self.name!r}: kind={self.kind!r} probes are fitted in the final fit, "
                "so refine=False has nothing to keep; drop it (it applies to linear probes)"
            )
        for key in ("hidden", "k", "heads"):
            low = 0 if key == "hidden" else 1
            value = getattr(self, key)
            if value is not None and (not is_int(value) or value < low):
                raise ProbeError(f"{key} must be an integer >= {low}, got {value!r}")
        wd = self.weight_decay
        if wd is not None and (not isinstance(wd, (int, float)) or isinstance(wd, bool) or wd < 0):
            raise ProbeError(f"weight_decay must be a number >= 0, got {wd!r}")
        if self.rank_by is not None and self.rank_by not in ("mean_diff", "l1"):
            raise ProbeError(f"rank_by {self.rank_by!r} is not one of ('mean_diff', 'l1')")
        if self.kind == "attention":
            if self.pooling not in (None, "none"):
                raise ProbeError(
                    f"probe {self.name!r}: an attention probe pools with learned weights over "
                    f"the token rows; leave pooling unset (got pooling={self.pooling!r})"
                )
            self.pooling = "none"

    @property
    def read(self) -> tuple[str, str]:
        """(module path, "output" | "input"): the activation this probe reads."""
        return split_submodule(self.submodule)

    @property
    def feature_key(self) -> tuple[str, str, str]:
        """(path, kind, pooling): probes with equal keys share one cached feature."""
        path, kind = self.read
        return (path, kind, self.pooling)  # type: ignore[return-value]

    @property
    def token_level(self) -> bool:
        """One label per token (pooling "none"); an attention probe reads token rows
        but labels examples."""
        return self.pooling == "none" and self.kind != "attention"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = None if self.classes is None else list(self.classes)
        d["l2"] = list(self.l2)
        if self.kind == "linear":  # files saved before the families load unchanged
            for key in ("kind", "hidden", "weight_decay", "k", "rank_by", "heads"):
                d.pop(key)
        return d


def is_int(value: Any) -> bool:
    """A real integer (numpy ints too), not a bool or a float that happens to be whole."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_classes(name: str | None, classes: Any) -> tuple[Any, ...]:
    """Validated, ordered class values (see `core.labels.ordered_classes`)."""
    if isinstance(classes, (str, bytes)):
        raise ProbeError(f"probe {name!r}: classes must be a list of labels, not one string")
    values = ordered_classes(classes)
    if len(values) < 2:
        raise ProbeError(f"probe {name!r} has {len(values)} class(es): a probe needs at least two")
    if len(set(values)) != len(values):
        raise ProbeError(f"probe {name!r}: classes {list(values)} contain duplicates")
    return values


def split_submodule(submodule: str) -> tuple[str, str]:
    """ "a.b.output" -> ("a.b", "output"); a bare path reads the output."""
    for kind in ("output", "input"):
        if submodule == kind:
            return "", kind
        if submodule.endswith("." + kind):
            return submodule[: -len(kind) - 1], kind
    return submodule, "output"
