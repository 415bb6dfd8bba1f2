"""ProbeMethods: the runner's methods that ask whether a probe result holds up
(generalisation, transfer, seed spread, paired comparisons, code length, validity)
and what to do with a trained probe (erasure), and the probe families beyond one
linear read-out (k-sparse, MLP with matched controls, attention). Each is a thin
front for its module in `core.methods`; `ProbeRunner` inherits them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..engine.data import ProbeDataset
from ..engine.metrics import incomplete_note
from ..engine.settings import check_seeds
from ..errors import ProbeError
from .compare import Comparison, compare_outcomes, side_outcomes
from .erasure import ConceptEraser, fit_eraser
from .mdl import mdl_table
from .validity import evaluate_many, seed_spread, transfer_matrix, validity_table


class ProbeMethods:
    """Methods of a fitted runner (mixed into `ProbeRunner`)."""

    _scored_on: ProbeDataset | None
    _compared: dict[tuple, Any]
    _mdl: pd.DataFrame | None

    def evaluate(self, datasets: dict[str, ProbeDataset], batch_size: int = 32) -> pd.DataFrame:
        """Every fitted probe on several named datasets: a tidy table, one row per
        (probe, dataset, metric); `display.diagnostic_plots.plot_generalisation` draws it."""
        return evaluate_many(self, datasets, batch_size)

    def transfer(
        self, datasets: dict[str, tuple[ProbeDataset, ProbeDataset]], **fit_kwargs: Any
    ) -> pd.DataFrame:
        """Train on each named (train, test) pair's train part, test on every test part."""
        return transfer_matrix(self, datasets, **fit_kwargs)

    def stability(self, seeds: int | list[int] = 3, **fit_kwargs: Any) -> pd.DataFrame:
        """Refit the probes on seeded subsamples of the training data (80%, whole
        groups; `subsample=` to change) with other seeds, from cached features (the
        model does not run), and keep the spread of each metric in `runner.spread`.
        `seeds`: how many (2 or more, from the fit's seed on), or the seeds themselves
        (2 or more distinct integers in 0 .. 2**32 - 1)."""
        seeds = check_seeds(seeds)
        if "seed" in fit_kwargs:
            raise ProbeError(
                "stability sets each refit's seed from `seeds`: pass seeds=[...] instead "
                f"of seed={fit_kwargs['seed']!r}"
            )
        self.spread = seed_spread(self, seeds, **fit_kwargs)
        return self.spread

    def compare(
        self,
        a: str,
        b: str,
        dataset: ProbeDataset | None = None,
        *,
        level: float = 0.95,
        n_resamples: int = 2000,
        seed: int = 0,
        batch_size: int = 32,
    ) -> Comparison:
        """Probe `a` against probe `b`, or against `a`'s control probe ("control") or a
        fitted baseline ("random_init", "bag_of_words", ...), on the same test texts:
        the difference in accuracy (R² for regression probes), its paired bootstrap
        interval at `level` over texts, a paired permutation p-value and a verdict
        (beats / ties / loses). `dataset` defaults to the one `metrics` were computed
        on. Read from cached features (`core.methods.compare`); `.as_dict()` or
        `comparison_frame([...])` for a table."""
        ds = self._scored_on if dataset is None else dataset
        if ds is None:
            raise ProbeError("compare needs a test set: fit with an eval_set, or pass dataset=")
        if a not in self.probes:
            raise ProbeError(f"no fitted probe {a!r}; fitted: {list(self.probes)}")
        unfinished = self.incomplete.get("control" if b == "control" else f"baseline_{b}")
        if unfinished and b not in self.probes:
            raise ProbeError(
                f"{b!r} did not finish ({unfinished}): no comparison is made with half-trained "
                "or missing probes; run the same fit_probes call with resume=True"
            )
        if b in self.probes:
            if b == a:
                raise ProbeError("compare a probe with another probe or a baseline, not itself")
            side: str | None = None
        elif b == "control" or b in self.baselines:
            side = b
        else:
            raise ProbeError(
                f"{b!r} is neither a fitted probe nor 'control' nor a fitted baseline; "
                f"probes: {list(self.probes)}, baselines: {sorted(self.baselines)}"
            )
        key = (a, b, id(ds), level, n_resamples, seed)
        if key not in self._compared:
            mine = side_outcomes(self, a, None, ds, batch_size)
            theirs = side_outcomes(self, b if side is None else a, side, ds, batch_size)
            made = compare_outcomes(
                mine, theirs, a, b, level=level, n_resamples=n_resamples, seed=seed
            )
            self._compared[key] = (ds, made)  # ds kept alive: its id stays its own
        return self._compared[key][1]

    def mdl(self, dataset: ProbeDataset | None = None, *, seed: int = 0) -> pd.DataFrame:
        """Minimum description length of each classification probe's labels, the
        block-wise online code of Voita & Titov (2020) on the last fit's training data
        (or `dataset`), from cached features: columns `mdl_bits`, `uniform_bits`,
        `compression`, also in `metrics` from now on (`core.methods.mdl`)."""
        self._mdl = mdl_table(self, dataset, seed)
        return self._mdl

    def erase(
        self,
        name: str,
        method: str = "leace",
        *,
        rank: int | None = None,
        dataset: ProbeDataset | None = None,
        seed: int = 0,
    ) -> ConceptEraser:
        """An eraser of probe `name`'s concept at its read site, fitted from cached
        features (no forward pass): "leace" (EleutherAI's concept-erasure), "inlp" or a
        "random" subspace of `rank`; `.report()`, `.intervene(model)`, `.effects(...)`
        (`core.methods.erasure`)."""
        return fit_eraser(self, name, method, rank=rank, dataset=dataset, seed=seed)

    # -- probe families beyond one linear read-out (core.methods.*_probe) ---------------
    def sparse_probe(
        self, name: str, ks: Sequence[int] | None = None, **options: Any
    ) -> pd.DataFrame:
        """k-sparse probes at probe `name`'s site (Gurnee et al. 2023): accuracy on
        the top-k ranked dimensions against k random ones, paired, one row per k, and
        the dimensions chosen. Options: rank_by ("mean_diff" | "l1"), train, test,
        n_random, c, level, seed (`core.methods.sparse_probe.sparse_probe`)."""
        from .sparse_probe import sparse_probe

        return sparse_probe(self, name, ks, **options)

    def mlp_probe(
        self, name: str, widths: Sequence[int] = (0, 16, 64), **options: Any
    ) -> pd.DataFrame:
        """A capacity sweep of one-hidden-layer probes at probe `name`'s site, each
        with its control task at the same capacity: selectivity and its paired
        interval per (width, weight_decay). Options: weight_decays, train, test, lr,
        steps, level, seed, device (`core.methods.mlp_probe.mlp_probe`)."""
        from .mlp_probe import mlp_probe

        return mlp_probe(self, name, widths, **options)

    def attention_probe(self, name: str, **options: Any) -> tuple[Any, pd.DataFrame]:
        """(an `AttentionProbe` fitted on token-level features at probe `name`'s site,
        its paired comparison with mean and last pooling). Options: train, test, heads,
        weight_decay, lr, steps, batch_size, level, seed, device
        (`core.methods.attention_probe.attention_probe`)."""
        from .attention_probe import attention_probe

        return attention_probe(self, name, **options)

    def validity(self) -> pd.DataFrame:
        """Per probe: selectivity, code length, gaps over random-init and the strongest
        confound baseline, CI width, seed spread, each with a one-line reading; the
        comparisons paired and Holm-corrected (`core.methods.validity`). A method a Stop
        left unfinished is read as such, with a warning, never from half-trained probes."""
        incomplete = self.incomplete
        if incomplete:
            warnings.warn(incomplete_note(incomplete), stacklevel=2)
        return validity_table(self)
