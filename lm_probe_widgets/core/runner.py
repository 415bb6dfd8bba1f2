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
import math
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
from .engine.metrics import METRIC_COLUMNS, MetricsTable, incomplete_note
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
from .engine.settings import FitSettings
from .engine.states import FitOutcome, ProbeState, RunnerState
from .engine.stop import StopFlag, deferred_interrupt
from .engine.submodules import validate_submodules
from .errors import ProbeError
from .methods.baselines import (
    MajorityBaseline,
    add_baseline_columns,
    input_embedding_path,
    random_init_model,
)
from .methods.compare import Comparison, compare_outcomes, side_outcomes
from .methods.confounds import CONFOUNDS
from .methods.control_tasks import ControlTask, control_null_label
from .methods.erasure import ConceptEraser, fit_eraser
from .methods.mdl import MDL_COLUMNS, mdl_table
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
        rows = []
        for cfg in self.configs:
            probe = self.probes.get(cfg.name)
            row: dict[str, Any] = {"probe": cfg.name}
            row.update({c: math.nan for c in METRIC_COLUMNS})
            row.update(self._metrics.get(cfg.name, {}))
            row.update(_record_columns(cfg, probe))
            rows.append(row)
        df = pd.DataFrame(rows).set_index("probe")
        for col in MDL_COLUMNS:  # NaN until runner.mdl()
            df[col] = math.nan if self._mdl is None else self._mdl[col].reindex(df.index)
        incomplete = self.incomplete
        if self.control is not None or "control" in incomplete:
            # selectivity: the task's score minus the control's (accuracy, or R² for
            # regression probes); blank when the control probes did not finish
            score = "r2" if "r2" in df and df["accuracy"].isna().all() else "accuracy"
            if "control" in incomplete:
                ctrl = pd.Series(math.nan, index=df.index)
            else:
                ctrl = self.control.metrics[score].reindex(df.index)
            df[f"control_{score}"] = ctrl
            df["selectivity"] = df[score] - ctrl
        plan = self._result.plan
        names = list(dict.fromkeys([*(plan.baselines if plan else ()), *self.baselines]))
        baselines = {n: None if f"baseline_{n}" in incomplete else self.baselines[n] for n in names}
        table = MetricsTable(add_baseline_columns(baselines, df, self.configs))
        if incomplete:
            table.attrs["incomplete"] = incomplete
        return table

    def resume_note(self) -> str:
        """After a Stop: which methods are blank and how to finish them ("" if none)."""
        return incomplete_note(self.incomplete)

    @property
    def incomplete(self) -> dict[str, str]:
        """The control probes and baselines the last fit planned but did not finish (a
        Stop or Ctrl-C before or during them): {column prefix: what happened}. Their
        columns in `metrics` are blank, never numbers from half-trained probes;
        `fit_probes(..., resume=True)` with the same arguments finishes them."""
        plan = self._result.plan
        if plan is None:
            return {}
        planned = (["control"] if plan.control else []) + [f"baseline_{n}" for n in plan.baselines]
        out = {}
        for key in planned:
            sub = self.control if key == "control" else self.baselines.get(key[len("baseline_") :])
            if sub is None:
                out[key] = "not run"
            elif str(getattr(sub, "state", RunnerState.FITTED)) != str(RunnerState.FITTED):
                out[key] = f"{sub.state} during its fit"
        return out

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
                outcome = self._fit_methods(plan, result, can_resume, top, bus)
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

    def _fit_methods(
        self, plan: FitPlan, result: FitResult, resume: bool, top: ProbeRunner, bus: Any
    ) -> str:
        """Control probes and baselines from the same plan; how they ended."""
        if plan.control:
            twin, task = result.control if resume and result.control else (None, None)
            if twin is None:
                null = control_null_label(plan.configs)
                regression = plan.configs[0].task == "regression"  # one task (plan)
                task = ControlTask.fit(
                    plan.train, seed=plan.seed, null_label=null, regression=regression
                )
                twin = self._sibling(self.model, plan.configs, share_cache=True)
            result.control = (twin, task)
            result.subs_before.append((twin, twin._result))
            outcome = twin._fit_plan(
                plan.relabelled(task.relabel), resume, top, _Relay(bus, "control")
            )
            if outcome != FitOutcome.COMPLETED:
                return outcome
        for name in plan.baselines:
            if name == "majority" or name in CONFOUNDS:  # no model involved
                base = MajorityBaseline(plan) if name == "majority" else CONFOUNDS[name](plan)
                base.compute_metrics(plan.eval_set)
                result.baselines[name] = base
                continue
            base = result.baselines.get(name) if resume else None
            if base is None:
                if name == "embeddings":
                    sub = input_embedding_path(self.model) + ".output"
                    configs = [dataclasses.replace(c, submodule=sub) for c in plan.configs]
                    base = self._sibling(self.model, configs, share_cache=True)
                else:  # seed + 1: never the init of a model built with the fit seed (tiny models)
                    configs = list(plan.configs)
                    base = self._sibling(random_init_model(self.model, plan.seed + 1), configs)
                result.baselines[name] = base
            base._model_fp = model_fingerprint(base.model)
            result.subs_before.append((base, base._result))
            outcome = base._fit_plan(
                plan.for_configs(base.configs), resume, top, _Relay(bus, f"baseline-{name}")
            )
            if outcome != FitOutcome.COMPLETED:
                return outcome
        return FitOutcome.COMPLETED

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
        seeds = _check_seeds(seeds)
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
        from .methods.sparse_probe import sparse_probe

        return sparse_probe(self, name, ks, **options)

    def mlp_probe(
        self, name: str, widths: Sequence[int] = (0, 16, 64), **options: Any
    ) -> pd.DataFrame:
        """A capacity sweep of one-hidden-layer probes at probe `name`'s site, each
        with its control task at the same capacity: selectivity and its paired
        interval per (width, weight_decay). Options: weight_decays, train, test, lr,
        steps, level, seed, device (`core.methods.mlp_probe.mlp_probe`)."""
        from .methods.mlp_probe import mlp_probe

        return mlp_probe(self, name, widths, **options)

    def attention_probe(self, name: str, **options: Any) -> tuple[Any, pd.DataFrame]:
        """(an `AttentionProbe` fitted on token-level features at probe `name`'s site,
        its paired comparison with mean and last pooling). Options: train, test, heads,
        weight_decay, lr, steps, batch_size, level, seed, device
        (`core.methods.attention_probe.attention_probe`)."""
        from .methods.attention_probe import attention_probe

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


def _check_seeds(seeds: Any) -> int | list[int]:
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


def _embedding_site(model: Any) -> str | None:
    """The input embeddings' read site ("model.embed_tokens.output"), or None."""
    try:
        return input_embedding_path(model) + ".output"
    except ProbeError:
        return None


class _Relay:
    """Passes a control or baseline fit's progress to the main display as one phase."""

    def __init__(self, bus: Any, phase: str) -> None:
        self.bus, self.phase = bus, phase

    def publish(self, kind: str, probe: str | None = None, /, **data: Any) -> None:
        if kind == ev.BATCH:
            self.bus.publish(kind, **{**data, "detail": data.get("phase"), "phase": self.phase})


def _l2_note(cfg: ProbeConfig, rec: Any) -> str | None:
    """What a reader of the chosen `l2` must know: it was chosen on the test set
    (validation="eval" without CV: the metrics are optimistic), or at the edge of
    the grid (the best strength may lie beyond it)."""
    if rec is None or not rec.refined or rec.best_l2 is None:
        return None
    notes = []
    if cfg.validation == "eval" and not rec.cross_validated:
        notes.append("chosen on the test set (validation='eval', cv_folds=0): optimistic")
    grid = sorted(cfg.l2)
    if len(grid) > 1 and rec.best_l2 in (grid[0], grid[-1]):
        edge = "weakest" if rec.best_l2 == grid[0] else "strongest"
        notes.append(f"the grid's {edge} strength: the best may lie beyond; widen l2=")
    return "; ".join(notes) or None


def _record_columns(cfg: ProbeConfig, probe: LinearProbe | None) -> dict[str, Any]:
    rec = probe.record if probe is not None else None
    cols: dict[str, Any] = {
        "submodule": cfg.submodule,
        "pooling": cfg.pooling,
        "state": str(rec.state) if rec else str(ProbeState.NOT_FITTED),
        "steps": rec.steps if rec else 0,
        "examples_seen": rec.examples_seen if rec else 0,
        "epochs": rec.epochs_done if rec else 0,
        "best_step": rec.best_step if rec else None,
        "val_loss": rec.val_loss if rec else math.nan,
        "l2": rec.best_l2 if rec else math.nan,
        "refined": rec.refined if rec else False,
        "l2_note": _l2_note(cfg, rec),
        "stop_reason": rec.stop_reason if rec else None,
        # the first pass's prequential bits under Adam: they depend on its learning rate
        # and batch size; the MDL of Voita & Titov is `runner.mdl()` (core.methods.mdl)
        "online_adam_code_bits": (rec.code_length_bits if rec and rec.uniform_bits else math.nan),
        "online_adam_compression": (
            rec.uniform_bits / rec.code_length_bits
            if rec and rec.code_length_bits > 0
            else math.nan
        ),
    }
    return cols
