"""Baselines that tell the representation apart from the data.

- `majority`: always predict the most frequent training class (its probabilities
  are the training class frequencies, so the log-loss is a real one).
- `embeddings`: the same probes (same pooling, classes, training) on the model's
  input embedding module: what the tokens alone give away.
- `random_init`: the same probes on a randomly initialised copy of the model
  (same architecture and config, seeded init, no weights downloaded): what the
  architecture gives away without any training (Belinkov 2021). Inside
  fit_probes it is initialised with torch seed `seed + 1`, so it never equals a
  model that was itself built from the fit seed (as the tiny test models are).

`fit_probes(..., baselines=(...))` fits them after the probes; each lands in
`runner.baselines[name]` (an object with `.metrics`, indexed by probe name) and as
a `baseline_<name>` accuracy column in `runner.metrics`, so a layer sweep can draw
them beside the probe curve.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from .data import ProbeDataset
from .errors import ProbeError
from .metrics import METRIC_COLUMNS, classification_metrics
from .modeling import model_device, torch_module, wrap_model
from .uncertainty import bootstrap_ci

if TYPE_CHECKING:
    from .runner import ProbeRunner

BASELINES = ("majority", "embeddings", "random_init")


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


class MajorityBaseline:
    """Predicts each probe's most frequent training class for every example/token."""

    def __init__(self, runner: ProbeRunner, train_set: ProbeDataset) -> None:
        self._runner = runner
        self.freqs: dict[str, np.ndarray] = {}
        for cfg in runner.configs:
            y_idx = self._encoded(cfg, train_set)
            counts = np.bincount(y_idx, minlength=len(cfg.classes)).astype(np.float64)
            self.freqs[cfg.name] = counts / counts.sum()
        self._metrics: dict[str, dict[str, Any]] = {}

    def _encoded(self, cfg: Any, ds: ProbeDataset) -> np.ndarray:
        from .probe import LinearProbe

        y = self._runner._labels(cfg, ds)
        if cfg.token_level:
            y = y[y != cfg.null_label]
        return LinearProbe(cfg, 1).encode(y)

    def compute_metrics(self, dataset: ProbeDataset, **_: Any) -> pd.DataFrame:
        n_boot, seed = self._runner.bootstrap, self._runner.bootstrap_seed
        for cfg in self._runner.configs:
            y_idx = self._encoded(cfg, dataset)
            proba = np.tile(self.freqs[cfg.name], (len(y_idx), 1))
            out = classification_metrics(proba, y_idx, len(cfg.classes))
            pred = np.full(len(y_idx), int(np.argmax(self.freqs[cfg.name])))
            out.update(bootstrap_ci(y_idx, pred, len(cfg.classes), n_boot=n_boot, seed=seed))
            self._metrics[cfg.name] = out
        return self.metrics

    @property
    def metrics(self) -> pd.DataFrame:
        rows = []
        for cfg in self._runner.configs:
            row = {"probe": cfg.name, **{c: math.nan for c in METRIC_COLUMNS}}
            row.update(self._metrics.get(cfg.name, {}))
            row["majority_class"] = cfg.classes[int(np.argmax(self.freqs[cfg.name]))]
            rows.append(row)
        return pd.DataFrame(rows).set_index("probe")


def input_embedding_path(model: Any) -> str:
    """Module path of the model's input (token) embedding, via get_input_embeddings()."""
    module = torch_module(model)
    getter = getattr(module, "get_input_embeddings", None)
    emb = getter() if callable(getter) else None
    if emb is None:
        raise ProbeError(
            f"{type(module).__name__} has no get_input_embeddings(); pass the embedding "
            "module yourself: embeddings_runner(runner, submodule='...output')"
        )
    for name, mod in module.named_modules():
        if mod is emb:
            return name
    raise ProbeError("the input embedding module is not a submodule of the model")


def embeddings_runner(runner: ProbeRunner, submodule: str | None = None) -> ProbeRunner:
    """A runner with every probe moved to the input embeddings (same name, pooling,
    classes and training settings)."""
    from .runner import ProbeRunner

    sub = submodule or input_embedding_path(runner.model) + ".output"
    configs = [dataclasses.replace(c, submodule=sub) for c in runner.configs]
    return ProbeRunner(
        runner.model, configs, memory_budget=runner.cache.budget_bytes, threads=runner.threads
    )


def random_init_model(model: Any, seed: int = 0) -> Any:
    """A randomly initialised copy of `model`: same class and config, seeded init,
    on the same device and dtype, wrapped for nnsight with the same tokenizer.

    Costs as much memory as the model itself.
    """
    module = torch_module(model)
    params = next(module.parameters(), None)
    dtype = params.dtype if params is not None else torch.float32
    config = getattr(module, "config", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if config is not None:
            fresh = module.__class__(copy.deepcopy(config))
        else:  # a plain torch module: copy it and re-run every layer's own init
            fresh = copy.deepcopy(module)
            for m in fresh.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
    fresh = fresh.to(device=model_device(model), dtype=dtype).eval()
    return wrap_model(fresh, getattr(model, "tokenizer", None))


def random_init_runner(runner: ProbeRunner, seed: int = 0) -> ProbeRunner:
    """The same probes on a randomly initialised copy of the runner's model."""
    from .runner import ProbeRunner

    return ProbeRunner(
        random_init_model(runner.model, seed),
        [copy.copy(c) for c in runner.configs],
        memory_budget=runner.cache.budget_bytes,
        threads=runner.threads,
    )


def fit_baselines(
    runner: ProbeRunner,
    names: Sequence[str],
    train_set: ProbeDataset,
    eval_set: ProbeDataset | None,
    *,
    num_epoch: int,
    batch_size: int,
    seed: int = 0,
    validation_size: float | None = None,
) -> dict[str, Any]:
    """Fit the named baselines with the runner's settings; {name: object with .metrics}."""
    names = check_baselines(names)
    if names and eval_set is None:
        raise ProbeError("baselines need an eval_set to report held-out metrics beside the probes")
    out: dict[str, Any] = {}
    for name in names:
        if name == "majority":
            base = MajorityBaseline(runner, train_set)
            base.compute_metrics(eval_set)
        else:
            if name == "embeddings":
                base = embeddings_runner(runner)
            else:  # seed + 1: never the init of a model built with the fit seed (tiny models)
                base = random_init_runner(runner, seed + 1)
            base.bootstrap, base.bootstrap_seed = runner.bootstrap, runner.bootstrap_seed
            base.fit_probes(
                train_set,
                eval_set,
                num_epoch,
                batch_size,
                seed=seed,
                validation_size=validation_size,
                progress=None,
            )
        out[name] = base
    return out


def add_baseline_columns(runner: ProbeRunner, df: pd.DataFrame) -> pd.DataFrame:
    """One `baseline_<name>` column (held-out accuracy) per fitted baseline."""
    for name, base in getattr(runner, "baselines", {}).items():
        df[f"baseline_{name}"] = base.metrics["accuracy"].reindex(df.index)
    return df


def baseline_metrics(runner: ProbeRunner, dataset: ProbeDataset, **kwargs: Any) -> None:
    """Re-evaluate every fitted baseline on `dataset`, for compute_metrics."""
    for base in getattr(runner, "baselines", {}).values():
        base.compute_metrics(dataset, **kwargs)
