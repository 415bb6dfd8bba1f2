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

`fit_probes(..., baselines=(...))` fits them after the probes, from the same fit
plan (splits, classes, epochs, seed, bootstrap); each lands in
`runner.baselines[name]` (an object with `.metrics`, indexed by probe name) and as
a `baseline_<name>` accuracy column in `runner.metrics` (`baseline_<name>_r2`, the
held-out R², for regression probes), so a layer sweep can draw them beside the probe
curve. This module holds the pieces; the runner fits them.

For regression probes `majority` predicts the training targets' mean (R² about 0,
below it on a test set whose mean differs).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..engine.data import ProbeDataset
from ..engine.metrics import METRIC_COLUMNS, baseline_column, held_out_metrics
from ..engine.modeling import model_device, torch_module, wrap_model
from ..engine.plan import FitPlan, row_texts, scored_labels
from ..engine.regression import REGRESSION_COLUMNS, regression_metrics
from ..errors import ProbeError


def is_regression(cfg: Any) -> bool:
    return getattr(cfg, "task", None) == "regression"


class HeldOutBaseline:
    """A baseline that needs no model: probabilities for each probe from something
    else (class frequencies, the text's surface), scored like the probes. Subclasses
    give `proba(cfg, dataset, n_rows)` and may skip a probe (`skip`) or add columns
    (`extra_columns`)."""

    def __init__(self, plan: FitPlan) -> None:
        self.configs = plan.configs
        self.bootstrap, self.seed = plan.bootstrap, plan.seed
        self._metrics: dict[str, dict[str, Any]] = {}

    def proba(self, cfg: Any, dataset: ProbeDataset, n_rows: int) -> np.ndarray:
        raise NotImplementedError

    def targets(self, cfg: Any, dataset: ProbeDataset) -> np.ndarray:
        raise NotImplementedError

    def skip(self, cfg: Any) -> str | None:
        """Why this probe gets no numbers (NaN metrics), or None."""
        return None

    def extra_columns(self, cfg: Any) -> dict[str, Any]:
        return {}

    def compute_metrics(
        self,
        dataset: ProbeDataset,
        *,
        bootstrap: int | None = None,
        seed: int | None = None,
        **_: Any,
    ) -> pd.DataFrame:
        n_boot = self.bootstrap if bootstrap is None else bootstrap
        seed = self.seed if seed is None else seed
        self._apply_measured(self._measure(dataset, 0, n_boot, seed), n_boot, seed)
        return self.metrics

    def _measure(
        self, dataset: ProbeDataset, batch_size: int, n_boot: int, seed: int
    ) -> dict[str, dict[str, Any]]:
        """Metrics per probe, not yet kept (the runner replaces all tables together)."""
        out = {}
        for cfg in self.configs:
            if self.skip(cfg) is not None:
                continue
            if is_regression(cfg):
                _, y = scored_labels(cfg, dataset)
                pred = self.targets(cfg, dataset)
                out[cfg.name] = regression_metrics(pred, y, n_boot=n_boot, seed=seed)
            else:
                _, y_idx = scored_labels(cfg, dataset)
                proba = self.proba(cfg, dataset, len(y_idx))
                n = len(cfg.classes)
                texts = row_texts(cfg, dataset) if cfg.token_level else None
                out[cfg.name] = held_out_metrics(
                    proba, y_idx, n, n_boot=n_boot, seed=seed, clusters=texts
                )
        return out

    def _apply_measured(self, metrics: dict[str, dict[str, Any]], n_boot: int, seed: int) -> None:
        self._metrics = metrics

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per probe: METRIC_COLUMNS, and REGRESSION_COLUMNS when a probe is a
        regression probe (NaN until computed, and where they do not apply), and extra
        columns."""
        columns = list(METRIC_COLUMNS)
        if any(is_regression(c) for c in self.configs):
            columns += REGRESSION_COLUMNS
        rows = []
        for cfg in self.configs:
            row = {"probe": cfg.name, **{c: math.nan for c in columns}}
            row.update(self._metrics.get(cfg.name, {}))
            row.update(self.extra_columns(cfg))
            rows.append(row)
        return pd.DataFrame(rows).set_index("probe")


class MajorityBaseline(HeldOutBaseline):
    """Predicts each probe's most frequent training class for every example/token
    (regression probes: the training targets' mean)."""

    def __init__(self, plan: FitPlan) -> None:
        super().__init__(plan)
        self.freqs: dict[str, np.ndarray] = {}
        self.means: dict[str, float] = {}
        for cfg in self.configs:
            if is_regression(cfg):
                self.means[cfg.name] = float(np.mean(scored_labels(cfg, plan.train)[1]))
                continue
            _, y_idx = scored_labels(cfg, plan.train)
            counts = np.bincount(y_idx, minlength=len(cfg.classes)).astype(np.float64)
            self.freqs[cfg.name] = counts / counts.sum()

    def proba(self, cfg: Any, dataset: ProbeDataset, n_rows: int) -> np.ndarray:
        return np.tile(self.freqs[cfg.name], (n_rows, 1))

    def targets(self, cfg: Any, dataset: ProbeDataset) -> np.ndarray:
        return np.full(len(dataset), self.means[cfg.name])

    def extra_columns(self, cfg: Any) -> dict[str, Any]:
        if is_regression(cfg):
            return {"training_mean": self.means[cfg.name]}
        return {"majority_class": cfg.classes[int(np.argmax(self.freqs[cfg.name]))]}


def input_embedding_path(model: Any) -> str:
    """Module path of the model's input (token) embedding, via get_input_embeddings()."""
    module = torch_module(model)
    getter = getattr(module, "get_input_embeddings", None)
    emb = getter() if callable(getter) else None
    if emb is None:
        raise ProbeError(
            f"{type(module).__name__} has no get_input_embeddings(); the embeddings "
            "baseline needs to know which module embeds the tokens"
        )
    for name, mod in module.named_modules():
        if mod is emb:
            return name
    raise ProbeError("the input embedding module is not a submodule of the model")


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


def add_baseline_columns(
    baselines: dict[str, Any], df: pd.DataFrame, configs: Sequence[Any] = ()
) -> pd.DataFrame:
    """Per baseline, `baseline_<name>` (held-out accuracy) when it has a classification
    probe and `baseline_<name>_r2` (held-out R²) when it has a regression probe; each is
    NaN on the other kind's rows. A baseline given as None (planned, not finished) gets
    its columns for `configs`, all NaN."""
    for name, base in baselines.items():
        if base is None:
            regression = [is_regression(c) for c in configs]
            for metric, wanted in (("accuracy", not all(regression)), ("r2", any(regression))):
                if wanted:
                    df[baseline_column(name, metric)] = math.nan
            continue
        table = base.metrics
        regression = [is_regression(c) for c in base.configs]
        if not all(regression):
            df[baseline_column(name, "accuracy")] = table["accuracy"].reindex(df.index)
        if any(regression):
            r2 = table["r2"] if "r2" in table else pd.Series(math.nan, index=table.index)
            df[baseline_column(name, "r2")] = r2.reindex(df.index)
    return df
