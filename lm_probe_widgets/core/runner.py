"""ProbeRunner: many probes, one forward pass per batch, honest early stopping.

The runner is the facade: configs, results, features, reprs. A fit is planned and
checked first (`core.engine.plan`), run as stages over that plan (`core.engine.fit`), and its
results replace the runner's only when it ends or is stopped: a fit that fails leaves
the runner exactly as it was. Control probes and baselines are fitted from the same
plan as the probes beside them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import ProbeConfig
from .engine import events as ev
from .engine.data import ProbeDataset
from .engine.disk_store import DiskStore, open_store
from .engine.evaluation import evaluate_probe
from .engine.extract import Extractor, FeatureKey
from .engine.feature_access import FeatureAccess
from .engine.feature_cache import (
    DEFAULT_BUDGET_BYTES,
    FeatureCache,
)
from .engine.fingerprint import model_fingerprint
from .engine.fit import FitLoop, FitResult, plan_started_event
from .engine.memory import guard_memory
from .engine.metrics import incomplete_note
from .engine.modeling import probe_device as probe_device_of
from .engine.modeling import wrap_model
from .engine.plan import (
    FitPlan,
    build_plan,
    check_dataset,
    check_inputs,
    check_labels,
    warn_absent_classes,
)
from .engine.probe import LinearProbe
from .engine.progress import make_progress
from .engine.settings import FitSettings, check_seeds
from .engine.states import FitOutcome, RunnerState
from .engine.stop import StopFlag, deferred_interrupt
from .engine.submodules import validate_submodules
from .errors import ProbeError
from .methods.baselines import (
    input_embedding_path,
)
from .methods.compare import Comparison, compare_outcomes, side_outcomes
from .methods.erasure import ConceptEraser, fit_eraser
from .methods.fit_extras import Relay, fit_extras, unfinished_extras
from .methods.mdl import mdl_table
from .methods.metrics_table import metrics_table
from .methods.validity import evaluate_many, seed_spread, transfer_matrix, validity_table


class ProbeRunner(FeatureAccess):
    """Train several probes at once on one model.

    `model` is an nnsight model or a plain Hugging Face / torch model (wrapped for
    you). Submodules are checked before any data reaches the model.

    `store`: the persistent feature store (core.engine.disk_store) that every feature read
    goes through, so a new runner, pooling, L2 grid or kernel never runs the model
    for rows computed before. True: in the library's cache folder (moved by
    $LM_PROBE_WIDGETS_CACHE); a folder or a `DiskStore`; False: in-memory features
    only; None: $LM_PROBE_WIDGETS_STORE=1/0 decides (default: off for now).

    `probe_device`: where the probe maths runs ("cuda:1", "cpu"; default the model's
    device), checked here.
    """

    def __init__(
        self,
        model: Any,
        configs: ProbeConfig | Sequence[ProbeConfig],
        *,
        tokenizer: Any = None,
        memory_budget: int = DEFAULT_BUDGET_BYTES,
        threads: int | None = None,
        remote: bool | str = False,
        store: bool | str | os.PathLike | DiskStore | None = None,
        probe_device: str | torch.device | None = None,
    ) -> None:
        self.model = wrap_model(model, tokenizer or getattr(model, "tokenizer", None))
        # where the probe maths runs (default: the model's device); checked now
        self.probe_device = probe_device_of(self.model, probe_device)
        # remote=True: every batch's trace runs on NDIF, pooled there (core.engine.remote);
        # "local" simulates that path here. The API key is checked now, offline.
        self.remote = None
        if remote:
            from .engine.remote import RemoteSession

            self.remote = RemoteSession(self.model, remote)
        self.configs: list[ProbeConfig] = (
            [configs] if isinstance(configs, ProbeConfig) else list(configs)
        )
        if not self.configs:
            raise ProbeError("give at least one ProbeConfig")
        names = [c.name for c in self.configs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ProbeError(
                f"probe names must be unique; {dupes} appear more than once. Give configs that "
                "share a submodule distinct `name=`s"
            )
        self.events = ev.EventBus()
        self.cache = FeatureCache(memory_budget)
        self.store: DiskStore | None = open_store(store)
        # With the store on, every trace also keeps the input embeddings (the first
        # thing the model computes, pooled for a few floats per example), so the
        # embeddings baseline of a later fit never runs the model.
        self._companions = _embedding_site(self.model) if self.store and not remote else None
        subs = [c.submodule for c in self.configs] + (
            [self._companions] if self._companions else []
        )
        self._dry = validate_submodules(self.model, list(dict.fromkeys(subs)))
        self.threads = threads
        self._extractors: dict[tuple[FeatureKey, ...], Extractor] = {}
        self._fit_lock = threading.Lock()
        self.stop = StopFlag(self.events)  # what the running fit checks between batches
        self._model_fp: str | None = None
        self.bootstrap, self.bootstrap_seed = 1000, 0
        self.spread: pd.DataFrame | None = None  # seed stability (runner.stability)
        self._commit(FitResult())

    # -- results (replaced together, by _commit) ----------------------------------------
    def _commit(self, result: FitResult) -> None:
        """Make `result` the runner's: probes, metrics, state, methods, plan."""
        self._result, self._live = result, None
        for probe in result.probes.values():
            probe._runner_ref = weakref.ref(self)
        plan = result.plan
        self.state = result.state
        self.control, self.control_task = result.control or (None, None)
        self.baselines: dict[str, Any] = result.baselines
        self.validation_set: ProbeDataset | None = plan.val if plan else None
        self.train_part: ProbeDataset | None = plan.train if plan else None
        # the test set `metrics` (and so `compare`) were computed on; paired comparisons
        # already made on it
        self._scored_on: ProbeDataset | None = plan.eval_set if plan else None
        self._compared: dict[tuple, Any] = {}
        self._mdl: pd.DataFrame | None = None  # runner.mdl(), for these probes
        if plan is not None:
            self.bootstrap, self.bootstrap_seed = plan.bootstrap, plan.seed
            # the plan fixed each probe's classes (classes=None: from the training data)
            by_name = {c.name: c for c in plan.configs}
            self.configs = [by_name.get(c.name, c) for c in self.configs]

    @property
    def probes(self) -> dict[str, LinearProbe]:
        """Trained probes by name (while a fit runs: the probes it is training)."""
        return (self._live or self._result).probes

    @property
    def _metrics(self) -> dict[str, dict[str, Any]]:
        return (self._live or self._result).metrics

    @property
    def last_result(self) -> FitResult:
        """What the last fit (or `load`) left: probes, held-out metrics, plan, state."""
        return self._result

    @property
    def site_shapes(self) -> dict[str, tuple[int, ...] | None]:
        """Each read site's output shape from the dry run (no data): widths up front."""
        return self._dry.shapes

    # -- public API -------------------------------------------------------------------
    def __getitem__(self, name: str) -> LinearProbe:
        if name not in self.probes:
            known = [c.name for c in self.configs]
            hint = "it has not been fitted yet" if name in known else f"known probes: {known}"
            raise KeyError(f"no trained probe {name!r}: {hint}")
        return self.probes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.probes)

    def __len__(self) -> int:
        return len(self.configs)

    def request_stop(self) -> None:
        """Ask a running fit to stop cleanly after the current batch (thread-safe)."""
        self.stop.request()

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

    def fit_probes(
        self,
        train_set: ProbeDataset,
        eval_set: ProbeDataset | None = None,
        num_epoch: int = 10,
        batch_size: int = 32,
        *,
        seed: int = 0,
        validation_size: float | None = None,
        progress: Any = "auto",
        resume: bool = False,
        control: bool = False,
        baselines: Sequence[str] = (),
        bootstrap: int = 1000,
        validation_set: ProbeDataset | None = None,
        memory_check: bool = True,
    ) -> ProbeRunner:
        """Fit every probe; returns the runner so `runner.fit_probes(...).metrics` reads well.

        Every argument is checked before anything runs. A Stop (`request_stop`, the
        widget's button) ends fitting at the next batch and still evaluates; a first
        Ctrl-C does the same without evaluating, then raises KeyboardInterrupt.
        `resume=True` continues a stopped or interrupted fit (same data and settings)
        to the result it would have reached uninterrupted. A fit that fails leaves the
        runner as it was. One fit at a time per runner.

        Methodology (need `eval_set`): `control=True` trains a control probe beside each
        probe (columns `control_accuracy`, `selectivity`); `baselines=("majority",
        "embeddings", "random_init")` adds `baseline_<name>` accuracy columns (details in
        `runner.baselines[name].metrics`); `bootstrap` resamples for the accuracy/F1
        CIs (0: off). All are fitted from the probes' own splits and settings.
        `validation_set` replaces the split taken from `train_set`. `memory_check`
        estimates the memory the fit needs first and refuses (or spills the cache to
        disk) rather than running out mid-run (see `core.engine.memory`).
        """
        with self._exclusive():
            settings = FitSettings(
                num_epoch=num_epoch,
                batch_size=batch_size,
                seed=seed,
                validation_size=validation_size,
                bootstrap=bootstrap,
                control=control,
                baselines=baselines,
            )
            plan = build_plan(
                self.model,
                self.configs,
                train_set,
                eval_set,
                settings,
                validation_set=validation_set,
                remote=bool(self.remote),
            )
            previous = self._result
            if resume and previous.plan is not None and previous.plan.key != plan.key:
                raise ProbeError(
                    "resume=True continues the last fit, which had other data or settings "
                    "(datasets, num_epoch, batch_size, seed, configs); pass the same ones, or "
                    "drop resume=True to start afresh"
                )
            self._model_fp = model_fingerprint(self.model, verify=True)
            if memory_check:
                guard_memory(self, train_set, eval_set, plan.batch_size)
            if self.remote:
                self.remote.ensure_ready(plan.baselines)  # no key / NDIF unreachable: fail fast
            display = make_progress(progress, self)
            unsubscribe = self.events.subscribe(display) if display is not None else None
            self.stop.clear()
            self.stop.poll = getattr(display, "poll", None)
            old_threads = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            self.state = RunnerState.FITTING
            started = time.monotonic()
            self.events.publish(ev.FIT_STARTED, **plan_started_event(plan))
            outcome = FitOutcome.ERROR
            try:
                self._weights_pinned = True  # verified above; a fit does not change them
                with deferred_interrupt(self.stop):
                    outcome = self._fit_plan(plan, resume, top=self, bus=self.events)
            except BaseException as e:
                self.state = previous.state
                interrupted = isinstance(e, KeyboardInterrupt)
                outcome = FitOutcome.INTERRUPTED if interrupted else FitOutcome.ERROR
                message = (
                    "fitting interrupted mid-batch: the runner is as it was before this call"
                    if interrupted
                    else f"{type(e).__name__}: {e} (the runner is as it was before this call)"
                )
                self.events.publish(ev.INTERRUPTED if interrupted else ev.ERROR, message=message)
                raise
            finally:
                self._weights_pinned = False
                seconds = time.monotonic() - started
                self.events.publish(ev.FIT_FINISHED, reason=outcome, seconds=seconds)
                torch.set_num_threads(old_threads)
                self.stop.poll = None
                if unsubscribe is not None:
                    unsubscribe()
                close = getattr(display, "close", None)
                if close is not None:
                    close()
        if outcome == FitOutcome.INTERRUPTED:
            raise KeyboardInterrupt("fitting interrupted: call fit_probes(..., resume=True)")
        return self

    def _fit_plan(self, plan: FitPlan, resume: bool, top: ProbeRunner, bus: Any) -> str:
        """Run (what is left of) `plan` and commit; on failure put everything back."""
        previous = self._result
        can_resume = resume and previous.plan is not None
        result = previous.resumed(plan) if can_resume else FitResult(plan=plan)
        self._live = result  # what reprs show while the fit runs
        try:
            loop = FitLoop(
                plan,
                result,
                reader=self,
                cache=self.cache,
                bus=bus,
                stop=top.stop,
                device=self.probe_device,
            )
            outcome = loop.run()
            if outcome == FitOutcome.COMPLETED:

                def fit_sub(sub: ProbeRunner, sub_plan: FitPlan, phase: str, fp: bool) -> str:
                    if fp:
                        sub._model_fp = model_fingerprint(sub.model)
                    result.subs_before.append((sub, sub._result))
                    return sub._fit_plan(sub_plan, can_resume, top, Relay(bus, phase))

                extras = dict(model=self.model, sibling=self._sibling, fit_sub=fit_sub)
                outcome = fit_extras(plan, result, can_resume, **extras)
        except BaseException:
            self._live = None
            result.rollback()
            for sub, before in reversed(result.subs_before):
                sub._undo(before)  # control or baseline runners this fit had advanced
            raise
        done = outcome == FitOutcome.COMPLETED
        result.state = RunnerState.FITTED if done else RunnerState(outcome.value)
        self._commit(result)
        return outcome

    def _undo(self, before: FitResult) -> None:
        """Put back the results this control or baseline runner had before a fit that
        its parent's fit then failed after (a fit that fails changes nothing)."""
        if self._result is not before:
            self._result.rollback()
            self._commit(before)

    def _sibling(self, model: Any, configs: Sequence[ProbeConfig], share_cache: bool = False):
        """A runner for control probes or a baseline: same settings, its own results."""
        twin = ProbeRunner(model, list(configs), threads=self.threads, store=self.store or False)
        twin.cache = self.cache if share_cache else FeatureCache(self.cache.budget_bytes)
        twin._model_fp = self._model_fp if model is self.model else None
        twin.remote = self.remote if model is self.model else None
        twin.probe_device = self.probe_device
        return twin

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._fit_lock.acquire(blocking=False):
            raise ProbeError(
                "another fit_probes is running on this runner; wait for it to finish, or "
                "call runner.request_stop() first"
            )
        try:
            yield
        finally:
            self._fit_lock.release()

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
        fitted = [c for c in self.configs if c.name in self.probes]
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

    # -- does the result hold up? (core.methods.validity) ---------------------------------------
    @property
    def last_plan(self) -> FitPlan | None:
        """The splits and settings of the fit whose results the runner holds."""
        return self._result.plan

    def evaluate(self, datasets: dict[str, ProbeDataset], batch_size: int = 32) -> pd.DataFrame:
        """Every fitted probe on several named datasets: a tidy table, one row per
        (probe, dataset, metric); `display.plots.plot_generalisation` draws it."""
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

    def validity(self) -> pd.DataFrame:
        """Per probe: selectivity, code length, gaps over random-init and the strongest
        confound baseline, CI width, seed spread, each with a one-line reading; the
        comparisons paired and Holm-corrected (`core.methods.validity`). A method a Stop
        left unfinished is read as such, with a warning, never from half-trained probes."""
        incomplete = self.incomplete
        if incomplete:
            warnings.warn(incomplete_note(incomplete), stacklevel=2)
        return validity_table(self)

    def sibling(self, configs: Sequence[ProbeConfig] | None = None) -> ProbeRunner:
        """A new runner on the same model, feature cache and store (no probes yet)."""
        configs = self.configs if configs is None else configs
        return self._sibling(self.model, [dataclasses.replace(c) for c in configs], True)

    def get_probe_features(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        subset: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> dict[str, np.ndarray]:
        """Pooled features each probe sees, in input order: {name: (n, width)}.
        Token-level probes get one row per real token."""
        ds = (
            input_ids
            if isinstance(input_ids, ProbeDataset)
            else ProbeDataset(input_ids, attention_mask)
        )
        check_inputs(self.model, ds, "input_ids")
        names = list(subset) if subset is not None else [c.name for c in self.configs]
        by_name = {c.name: c for c in self.configs}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise KeyError(f"unknown probes {unknown}; known: {list(by_name)}")
        feats = self.features(ds, [by_name[n].feature_key for n in names], batch_size)
        return {n: np.array(feats[by_name[n].feature_key]) for n in names}

    def save(self, path: str) -> None:
        """Write probes as plain arrays + JSON (safetensors): loading runs no code."""
        from .io.persistence import save_runner

        save_runner(self, path)

    @classmethod
    def load(cls, path: str, model: Any, **kwargs: Any) -> ProbeRunner:
        """Load probes saved with `save`, checking they fit `model`'s dimensions."""
        from .io.persistence import load_runner

        runner, result = load_runner(cls, path, model, **kwargs)
        runner._commit(result)
        return runner

    def __repr__(self) -> str:
        store = str(self.store.root) if self.store is not None else "off"
        return (
            f"ProbeRunner({type(self.model._module).__name__}, {len(self.configs)} probes, "
            f"state={str(self.state)!r}, store={store!r})"
        )

    # -- display (lazy: core never imports HTML or plotting code at import time) ----------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ..display.html import runner_mimebundle

        return runner_mimebundle(self, include, exclude)

    def _repr_html_(self) -> str:
        from ..display.html import runner_html

        return runner_html(self)

    def plot_layer_sweep(self, metric: str = "accuracy", **kwargs: Any) -> Any:
        """`metric` against layer depth per kind of submodule; returns the Axes."""
        from ..display.plots import plot_layer_sweep

        return plot_layer_sweep(self, metric, **kwargs)

    def plot_training_curves(self, **kwargs: Any) -> Any:
        """Validation loss per probe against steps, best and stop points marked."""
        from ..display.plots import plot_training_curves

        return plot_training_curves(self, **kwargs)

    def plot_predictions(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """A regression probe's predictions against the true targets; returns the Axes."""
        from ..display.plots import plot_predictions

        return plot_predictions(self, name, dataset, **kwargs)

    def plot_calibration(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """Reliability diagram of a binary probe on `dataset`; returns the Axes."""
        from ..display.plots import plot_calibration

        return plot_calibration(self, name, dataset, **kwargs)

    def plot_confusion_matrix(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """Confusion matrix of probe `name` on a labelled `dataset`; returns the Axes."""
        from ..display.plots import plot_confusion_matrix

        return plot_confusion_matrix(self, name, dataset, **kwargs)


def _embedding_site(model: Any) -> str | None:
    """The input embeddings' read site ("model.embed_tokens.output"), or None."""
    try:
        return input_embedding_path(model) + ".output"
    except ProbeError:
        return None
