"""Scoring: a runner's metrics table (with the control and baseline columns, blank
where a Stop left them unfinished), and its probes measured on a labelled dataset with
their control probes and baselines, all computed before any number is replaced
(`ProbeRunner` inherits it).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..engine.data import ProbeDataset
from ..engine.evaluation import evaluate_probe
from ..engine.metrics import incomplete_note
from ..engine.plan import check_dataset, check_inputs, check_labels, warn_absent_classes
from .fit_extras import unfinished_extras
from .metrics_table import metrics_table


class Scoring:
    """The metrics table, and held-out metrics on any labelled dataset (mixed into
    `ProbeRunner`)."""

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per probe: held-out metrics (when an eval set was given) and how
        training went (steps, examples seen, best step, why it stopped, code length)."""
        return metrics_table(
            self.configs,
            self.probes,
            self._metrics,
            mdl=self._mdl,
            plan=self._result.plan,
            control=self.control,
            baselines=self.baselines,
            incomplete=self.incomplete,
        )

    def resume_note(self) -> str:
        """After a Stop: which methods are blank and how to finish them ("" if none)."""
        return incomplete_note(self.incomplete)

    @property
    def incomplete(self) -> dict[str, str]:
        """The control probes and baselines the last fit planned but did not finish (a
        Stop or Ctrl-C before or during them): {column prefix: what happened}. Their
        columns in `metrics` are blank, never numbers from half-trained probes;
        `fit_probes(..., resume=True)` with the same arguments finishes them."""
        return unfinished_extras(self._result.plan, self.control, self.baselines)

    def compute_metrics(
        self,
        dataset: ProbeDataset,
        batch_size: int = 32,
        *,
        bootstrap: int | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Evaluate every fitted probe (and its control probe and baselines) on `dataset`;
        also becomes `runner.metrics`. `bootstrap` resamples for the CIs (0: off).
        All of them are computed before any replaces the old numbers, so a failure
        part-way leaves no table mixing two datasets."""
        n_boot = self.bootstrap if bootstrap is None else int(bootstrap)
        seed = self.bootstrap_seed if seed is None else int(seed)
        measured: list[tuple[Any, dict[str, dict[str, Any]]]] = [
            (self, self._measure(dataset, batch_size, n_boot, seed))
        ]
        if self.control is not None:
            relabelled = self.control_task.relabel(dataset)
            measured.append(
                (self.control, self.control._measure(relabelled, batch_size, n_boot, seed))
            )
        for base in self.baselines.values():
            measured.append((base, base._measure(dataset, batch_size, n_boot, seed)))
        for owner, metrics in measured:
            owner._apply_measured(metrics, n_boot, seed)
        self._scored_on, self._compared = dataset, {}
        return self.metrics

    def _apply_measured(self, metrics: dict[str, dict[str, Any]], n_boot: int, seed: int) -> None:
        self._result.metrics = metrics
        self.bootstrap, self.bootstrap_seed = n_boot, seed

    def score(
        self, dataset: ProbeDataset, batch_size: int = 32, *, bootstrap: int = 0, seed: int = 0
    ) -> pd.DataFrame:
        """Held-out metrics of every fitted probe on `dataset`, one row per probe,
        leaving `runner.metrics` as it is (for other datasets: `evaluate`)."""
        rows = self._measure(dataset, batch_size, int(bootstrap), int(seed))
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("probe")

    def _measure(
        self, dataset: ProbeDataset, batch_size: int, n_boot: int, seed: int
    ) -> dict[str, dict[str, Any]]:
        # a family probe a Stop left waiting for its final fit has nothing to score yet
        fitted = [
            c
            for c in self.configs
            if c.name in self.probes and getattr(self.probes[c.name], "fitted", True)
        ]
        check_dataset(dataset, "dataset", fitted, labelled=True)
        check_inputs(self.model, dataset, "dataset")
        for cfg in fitted:
            check_labels(cfg, dataset, "dataset", need_two=False)
            warn_absent_classes(cfg, dataset, "dataset")
        feats = self.features(dataset, [c.feature_key for c in fitted], batch_size)
        return {
            cfg.name: evaluate_probe(
                self.probes[cfg.name], dataset, feats[cfg.feature_key], n_boot, seed
            )
            for cfg in fitted
        }
