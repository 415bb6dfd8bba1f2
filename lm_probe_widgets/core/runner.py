"""ProbeRunner: many probes, one forward pass per batch, honest early stopping.

The flow: validate every submodule with a dry run; extract the validation split;
stream the training batches once (one trace each, pooled features cached, every
probe scoring then learning from each batch); run further epochs from the cache;
extract the evaluation set once and compute metrics. Events are published at each
point for whoever displays progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import events as ev
from .baselines import add_baseline_columns, baseline_metrics, check_baselines, fit_baselines
from .config import ProbeConfig
from .control import add_control_columns, control_metrics, fit_control_probes
from .data import Batch, ProbeDataset, split_indices
from .errors import ProbeError
from .extract import Extractor, FeatureKey
from .features import DEFAULT_BUDGET_BYTES, FeatureCache, row_index
from .memory import guard_memory
from .metrics import METRIC_COLUMNS, classification_metrics
from .modeling import wrap_model
from .probe import LinearProbe, encode_labels
from .progress import make_progress
from .submodules import validate_submodules
from .uncertainty import bootstrap_ci


class StopFitting(Exception):
    """Raised inside the loop when a stop was requested; never escapes fit_probes."""


class ProbeRunner:
    """Train several probes at once on one model.

    `model` is an nnsight model or a plain Hugging Face / torch model (wrapped for
    you). Submodules are checked before any data reaches the model.
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
    ) -> None:
        self.model = wrap_model(model, tokenizer or getattr(model, "tokenizer", None))
        # remote=True: every batch's trace runs on NDIF, pooled there (core.remote);
        # "local" simulates that path here. The API key is checked now, offline.
        self.remote = None
        if remote:
            from .remote import RemoteSession

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
        self._dry = validate_submodules(self.model, [c.submodule for c in self.configs])
        self.events = ev.EventBus()
        self.cache = FeatureCache(memory_budget)
        self.threads = threads
        self.probes: dict[str, LinearProbe] = {}
        self._extractors: dict[tuple[FeatureKey, ...], Extractor] = {}
        self._metrics: dict[str, dict[str, Any]] = {}
        self._stop_requested = False
        self.validation_set: ProbeDataset | None = None
        self.state = "not fitted"
        # methodology (issue 7): control probes, baselines, bootstrap CIs, fitted train part
        self.control: ProbeRunner | None = None
        self.control_task: Any = None
        self.baselines: dict[str, Any] = {}
        self.bootstrap, self.bootstrap_seed = 1000, 0
        self.train_part: ProbeDataset | None = None

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
        self._stop_requested = True

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
        return add_baseline_columns(self, add_control_columns(self, df))

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

        A Stop (`request_stop`, the widget's button) ends fitting cleanly and still
        evaluates; a KeyboardInterrupt keeps the probes trained so far (best weights)
        and re-raises. `resume=True` continues stopped or interrupted probes.

        Methodology (need `eval_set`): `control=True` trains a control probe beside each
        probe (columns `control_accuracy`, `selectivity`); `baselines=("majority",
        "embeddings", "random_init")` adds `baseline_<name>` accuracy columns (details in
        `runner.baselines[name].metrics`); `bootstrap` resamples for the accuracy/F1
        CIs (0: off). `validation_set` replaces the split taken from `train_set`.
        `memory_check` estimates the memory the fit needs first and refuses (or spills
        the cache to disk) rather than running out mid-run (see `core.memory`).
        """
        if num_epoch < 1:
            raise ProbeError("num_epoch must be at least 1")
        baselines = check_baselines(baselines)
        if (control or baselines) and eval_set is None:
            raise ProbeError("control=True and baselines need an eval_set (held-out metrics)")
        self.bootstrap, self.bootstrap_seed = int(bootstrap), seed
        if not resume:
            self.control, self.control_task, self.baselines = None, None, {}
        self._check_dataset(train_set, "train_set")
        if eval_set is not None:
            self._check_dataset(eval_set, "eval_set")
        train_part, val_part = self._validation_split(train_set, eval_set, validation_size, seed)
        if validation_set is not None and val_part is not None:
            self._check_dataset(validation_set, "validation_set")
            train_part, val_part = train_set, validation_set
        self.validation_set = val_part  # the held-out split early stopping watched
        self.train_part = train_part  # what the probes learned from (mass-mean directions)
        for cfg in self.configs:
            self._check_labels(cfg, train_part, "training data", need_two=True)
            if eval_set is not None:
                self._check_labels(cfg, eval_set, "eval_set")
        if memory_check:
            guard_memory(self, train_set, eval_set, batch_size)
        if self.remote:
            self.remote.ensure_ready(baselines)  # no key / NDIF unreachable: fail in seconds
        display = make_progress(progress, self)
        unsubscribe = self.events.subscribe(display) if display is not None else None
        poll = getattr(display, "poll", None)
        self._stop_requested = False
        started = time.monotonic()
        fit = _Fit(self, train_part, val_part, eval_set, num_epoch, batch_size, seed, started, poll)
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            fit.run(resume)
        except KeyboardInterrupt:
            fit.abort(
                "interrupted",
                "fitting interrupted: probes keep their best weights so "
                "far; call fit_probes(..., resume=True) to continue",
            )
            raise
        except Exception as e:
            fit.abort("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            torch.set_num_threads(old_threads)
            if unsubscribe is not None:
                unsubscribe()
            close = getattr(display, "close", None)
            if close is not None:
                close()
        if self.state == "fitted" and (control or baselines):
            kw = dict(num_epoch=num_epoch, batch_size=batch_size, seed=seed)
            kw["validation_size"] = validation_size
            if control:
                fitted = fit_control_probes(self, train_set, eval_set, **kw)
                self.control, self.control_task = fitted
            self.baselines = fit_baselines(self, baselines, train_set, eval_set, **kw)
        return self

    def compute_metrics(
        self,
        dataset: ProbeDataset,
        batch_size: int = 32,
        *,
        bootstrap: int | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Evaluate every fitted probe (and its control probe and baselines) on `dataset`;
        also becomes `runner.metrics`. `bootstrap` resamples for the CIs (0: off)."""
        self._check_dataset(dataset, "dataset")
        if bootstrap is not None:
            self.bootstrap = int(bootstrap)
        if seed is not None:
            self.bootstrap_seed = int(seed)
        fitted = [c for c in self.configs if c.name in self.probes]
        for cfg in fitted:
            self._check_labels(cfg, dataset, "dataset")
        feats = self.features(dataset, [c.feature_key for c in fitted], batch_size)
        for cfg in fitted:
            x, y = feats[cfg.feature_key], self._labels(cfg, dataset)
            self._metrics[cfg.name] = self._evaluate(cfg, x, y)
        kw = dict(batch_size=batch_size, bootstrap=self.bootstrap, seed=self.bootstrap_seed)
        control_metrics(self, dataset, **kw)
        baseline_metrics(self, dataset, **kw)
        return self.metrics

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
        names = list(subset) if subset is not None else [c.name for c in self.configs]
        by_name = {c.name: c for c in self.configs}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise KeyError(f"unknown probes {unknown}; known: {list(by_name)}")
        feats = self.features(ds, [by_name[n].feature_key for n in names], batch_size)
        return {n: np.array(feats[by_name[n].feature_key]) for n in names}

    def save(self, path: str) -> None:
        """Write probes as plain arrays + JSON (safetensors): loading runs no code."""
        from .persistence import save_runner

        save_runner(self, path)

    @classmethod
    def load(cls, path: str, model: Any, **kwargs: Any) -> ProbeRunner:
        """Load probes saved with `save`, checking they fit `model`'s dimensions."""
        from .persistence import load_runner

        return load_runner(cls, path, model, **kwargs)

    def __repr__(self) -> str:
        return (
            f"ProbeRunner({type(self.model._module).__name__}, {len(self.configs)} probes, "
            f"state={self.state!r})"
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

    def plot_confusion_matrix(self, name: str, dataset: ProbeDataset, **kwargs: Any) -> Any:
        """Confusion matrix of probe `name` on a labelled `dataset`; returns the Axes."""
        from ..display.plots import plot_confusion_matrix

        return plot_confusion_matrix(self, name, dataset, **kwargs)

    # -- features ---------------------------------------------------------------------
    def extractor(self, keys: Sequence[FeatureKey]) -> Extractor:
        k = tuple(sorted(set(keys)))
        if k not in self._extractors:
            if self.remote:
                from .remote import RemoteExtractor

                self._extractors[k] = RemoteExtractor(self.model, list(k), self._dry, self.remote)
            else:
                self._extractors[k] = Extractor(self.model, list(k), self._dry)
        return self._extractors[k]

    def iter_features(
        self,
        ds: ProbeDataset,
        keys: Sequence[FeatureKey],
        batch_size: int,
        seed: int | None = 0,
        on_batch: Any = None,
    ) -> Iterator[tuple[Batch, dict[FeatureKey, np.ndarray]]]:
        """Batches of `ds` with pooled features, from the cache where present, else from
        one trace per batch (which fills the cache)."""
        keys = sorted(set(keys))
        fp = ds.fingerprint()
        extractor = self.extractor(keys)
        done = 0
        for batch in ds.batches(batch_size, seed=seed):
            stores = [self.cache.get(fp, k) for k in keys]
            if all(s is not None and s.filled[batch.indices].all() for s in stores):
                feats = {k: s.rows(batch.indices) for k, s in zip(keys, stores, strict=True)}
            else:
                feats = extractor(batch)
                for k, rows in feats.items():
                    self.cache.store(ds, fp, k, rows.shape[1]).write(batch.indices, rows)
            done += len(batch.indices)
            if on_batch is not None:
                on_batch(batch, done)
            yield batch, feats

    def features(
        self,
        ds: ProbeDataset,
        keys: Sequence[FeatureKey],
        batch_size: int = 32,
        on_batch: Any = None,
    ) -> dict[FeatureKey, np.ndarray]:
        """All rows of `ds` for each key, in dataset order."""
        for _ in self.iter_features(ds, keys, batch_size, None, on_batch):
            pass
        fp = ds.fingerprint()
        return {k: self.cache.get(fp, k).rows() for k in set(keys)}

    # -- checks -----------------------------------------------------------------------
    def _check_dataset(self, ds: Any, what: str) -> None:
        if not isinstance(ds, ProbeDataset):
            raise ProbeError(f"{what} must be a ProbeDataset (got {type(ds).__name__})")
        if not ds.has_labels:
            raise ProbeError(f"{what} has no labels: fitting and metrics need labels")
        for cfg in self.configs:
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

    def _labels(self, cfg: ProbeConfig, ds: ProbeDataset) -> np.ndarray:
        """The label of every feature row of `ds` for this probe (token rows included)."""
        if cfg.token_level:
            return np.concatenate(ds.token_labels)
        labels = ds.labels
        if ds.label_names and any(isinstance(c, str) for c in cfg.classes):
            labels = np.asarray(ds.label_names, dtype=object)[labels]
        return labels

    def _check_labels(
        self, cfg: ProbeConfig, ds: ProbeDataset, what: str, need_two: bool = False
    ) -> None:
        y = self._labels(cfg, ds)
        if cfg.token_level:
            y = y[y != cfg.null_label]
        if len(y) == 0:
            raise ProbeError(f"probe {cfg.name!r}: {what} has no labelled examples")
        idx = encode_labels(cfg, y)
        if need_two and len(np.unique(idx)) < 2:
            raise ProbeError(
                f"probe {cfg.name!r}: the {what} holds a single class "
                f"({cfg.classes[int(idx[0])]!r}); a probe needs examples of at least two classes"
            )

    def _validation_split(self, train_set, eval_set, validation_size, seed):
        modes = {c.validation for c in self.configs}
        if "eval" in modes and eval_set is None:
            raise ProbeError("validation='eval' needs an eval_set passed to fit_probes")
        if modes <= {"eval", "none"}:
            return train_set, None
        if validation_size is None:
            sizes = {c.test_size for c in self.configs if c.validation == "split"}
            validation_size = max(sizes)
        if len(train_set) < 4:
            raise ProbeError(
                f"train_set has {len(train_set)} example(s): early stopping needs a validation "
                "split, so give at least 4 examples (or validation='none')"
            )
        tr, va = split_indices(len(train_set), validation_size, seed, train_set.labels)
        return train_set.subset(tr), train_set.subset(va)

    def _evaluate(self, cfg: ProbeConfig, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        probe = self.probes[cfg.name]
        if cfg.token_level:
            keep = y != cfg.null_label
            x, y = x[keep], y[keep]
        y_idx = probe.encode(y)
        proba = probe.predict_proba(x)
        out = classification_metrics(proba, y_idx, len(cfg.classes))
        n, seed = self.bootstrap, self.bootstrap_seed
        out.update(bootstrap_ci(y_idx, proba.argmax(1), len(cfg.classes), n_boot=n, seed=seed))
        probe.metrics = out  # the probe's own repr shows its latest held-out metrics
        return out


def _record_columns(cfg: ProbeConfig, probe: LinearProbe | None) -> dict[str, Any]:
    rec = probe.record if probe is not None else None
    cols: dict[str, Any] = {
        "submodule": cfg.submodule,
        "pooling": cfg.pooling,
        "state": rec.state if rec else "not fitted",
        "steps": rec.steps if rec else 0,
        "examples_seen": rec.examples_seen if rec else 0,
        "epochs": rec.epochs_done if rec else 0,
        "best_step": rec.best_step if rec else None,
        "val_loss": rec.val_loss if rec else math.nan,
        "l2": rec.best_l2 if rec else math.nan,
        "refined": rec.refined if rec else False,
        "stop_reason": rec.stop_reason if rec else None,
        "code_length_bits": rec.code_length_bits if rec and rec.uniform_bits else math.nan,
        "compression": (
            rec.uniform_bits / rec.code_length_bits
            if rec and rec.code_length_bits > 0
            else math.nan
        ),
    }
    return cols


class _Fit:
    """One call of fit_probes: the loop, kept apart from the runner's public API."""

    def __init__(
        self,
        runner: ProbeRunner,
        train: ProbeDataset,
        val: ProbeDataset | None,
        eval_set: ProbeDataset | None,
        num_epoch: int,
        batch_size: int,
        seed: int,
        started: float,
        poll: Any,
    ) -> None:
        self.r = runner
        self.train, self.val, self.eval_set = train, val, eval_set
        self.num_epoch, self.batch_size, self.seed = num_epoch, batch_size, seed
        self.started, self.poll = started, poll
        self.bus = runner.events
        self.keys = sorted({c.feature_key for c in runner.configs})
        self.stoppable = True  # a stop request ends training; evaluation still runs
        self.fresh = True
        self.created: set[str] = set()
        self.val_xy: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.train_offsets = train.token_offsets()  # rows of token-level labels
        self.train_fp = train.fingerprint()
        # the fit's own features stay cached when the cache makes room (core.features)
        others = {d.fingerprint() for d in (val, eval_set) if d is not None}
        runner.cache.pinned = {self.train_fp} | others

    # helpers
    def _seconds(self) -> float:
        return time.monotonic() - self.started

    def _checkpoint(self) -> None:
        if self.poll is not None:
            self.poll()
        if self.r._stop_requested and self.stoppable:
            raise StopFitting

    def _batch_event(self, phase: str, epoch: int, total: int):
        def on_batch(batch: Batch, done: int) -> None:
            self.bus.publish(
                ev.BATCH,
                phase=phase,
                epoch=epoch,
                examples_done=done,
                examples_total=total,
                tokens=batch.padded_tokens,
                real_tokens=batch.real_tokens,
                seconds=self._seconds(),
            )
            self._checkpoint()

        return on_batch

    def _active(self) -> list[tuple[ProbeConfig, LinearProbe]]:
        return [
            (c, self.r.probes[c.name])
            for c in self.r.configs
            if c.name in self.r.probes and self.r.probes[c.name].active
        ]

    # the loop
    def run(self, resume: bool) -> None:
        r = self.r
        # Probes of an earlier fit are replaced one by one as this fit creates them, so a
        # fit that fails before training keeps the old ones.
        self.fresh = not resume
        steps_per_epoch = math.ceil(len(self.train) / self.batch_size)
        r.state = "fitting"
        self.bus.publish(
            ev.FIT_STARTED,
            probes=[c.name for c in r.configs],
            configs=[_config_summary(c) for c in r.configs],
            num_epoch=self.num_epoch,
            n_train=len(self.train),
            n_val=len(self.val) if self.val is not None else 0,
            n_eval=len(self.eval_set) if self.eval_set is not None else 0,
            batch_size=self.batch_size,
            steps_per_epoch=steps_per_epoch,
            max_steps={
                c.name: min(c.max_steps, steps_per_epoch * self.num_epoch) for c in r.configs
            },
        )
        reason = "completed"
        try:
            self._prepare_validation()
            self._first_epoch(resume)
            self._later_epochs()
        except StopFitting:
            reason = "stopped"
            for cfg, probe in self._active():
                self._finish(
                    cfg, probe, "stopped", f"stopped by user at step {probe.record.steps}", "user"
                )
        for cfg, probe in self._active():
            self._finish(
                cfg, probe, "finished", f"completed {probe.record.epochs_done} epoch(s)", None
            )
        self.stoppable = False
        if reason != "stopped":
            self._refine()
        if self.eval_set is not None:
            self._evaluate()
        r.state = "stopped" if reason == "stopped" else "fitted"
        self.bus.publish(ev.FIT_FINISHED, reason=reason, seconds=self._seconds())

    def abort(self, state: str, message: str) -> None:
        for cfg, probe in self._active():
            self._finish(cfg, probe, state, message, state)
        self.r.state = state
        self.bus.publish(ev.INTERRUPTED if state == "interrupted" else ev.ERROR, message=message)
        self.bus.publish(ev.FIT_FINISHED, reason=state, seconds=self._seconds())

    def _finish(self, cfg, probe, state: str, reason: str, kind: str | None) -> None:
        probe.finish(state, reason)
        rec = probe.record
        if kind is not None:
            self.bus.publish(
                ev.STOPPED,
                cfg.name,
                step=rec.steps,
                reason=reason,
                kind=kind,
                best_step=rec.best_step,
            )
        self.bus.publish(
            ev.PROBE_FINISHED,
            cfg.name,
            state=state,
            reason=reason,
            best_step=rec.best_step,
            steps=rec.steps,
        )

    def _rows_labels(self, cfg, ds) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers to use, class indices) for a probe on a dataset, dropping
        ignored tokens."""
        y = self.r._labels(cfg, ds)
        keep = np.arange(len(y))
        if cfg.token_level:
            keep = np.flatnonzero(y != cfg.null_label)
        probe_like = self.r.probes[cfg.name]
        return keep, probe_like.encode(y[keep])

    def _prepare_validation(self) -> None:
        r = self.r
        val = self.val
        feats = None
        if val is not None:
            feats = r.features(
                val,
                self.keys,
                self.batch_size,
                on_batch=self._batch_event("extract-val", 0, len(val)),
            )
        for cfg in r.configs:
            if cfg.name in r.probes and not self.fresh:  # resume what was cut short
                probe = r.probes[cfg.name]
                if probe.state in ("stopped", "interrupted", "error"):
                    probe.record.state = "training"
                    probe.record.evals_since_best = 0
            if cfg.validation == "split" and feats is not None:
                x = feats[cfg.feature_key]
                self.val_xy[cfg.name] = (x, None)
            elif cfg.validation == "eval":
                ex = r.features(
                    self.eval_set,
                    [cfg.feature_key],
                    self.batch_size,
                    on_batch=self._batch_event("extract-eval", 0, len(self.eval_set)),
                )
                self.val_xy[cfg.name] = (ex[cfg.feature_key], None)

    def _ensure_probe(self, cfg: ProbeConfig, dim: int) -> LinearProbe | None:
        probe = self.r.probes.get(cfg.name)
        if probe is None or (self.fresh and cfg.name not in self.created):
            self.created.add(cfg.name)
            self.r._metrics.pop(cfg.name, None)
            probe = self.r.probes[cfg.name] = LinearProbe(cfg, dim)
            probe.record.state = "training"
        return probe if probe.active else None

    def _encode_val(self, cfg) -> None:
        """Encode validation labels once the probe exists."""
        x, y = self.val_xy.get(cfg.name, (None, None))
        if x is not None and y is None:
            ds = self.val if cfg.validation == "split" else self.eval_set
            keep, y_idx = self._rows_labels(cfg, ds)
            self.val_xy[cfg.name] = (x[keep], y_idx)

    def _train_step(self, cfg, probe, x, y_idx, epoch: int, first_pass: bool) -> None:
        if len(y_idx) == 0:
            return
        self._encode_val(cfg)
        if first_pass:
            probe.scaler.update(x)
            bits = probe.code_length(x, y_idx)
            probe.record.code_length_bits += bits
            probe.record.uniform_bits += len(y_idx) * math.log2(len(cfg.classes))
        loss = probe.step(x, y_idx, cfg.first_pass_lr if first_pass else cfg.lr)
        rec = probe.record
        self.bus.publish(
            ev.STEP,
            cfg.name,
            step=rec.steps,
            epoch=epoch,
            examples_seen=rec.examples_seen,
            train_loss=loss,
        )
        xv, yv = self.val_xy.get(cfg.name, (None, None))
        if xv is not None and rec.steps % cfg.eval_every == 0:
            out = probe.evaluate(xv, yv)
            rec.history.append(
                {"step": rec.steps, "epoch": epoch, "train_loss": loss, "val_loss": out["val_loss"]}
            )
            self.bus.publish(
                ev.EVALUATED,
                cfg.name,
                step=rec.steps,
                val_loss=out["val_loss"],
                best_val_loss=rec.best_val_loss,
                best_step=rec.best_step,
                improved=out["improved"],
            )
        elif xv is None:
            rec.history.append(
                {"step": rec.steps, "epoch": epoch, "train_loss": loss, "val_loss": math.nan}
            )
        why = probe.should_stop()
        if why is not None:
            state = "early-stopped" if "validation" in why else "finished"
            self._finish(
                cfg,
                probe,
                state,
                why,
                "early_stopping" if state == "early-stopped" else "max_steps",
            )

    def _first_epoch(self, resume: bool) -> None:
        """Stream the training data through the model once; every probe scores each
        batch before learning from it (prequential code length)."""
        r = self.r
        if resume and r.probes and all(p.scaler.frozen for p in r.probes.values()):
            return  # the cache already holds everything and the first epoch is done
        ds = self.train
        labels = {c.name: r._labels(c, ds) for c in r.configs}
        for batch, feats in r.iter_features(
            ds,
            self.keys,
            self.batch_size,
            self.seed,
            on_batch=self._batch_event("extract-train", 1, len(ds)),
        ):
            for cfg in r.configs:
                self._learn_batch(cfg, batch, feats[cfg.feature_key], labels[cfg.name])
        for p in r.probes.values():
            p.scaler.frozen = True
            p.record.epochs_done = max(p.record.epochs_done, 1)

    def _learn_batch(self, cfg, batch: Batch, x: np.ndarray, y: np.ndarray) -> None:
        probe = self._ensure_probe(cfg, x.shape[1])
        if probe is None:
            return
        if cfg.token_level:
            y = y[row_index(self.train_offsets, batch.indices)]
            keep = y != cfg.null_label
            x, y = x[keep], y[keep]
        else:
            y = y[batch.indices]
        self._train_step(cfg, probe, x, probe.encode(y), 1, first_pass=True)

    def _later_epochs(self) -> None:
        r = self.r
        fp = self.train_fp
        data = {}
        for cfg, _probe in self._active():
            x = r.cache.get(fp, cfg.feature_key).rows()
            keep, y_idx = self._rows_labels(cfg, self.train)
            data[cfg.name] = (x, keep, y_idx)
        rng = np.random.default_rng(self.seed)
        start = min((p.record.epochs_done for _, p in self._active()), default=self.num_epoch)
        for epoch in range(start + 1, self.num_epoch + 1):
            active = self._active()
            if not active:
                break
            orders = {c.name: rng.permutation(len(data[c.name][1])) for c, _ in active}
            n_steps = max(math.ceil(len(o) / self.batch_size) for o in orders.values())
            for s in range(n_steps):
                for cfg, probe in self._active():
                    x, keep, y_idx = data[cfg.name]
                    sel = orders[cfg.name][s * self.batch_size : (s + 1) * self.batch_size]
                    if len(sel) == 0:
                        continue
                    self._train_step(cfg, probe, x[keep[sel]], y_idx[sel], epoch, False)
                self.bus.publish(
                    ev.BATCH,
                    phase="train",
                    epoch=epoch,
                    examples_done=min((s + 1) * self.batch_size, len(self.train)),
                    examples_total=len(self.train),
                    tokens=0,
                    real_tokens=0,
                    seconds=self._seconds(),
                )
                self._checkpoint()
            for _, probe in self._active():
                probe.record.epochs_done = epoch

    def _refine(self) -> None:
        """Converge the probes that finished training (core.probe.LinearProbe.refine)."""
        r = self.r
        fp = self.train_fp
        todo = []
        for cfg in r.configs:
            probe = r.probes.get(cfg.name)
            store = r.cache.get(fp, cfg.feature_key)
            if (
                cfg.refine
                and probe is not None
                and probe.state in ("finished", "early-stopped")
                and not probe.record.refined
                and store is not None
                and store.filled.all()
            ):
                todo.append((cfg, probe, store))
        for i, (cfg, probe, store) in enumerate(todo):
            keep, y_idx = self._rows_labels(cfg, self.train)
            x = store.rows()
            if len(keep) != len(x):
                x = x[keep]
            self._encode_val(cfg)
            xv, yv = self.val_xy.get(cfg.name, (None, None))
            probe.refine(x, y_idx, xv, yv)
            rec = probe.record
            self.bus.publish(ev.REFINED, cfg.name, val_loss=rec.refined_val_loss, l2=rec.best_l2)
            self.bus.publish(
                ev.BATCH,
                phase="refine",
                epoch=rec.epochs_done,
                examples_done=i + 1,
                examples_total=len(todo),
                tokens=0,
                real_tokens=0,
                seconds=self._seconds(),
            )
            self._checkpoint()  # keeps widgets responsive; a Stop no longer applies

    def _evaluate(self) -> None:
        r = self.r
        ds = self.eval_set
        feats = r.features(
            ds, self.keys, self.batch_size, on_batch=self._batch_event("extract-eval", 0, len(ds))
        )
        for cfg in r.configs:
            if cfg.name in r.probes:
                r._metrics[cfg.name] = r._evaluate(cfg, feats[cfg.feature_key], r._labels(cfg, ds))


def _config_summary(cfg: ProbeConfig) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "submodule": cfg.submodule,
        "pooling": cfg.pooling,
        "classes": [str(c) for c in cfg.classes],
        "patience": cfg.patience,
        "warmup_steps": cfg.warmup_steps,
        "max_steps": cfg.max_steps,
        "early_stopping": cfg.early_stopping,
        "eval_every": cfg.eval_every,
    }
