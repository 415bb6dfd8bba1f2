"""ProbeRunner: many probes, one forward pass per batch, honest early stopping.

The runner is the facade: configs, results, features, reprs. A fit is planned and
checked first (`core.engine.plan`), run as stages over that plan (`core.engine.fit`), and its
results replace the runner's only when it ends or is stopped: a fit that fails leaves
the runner exactly as it was. Control probes and baselines are fitted from the same
plan as the probes beside them (`core.methods.fit_extras`). The metrics table and
scoring, the validity methods and the reprs and plots are mixins the runner inherits
(`core.methods.scoring`, `core.methods.runner_methods`, `core.io.views`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
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
from .engine.extract import Extractor, FeatureKey
from .engine.families import check_widths, text_rows
from .engine.feature_access import FeatureAccess
from .engine.feature_cache import DEFAULT_BUDGET_BYTES, FeatureCache, check_budget
from .engine.fingerprint import model_fingerprint
from .engine.fit import FitLoop, FitResult
from .engine.memory import guard_memory
from .engine.modeling import probe_device as probe_device_of
from .engine.modeling import wrap_model
from .engine.plan import FitPlan, build_plan, check_inputs
from .engine.probe import LinearProbe
from .engine.progress import make_progress
from .engine.session import FitSession
from .engine.settings import FitSettings
from .engine.states import FitOutcome, RunnerState
from .engine.stop import StopFlag, one_fit_at_a_time
from .engine.submodules import validate_submodules
from .errors import ProbeError
from .io.views import RunnerViews
from .methods.baselines import input_embedding_path
from .methods.fit_extras import Relay, fit_extras
from .methods.runner_methods import ProbeMethods
from .methods.scoring import Scoring


class ProbeRunner(FeatureAccess, Scoring, ProbeMethods, RunnerViews):
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

    `memory_budget`: bytes of pooled features kept in host RAM before the cache spills
    to disk. `device_budget`: bytes of them kept on the probe device where the probe
    maths runs in torch (an accelerator) before they go to host RAM; None: a quarter of
    the device's free memory when features first go there, 0: none on the device
    (docs/memory.md).
    """

    def __init__(
        self,
        model: Any,
        configs: ProbeConfig | Sequence[ProbeConfig],
        *,
        tokenizer: Any = None,
        memory_budget: int = DEFAULT_BUDGET_BYTES,
        device_budget: int | None = None,
        threads: int | None = None,
        remote: bool | str = False,
        store: bool | str | os.PathLike | DiskStore | None = None,
        probe_device: str | torch.device | None = None,
    ) -> None:
        memory_budget = check_budget("memory_budget", memory_budget)
        if device_budget is not None:
            device_budget = check_budget("device_budget", device_budget)
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
        self.cache = FeatureCache(memory_budget, device_budget)
        self.store: DiskStore | None = open_store(store)
        # With the store on, every trace also keeps the input embeddings (the first
        # thing the model computes, pooled for a few floats per example), so the
        # embeddings baseline of a later fit never runs the model.
        self._companions = _embedding_site(self.model) if self.store and not remote else None
        subs = [c.submodule for c in self.configs] + (
            [self._companions] if self._companions else []
        )
        self._dry = validate_submodules(self.model, list(dict.fromkeys(subs)))
        check_widths(self.configs, self._dry.shapes)  # a sparse probe's k
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
        with one_fit_at_a_time(self._fit_lock):
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
            self.state = RunnerState.FITTING

            def body() -> str:
                self._weights_pinned = True  # verified above; a fit does not change them
                try:
                    return self._fit_plan(plan, resume, top=self, bus=self.events)
                finally:
                    self._weights_pinned = False

            def on_error() -> None:
                self.state = previous.state

            session = FitSession(self.events, self.stop, display, self.threads)
            outcome = session.run(plan, body, on_error)
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
        budgets = dict(
            memory_budget=self.cache.budget_bytes, device_budget=self.cache.device_budget_bytes
        )
        twin = ProbeRunner(
            model, list(configs), threads=self.threads, store=self.store or False, **budgets
        )
        if share_cache:
            twin.cache = self.cache
        twin._model_fp = self._model_fp if model is self.model else None
        twin.remote = self.remote if model is self.model else None
        twin.probe_device = self.probe_device
        return twin

    @property
    def last_plan(self) -> FitPlan | None:
        """The splits and settings of the fit whose results the runner holds."""
        return self._result.plan

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
        Token-level probes get one row per real token; attention probes one
        [tokens, width] array per text (what their `predict_proba` reads)."""
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
        out = {n: np.array(feats[by_name[n].feature_key]) for n in names}
        for n in names:
            if by_name[n].kind == "attention":
                out[n] = text_rows(out[n], ds)
        return out

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


def _embedding_site(model: Any) -> str | None:
    """The input embeddings' read site ("model.embed_tokens.output"), or None."""
    try:
        return input_embedding_path(model) + ".output"
    except ProbeError:
        return None
