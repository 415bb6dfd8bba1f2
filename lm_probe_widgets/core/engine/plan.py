"""The fit plan: everything a fit needs, checked before anything changes.

`build_plan` validates every argument of `fit_probes` (types, ranges, datasets,
labels against each probe's classes, token ids and lengths against the model) and
fixes the splits, label spaces, batch size, epochs, seeds and bootstrap. The main
probes, the control probes and every baseline are fitted from one plan, so the
columns beside a probe compare like with like.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import ProbeConfig, check_classes, is_int
from ..errors import ProbeError
from ..labels import classes_from_data, encode_labels
from .data import ProbeDataset, check_leakage, split_indices
from .modeling import is_meta_model, model_limits
from .settings import FitSettings


@dataclass(frozen=True)
class FitPlan:
    """Splits, label spaces and settings of one fit (immutable once built)."""

    configs: tuple[ProbeConfig, ...]  # classes resolved
    train: ProbeDataset  # what the probes learn from
    val: ProbeDataset | None  # what early stopping and the final fit's choice watch
    eval_set: ProbeDataset | None  # held-out metrics
    settings: FitSettings  # epochs, batch size, seed, bootstrap, control, baselines

    def __getattr__(self, name: str) -> Any:
        """`plan.num_epoch`, `plan.seed`, ...: the settings' fields, read through."""
        if name in FitSettings.__dataclass_fields__:
            return getattr(self.settings, name)
        raise AttributeError(name)

    @property
    def key(self) -> tuple:
        """What must match for `resume=True` to continue this plan."""
        fps = tuple(None if d is None else d.fingerprint() for d in self.datasets)
        cfgs = tuple(tuple(sorted(c.to_dict().items(), key=str)) for c in self.configs)
        return (fps, self.num_epoch, self.batch_size, self.seed, repr(cfgs))

    @property
    def datasets(self) -> tuple[ProbeDataset | None, ...]:
        return (self.train, self.val, self.eval_set)

    def relabelled(self, relabel: Any) -> FitPlan:
        """The same plan on relabelled copies of its datasets (control tasks)."""
        return dataclasses.replace(
            self,
            train=relabel(self.train),
            val=None if self.val is None else relabel(self.val),
            eval_set=None if self.eval_set is None else relabel(self.eval_set),
            settings=self.settings.alone(),
        )

    def for_configs(self, configs: Sequence[ProbeConfig]) -> FitPlan:
        """The same splits and settings for other probes (baselines)."""
        return dataclasses.replace(self, configs=tuple(configs), settings=self.settings.alone())


def row_labels(cfg: ProbeConfig, ds: ProbeDataset) -> np.ndarray:
    """The label value of every feature row of `ds` for this probe (token rows too)."""
    if cfg.token_level:
        return np.concatenate(ds.token_labels)
    return ds.label_values


def scored_labels(cfg: ProbeConfig, ds: ProbeDataset) -> tuple[np.ndarray, np.ndarray]:
    """(feature rows a probe learns from or is scored on, their class indices, or
    float targets for regression): ignored tokens dropped."""
    y = row_labels(cfg, ds)
    keep = np.arange(len(y))
    if cfg.task == "regression":
        if ds.label_names:
            raise ProbeError(f"probe {cfg.name!r} is a regression probe: give numeric targets")
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ProbeError(f"probe {cfg.name!r}: targets contain NaN or inf")
        return keep, y
    if cfg.token_level:
        keep = np.flatnonzero(y != cfg.null_label)
    return keep, encode_labels(cfg.name, cfg.classes, y[keep])


def row_texts(cfg: ProbeConfig, ds: ProbeDataset) -> np.ndarray:
    """The text index of every row `scored_labels` keeps: a token-level probe's rows
    share their text's index (what a bootstrap must resample together)."""
    keep, _ = scored_labels(cfg, ds)
    if cfg.token_level:
        texts = np.repeat(np.arange(len(ds)), [len(t) for t in ds.token_labels])
        return texts[keep]
    return keep


def row_groups(cfg: ProbeConfig, ds: ProbeDataset) -> np.ndarray | None:
    """The group of every row `scored_labels` keeps, for grouped CV folds: the
    example's group id (`ds.groups`, from tt_split(groups=...)), else for a
    token-level probe its text's index (tokens of a text share their context), else
    None (rows are independent examples)."""
    groups = getattr(ds, "groups", None)
    if groups is None and not cfg.token_level:
        return None
    texts = row_texts(cfg, ds)
    return texts if groups is None else np.asarray(groups)[texts]


def cv_groups(
    cfg: ProbeConfig, train: ProbeDataset, val: ProbeDataset | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """`row_groups` of the training and validation rows, numbered apart where they are
    text indices (the validation texts are other texts)."""
    tg = row_groups(cfg, train)
    vg = None if val is None or tg is None else row_groups(cfg, val)
    if vg is not None and getattr(train, "groups", None) is None:
        vg = vg + len(train)
    return tg, vg


def check_dataset(ds: Any, what: str, configs: Sequence[ProbeConfig], labelled: bool) -> None:
    """A ProbeDataset, labelled when it must be, with the label kind the probes need."""
    if not isinstance(ds, ProbeDataset):
        raise ProbeError(f"{what} must be a ProbeDataset (got {type(ds).__name__})")
    if not labelled:
        return
    if not ds.has_labels:
        raise ProbeError(f"{what} has no labels: fitting and metrics need labels")
    for cfg in configs:
        if cfg.token_level and not ds.is_token_level:
            raise ProbeError(
                f"probe {cfg.name!r} is token-level (pooling='none') but "
                f"{what} has one label per example; give per-token labels"
            )
        if not cfg.token_level and ds.is_token_level:
            raise ProbeError(
                f"probe {cfg.name!r} pools to one vector per example but "
                f"{what} has per-token labels; use pooling='none'"
            )


def check_inputs(model: Any, ds: ProbeDataset, what: str) -> None:
    """Token ids inside the vocabulary and lengths inside the model's positions:
    caught here with the fix, not as an IndexError deep inside the forward pass."""
    vocab, longest = model_limits(model)
    lengths = ds.lengths
    if longest is not None and lengths.max() > longest:
        i = int(np.argmax(lengths))
        raise ProbeError(
            f"{what}: example {i} has {int(lengths[i])} tokens but the model takes at most "
            f"{longest}; rebuild the dataset with ProbeDataset.from_texts(..., "
            f"max_length={longest}) or shorter texts"
        )
    low = min(int(t.min()) for t in ds.tokens)
    high = max(int(t.max()) for t in ds.tokens)
    if low < 0 or (vocab is not None and high >= vocab):
        bad = low if low < 0 else high
        top = vocab - 1 if vocab else "?"
        raise ProbeError(
            f"{what}: token id {bad} is outside the model's vocabulary (0..{top}); "
            "tokenise with this model's own tokenizer"
        )


def resolve_task(cfg: ProbeConfig, train: ProbeDataset) -> ProbeConfig:
    """Classification unless asked for regression, or the labels are continuous."""
    continuous = not train.is_token_level and train.labels.dtype.kind == "f"
    if cfg.task == "regression":
        if train.label_names or train.is_token_level:
            raise ProbeError(f"probe {cfg.name!r} is a regression probe: give numeric targets")
        return cfg
    if cfg.task is None and continuous:
        warnings.warn(
            f"probe {cfg.name!r}: the training labels are continuous numbers, so this is a "
            "regression probe (ProbeConfig(..., task='regression') says so and silences this)",
            stacklevel=4,
        )
        return dataclasses.replace(cfg, task="regression", classes=None)
    if continuous:
        raise ProbeError(
            f"probe {cfg.name!r} is a classification probe but the labels are non-integer "
            "numbers; use task='regression' or integer/string labels"
        )
    return dataclasses.replace(cfg, task="classification")


def resolve_classes(cfg: ProbeConfig, train: ProbeDataset) -> ProbeConfig:
    """The probe's label space: its `classes`, or the training data's values, sorted."""
    cfg = resolve_task(cfg, train)
    if cfg.classes is not None or cfg.task == "regression":
        return cfg
    y = row_labels(cfg, train)
    if cfg.token_level:
        y = y[y != cfg.null_label]
    found = classes_from_data(y)
    return dataclasses.replace(cfg, classes=check_classes(cfg.name, found))


def check_labels(cfg: ProbeConfig, ds: ProbeDataset, what: str, need_two: bool) -> None:
    """Every label inside the probe's classes; training data with two classes or more."""
    _, idx = scored_labels(cfg, ds)
    if len(idx) == 0:
        raise ProbeError(f"probe {cfg.name!r}: {what} has no labelled examples")
    if cfg.task == "regression":
        if need_two and np.ptp(idx) == 0:
            raise ProbeError(f"probe {cfg.name!r}: the {what} has one target value only")
        return
    if need_two and len(np.unique(idx)) < 2:
        raise ProbeError(
            f"probe {cfg.name!r}: the {what} holds a single class "
            f"({cfg.classes[int(idx[0])]!r}); a probe needs examples of at least two classes"
        )


def absent_classes(cfg: ProbeConfig, ds: ProbeDataset) -> list[Any]:
    """Declared classes with no example in `ds`."""
    if cfg.task == "regression":
        return []
    _, idx = scored_labels(cfg, ds)
    present = set(np.unique(idx).tolist())
    return [c for i, c in enumerate(cfg.classes) if i not in present]


def warn_absent_classes(cfg: ProbeConfig, ds: ProbeDataset, what: str) -> None:
    """Say so when a declared class has no example in data that metrics are computed on."""
    missing = absent_classes(cfg, ds)
    if missing:
        warnings.warn(
            f"probe {cfg.name!r}: classes {missing} have no example in the {what}; "
            "macro precision/recall/F1 and ROC AUC are averaged over the classes "
            "present (see the metrics' `classes_scored` column)",
            stacklevel=4,
        )


def build_plan(
    model: Any,
    configs: Sequence[ProbeConfig],
    train_set: Any,
    eval_set: Any,
    settings: FitSettings | None = None,
    *,
    validation_set: Any = None,
    remote: bool = False,
    **fields: Any,
) -> FitPlan:
    """Check every argument of a fit and fix its splits and label spaces. `settings`,
    or its fields as keywords (`num_epoch=...`), checked by FitSettings."""
    settings = FitSettings(**fields) if settings is None else settings
    control, seed, validation_size = settings.control, settings.seed, settings.validation_size
    if (control or settings.baselines) and eval_set is None:
        raise ProbeError("control=True and baselines need an eval_set (held-out metrics)")
    if is_meta_model(model) and not remote:
        raise ProbeError(
            "the model's weights are not loaded (meta tensors): load it with weights "
            "(dispatch=True, or load_model(...)) or fit remotely (ProbeRunner(..., remote=True))"
        )
    named = [("train_set", train_set), ("eval_set", eval_set), ("validation_set", validation_set)]
    for what, ds in named:
        if ds is not None:
            check_dataset(ds, what, configs, labelled=True)
            check_inputs(model, ds, what)
    train, val = split_for_validation(configs, train_set, eval_set, validation_size, seed)
    if validation_set is not None and val is not None:
        train, val = train_set, validation_set
    # classes=None: the values of all the training data given, before the validation
    # split takes some away (20 classes of 2 examples each keep all 20)
    resolved = tuple(resolve_classes(c, train_set) for c in configs)
    for cfg in resolved:
        check_labels(cfg, train, "training data", need_two=True)
        for what, ds in (("validation data", val), ("eval_set", eval_set)):
            if ds is not None:
                check_labels(cfg, ds, what, need_two=False)
        if eval_set is not None:
            warn_absent_classes(cfg, eval_set, "eval_set")
    for what, ds in (("test", eval_set), ("validation", val)):
        leak = None if ds is None or ds is train else check_leakage(train, ds, what)
        if leak:
            warnings.warn(leak, stacklevel=3)
    if control and len({c.task for c in resolved}) > 1:
        raise ProbeError(
            "control=True needs probes of one task (all classification or all regression): "
            "fit the regression probes in a runner of their own"
        )
    return FitPlan(
        configs=resolved,
        train=train,
        val=val,
        eval_set=eval_set,
        settings=settings,
    )


def split_for_validation(
    configs: Sequence[ProbeConfig],
    train_set: ProbeDataset,
    eval_set: ProbeDataset | None,
    validation_size: Any,
    seed: int,
) -> tuple[ProbeDataset, ProbeDataset | None]:
    """(what probes learn from, the split early stopping watches)."""
    modes = {c.validation for c in configs}
    if "eval" in modes and eval_set is None:
        raise ProbeError("validation='eval' needs an eval_set passed to fit_probes")
    if modes <= {"eval", "none"}:
        return train_set, None
    if validation_size is None:
        validation_size = max(c.test_size for c in configs if c.validation == "split")
    count = is_int(validation_size) and 0 < validation_size < len(train_set)
    if isinstance(validation_size, (bool, np.bool_)) or not (
        count or (isinstance(validation_size, (float, np.floating)) and 0 < validation_size < 1)
    ):
        raise ProbeError(
            f"validation_size must be a fraction in (0, 1) (or a count of examples below "
            f"{len(train_set)}), got {validation_size!r}: the part of train_set that early "
            "stopping watches (for none: ProbeConfig(validation='none'))"
        )
    validation_size = int(validation_size) if count else float(validation_size)
    if len(train_set) < 4:
        raise ProbeError(
            f"train_set has {len(train_set)} example(s): early stopping needs a validation "
            "split, so give at least 4 examples (or validation='none')"
        )
    groups = getattr(train_set, "groups", None)  # whole groups on one side, as tt_split
    if groups is not None and len(np.unique(groups)) < 2:
        groups = None
    tr, va = split_indices(len(train_set), validation_size, seed, train_set.labels, groups)
    return train_set.subset(tr), train_set.subset(va)
