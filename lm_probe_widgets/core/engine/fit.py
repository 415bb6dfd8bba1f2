"""The fit loop: stages over a plan, resumable at every batch.

Stages: extract the validation split; stream the training batches through the model
once (every probe scores each batch, then learns from it); further epochs from the
cached features; the final fit; held-out metrics. All that training changes lives in
a `FitResult` (the probes, the cursor, the metrics); the runner swaps it in only when
the loop ends or is stopped, and puts the old one back when it fails.

A stop (the Stop button, `request_stop`, a first Ctrl-C) takes effect at the next
batch boundary, where the cursor says exactly what is done, so `resume=True`
continues to the same result as a fit that was never stopped.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import ProbeConfig
from . import events as ev
from . import modeling
from .data import Batch
from .evaluation import evaluate_probe
from .families import TORCH_KINDS, FamilyProbe, family_inputs
from .feature_access import FeatureAccess
from .feature_cache import FeatureCache, row_index
from .plan import FitPlan, cv_groups, row_labels, scored_labels
from .probe import LinearProbe, refine_many
from .probe_stack import ProbeStack, stackable_groups
from .regression import make_probe
from .rows import gather_rows, rows_on, stack_rows
from .states import FitOutcome, ProbeState, RunnerState
from .stop import StopFlag


class StopFitting(Exception):
    """Raised at a batch boundary when a stop was asked for; never escapes a fit.
    `kind` is "user" (Stop) or "interrupt" (Ctrl-C)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class Cursor:
    """How far training got: epoch 1 is the pass through the model; `step` counts
    the batches (or later-epoch steps) of the current epoch every probe has learned."""

    epoch: int = 1
    step: int = 0
    orders: dict[str, np.ndarray] | None = None  # later epoch: each probe's permutation
    rng_state: dict[str, Any] | None = None  # the epoch generator after drawing `orders`
    training_done: bool = False


@dataclass
class FitResult:
    """What a fit produces, kept apart from the runner until the fit ends."""

    plan: FitPlan | None = None
    probes: dict[str, LinearProbe] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursor: Cursor = field(default_factory=Cursor)
    state: str = RunnerState.NOT_FITTED
    control: Any = None  # (control runner, ControlTask)
    baselines: dict[str, Any] = field(default_factory=dict)
    # (control or baseline runner, its results before this fit ran it): undone on failure
    subs_before: list[tuple[Any, FitResult]] = field(default_factory=list, repr=False)
    _saved: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def resumed(self, plan: FitPlan) -> FitResult:
        """A copy to continue: same probe objects (snapshotted, so a failure can put
        them back), copies of everything else."""
        out = FitResult(
            plan=plan,
            probes=dict(self.probes),
            metrics=copy.deepcopy(self.metrics),
            cursor=copy.deepcopy(self.cursor),
            state=self.state,
            control=self.control,
            baselines=dict(self.baselines),
        )
        out._saved = {name: p.snapshot() for name, p in self.probes.items()}
        return out

    def rollback(self) -> None:
        """Put the probes of the fit this one continued back as they were."""
        for name, saved in self._saved.items():
            self.probes[name].restore(saved)


@dataclass
class _Group:
    """Probes that take their steps together: one probe alone (no stack), or the
    members of a stack, in its row order."""

    members: list[tuple[ProbeConfig, LinearProbe]]
    stack: ProbeStack | None = None

    def prune(self) -> bool:
        """Let members that stopped training go; False once none is left."""
        for i in reversed(range(len(self.members))):
            if not self.members[i][1].active:
                if self.stack is not None:
                    self.stack.drop(i)  # moves its last member into row i: so do we
                self.members[i] = self.members[-1]
                self.members.pop()
        return bool(self.members)


class FitLoop:
    """One pass of the stages over a plan, writing into a FitResult."""

    def __init__(
        self,
        plan: FitPlan,
        result: FitResult,
        *,
        reader: FeatureAccess,
        cache: FeatureCache,
        bus: Any,
        stop: StopFlag,
        device: torch.device,
    ) -> None:
        """`reader` reads features (cache, store or model), `cache` holds them, `bus`
        takes the events, `stop` says when to stop; the probes run on `device`."""
        self.plan, self.res, self.reader, self.cache = plan, result, reader, cache
        self.bus, self.stop = bus, stop
        self.keys = sorted({c.feature_key for c in plan.configs})
        self.started = time.monotonic()
        self.user_stop_applies = True
        self.val_xy: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.train_offsets = plan.train.token_offsets()
        # Stacks step on the probe device (ProbeRunner(probe_device=...), else the
        # model's): torch on an accelerator, numpy on the CPU (faster there). The cache
        # keeps new features there too, while its device budget allows.
        self.device = modeling.stack_device(device)
        cache.device = self.device
        # validation rows where the torch stacks read them (the numpy edges: val_xy)
        self.val_rows: dict[str, Any] = {}
        cache.pinned = {reader.data_key(d) for d in plan.datasets if d is not None}

    # -- stop points ------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Between batches: let widgets act, then honour a stop."""
        if self.stop.poll is not None:
            self.stop.poll()
        if self.stop.interrupted:
            raise StopFitting("interrupt")
        if self.stop.requested and self.user_stop_applies:
            raise StopFitting("user")

    def progress(self, phase: str, epoch: int, done: int, total: int, batch: Batch | None) -> None:
        self.bus.emit(
            ev.Batch(
                phase=phase,
                epoch=epoch,
                examples_done=done,
                examples_total=total,
                tokens=batch.padded_tokens if batch is not None else 0,
                real_tokens=batch.real_tokens if batch is not None else 0,
                # examples of this batch the model ran on (0: features from cache or store)
                traced=batch.traced if batch is not None else 0,
                seconds=time.monotonic() - self.started,
            )
        )

    def _on_batch(self, phase: str, epoch: int, total: int) -> Any:
        def on_batch(batch: Batch, done: int) -> None:
            self.progress(phase, epoch, done, total, batch)
            self.checkpoint()

        return on_batch

    # -- the stages -------------------------------------------------------------------
    def run(self) -> str:
        """Run what is left of the plan; returns "completed", "stopped" or "interrupted"."""
        outcome = FitOutcome.COMPLETED
        self.res.metrics = {}  # held-out numbers describe the probes this run leaves
        try:
            self._prepare_validation()
            if not self.res.cursor.training_done:
                self._reactivate()
                if self.res.cursor.epoch == 1:
                    self._first_pass()
                self._later_epochs()
                for cfg, probe in self._active():
                    done = probe.record.epochs_done
                    self._finish(
                        cfg, probe, ProbeState.FINISHED, f"completed {done} epoch(s)", None
                    )
                self.res.cursor.training_done = True
            self._refine()
        except StopFitting as stop:
            stopped = stop.kind == "interrupt"
            outcome = FitOutcome.INTERRUPTED if stopped else FitOutcome.STOPPED
            self._pause(outcome)
        if self.plan.eval_set is not None and outcome != FitOutcome.INTERRUPTED:
            self.user_stop_applies = False  # a Stop still gets its held-out numbers
            try:
                self._evaluate()
            except StopFitting:
                outcome = FitOutcome.INTERRUPTED
        return outcome

    def _pause(self, outcome: str) -> None:
        for cfg, probe in self._active():
            if outcome == FitOutcome.INTERRUPTED:
                msg = "fitting interrupted: call fit_probes(..., resume=True) to continue"
                self._finish(cfg, probe, ProbeState.INTERRUPTED, msg, ProbeState.INTERRUPTED.value)
            else:
                msg = f"stopped by user at step {probe.record.steps}"
                self._finish(cfg, probe, ProbeState.STOPPED, msg, "user")

    def _reactivate(self) -> None:
        for probe in self.res.probes.values():
            if ProbeState(probe.state).resumable:
                probe.record.state = ProbeState.TRAINING

    def _active(self) -> list[tuple[ProbeConfig, LinearProbe]]:
        return [
            (c, self.res.probes[c.name])
            for c in self.plan.configs
            if c.name in self.res.probes and self.res.probes[c.name].active
        ]

    def _finish(self, cfg, probe, state: str, reason: str, kind: str | None) -> None:
        probe.finish(state, reason)
        rec = probe.record
        if kind is not None:
            stop = ev.Stopped(
                cfg.name, step=rec.steps, reason=reason, stop_kind=kind, best_step=rec.best_step
            )
            self.bus.emit(stop)
        self.bus.emit(
            ev.ProbeFinished(
                cfg.name, state=state, reason=reason, best_step=rec.best_step, steps=rec.steps
            )
        )

    def _prepare_validation(self) -> None:
        plan, r = self.plan, self.reader
        sources = {"split": plan.val, "eval": plan.eval_set}
        for mode, ds in sources.items():
            cfgs = [c for c in plan.configs if c.validation == mode]
            if ds is None or not cfgs:
                continue
            phase = "extract-val" if mode == "split" else "extract-eval"
            keys = sorted({c.feature_key for c in cfgs})
            on_batch = self._on_batch(phase, 0, len(ds))
            feats = r.features(ds, keys, plan.batch_size, on_batch, device=self.device)
            for cfg in cfgs:
                keep, y_idx = scored_labels(cfg, ds)
                x = feats[cfg.feature_key]
                if cfg.kind != "linear":  # in their own shape, the torch ones on the device
                    at = self.device if cfg.kind in TORCH_KINDS else None
                    self.val_xy[cfg.name] = (family_inputs(cfg, rows_on(x, at), keep, ds), y_idx)
                    continue
                x = x[keep]
                self.val_rows[cfg.name] = x
                self.val_xy[cfg.name] = (rows_on(x, None), y_idx)

    def _ensure_probe(self, cfg: ProbeConfig, dim: int) -> LinearProbe | None:
        probe = self.res.probes.get(cfg.name)
        if probe is None:
            probe = self.res.probes[cfg.name] = make_probe(cfg, dim)
            if cfg.kind == "linear":  # a family probe waits for the final fit
                probe.record.state = ProbeState.TRAINING
        return probe if probe.active else None

    def _train_step(self, cfg, probe, x, y_idx, epoch: int, first_pass: bool) -> None:
        if len(y_idx) == 0:
            return
        if first_pass:
            probe.scaler.update(x)
            probe.record.code_length_bits += probe.code_length(x, y_idx)
            probe.record.uniform_bits += probe.uniform_bits(len(y_idx))
        loss = probe.step(x, y_idx, cfg.first_pass_lr if first_pass else cfg.lr)
        xv, yv = self.val_xy.get(cfg.name, (None, None))
        due = xv is not None and probe.record.steps % cfg.eval_every == 0
        self._record_step(cfg, probe, epoch, loss, probe.val_losses(xv, yv) if due else None)

    def _record_step(self, cfg, probe, epoch: int, loss: float, val: np.ndarray | None) -> None:
        """After a probe's step: its events and history, the validation losses `val`
        of its members when an evaluation was due, and whether it stops now."""
        rec = probe.record
        self.bus.emit(
            ev.Step(
                cfg.name,
                step=rec.steps,
                epoch=epoch,
                examples_seen=rec.examples_seen,
                train_loss=loss,
            )
        )
        if cfg.name not in self.val_xy:
            rec.history.append(
                {"step": rec.steps, "epoch": epoch, "train_loss": loss, "val_loss": math.nan}
            )
        elif val is not None:
            out = probe.note_validation(val)
            rec.history.append(
                {"step": rec.steps, "epoch": epoch, "train_loss": loss, "val_loss": out["val_loss"]}
            )
            self.bus.emit(
                ev.Evaluated(
                    cfg.name,
                    step=rec.steps,
                    val_loss=out["val_loss"],
                    best_val_loss=rec.best_val_loss,
                    best_step=rec.best_step,
                    improved=out["improved"],
                )
            )
        why = probe.should_stop()
        if why is not None:
            early = "validation" in why
            state = ProbeState.EARLY_STOPPED if early else ProbeState.FINISHED
            self._finish(cfg, probe, state, why, "early_stopping" if early else "max_steps")

    def _first_pass(self) -> None:
        """Stream the training data through the model once; every probe scores each
        batch before learning from it (prequential code length)."""
        plan, r, cursor = self.plan, self.reader, self.res.cursor
        ds = plan.train
        labels = {c.name: row_labels(c, ds) for c in plan.configs}
        on_batch = self._on_batch("extract-train", 1, len(ds))
        batches = r.iter_features(
            ds,
            self.keys,
            plan.batch_size,
            plan.seed,
            on_batch,
            skip=cursor.step,
            device=self.device,
        )
        groups: list[_Group] | None = None
        try:
            for batch, feats in batches:
                if groups is None:  # the probes exist once the first features arrive
                    for cfg in plan.configs:
                        self._ensure_probe(cfg, feats[cfg.feature_key].shape[1])
                    groups = self._groups(self._first_pass_rows)
                for group in groups:
                    if group.stack is None:
                        cfg = group.members[0][0]
                        self._learn_batch(cfg, batch, feats[cfg.feature_key], labels[cfg.name])
                    else:
                        self._learn_stacked(group, batch, feats, labels)
                groups = [g for g in groups if g.prune()]
                cursor.step += 1  # then on_batch: progress and the stop point
        finally:
            _release(groups or [])
        for probe in self.res.probes.values():
            probe.scaler.frozen = True
            if not isinstance(probe, FamilyProbe):  # its epochs are its final fit's
                probe.record.epochs_done = max(probe.record.epochs_done, 1)
        cursor.epoch, cursor.step = 2, 0

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
        self._train_step(cfg, probe, rows_on(x, None), probe.encode(y), 1, first_pass=True)

    def _first_pass_rows(self, cfg: ProbeConfig) -> object:
        """Probes that read every example of a batch can be stacked in the first pass."""
        return ("tokens", cfg.name) if cfg.token_level else "examples"

    def _learn_stacked(self, group: _Group, batch: Batch, feats: dict, labels: dict) -> None:
        """The first-pass step of a stack: each probe's scaler learns the batch, then
        every probe scores the batch (code length) and learns from it, as alone."""
        stack = group.stack
        x = stack_rows([feats[cfg.feature_key] for cfg, _ in group.members], stack.device)
        y = np.stack([p.encode(labels[cfg.name][batch.indices]) for cfg, p in group.members])
        for (_, probe), xi in zip(group.members, rows_on(x, None), strict=True):
            probe.scaler.update(xi)
        stack.refresh_scalers()
        lr = np.array([cfg.first_pass_lr for cfg, _ in group.members])
        losses, bits = stack.step(x, y, lr, code_length=True)
        for (_, probe), b in zip(group.members, bits, strict=True):
            probe.record.code_length_bits += b
            probe.record.uniform_bits += probe.uniform_bits(y.shape[1])
        self._record_group(group, losses, 1)

    def _later_epochs(self) -> None:
        plan, r, cursor = self.plan, self.reader, self.res.cursor
        if cursor.epoch > plan.num_epoch or not self._active():
            return
        ds = plan.train
        keys = [c.feature_key for c, _ in self._active()]
        feats = r.features(ds, keys, plan.batch_size, device=self.device)  # where they are
        data = {}
        for cfg, _ in self._active():
            keep, y_idx = scored_labels(cfg, ds)
            data[cfg.name] = (feats[cfg.feature_key], keep, y_idx)
        rng = np.random.default_rng(plan.seed)
        if cursor.rng_state is not None:
            rng.bit_generator.state = cursor.rng_state
        # Stacks live across epochs: each epoch only reshuffles the rows they read.
        groups = self._groups(lambda cfg: len(data[cfg.name][2]))
        self._hold_rows(groups, data)
        try:
            self._epochs(groups, data, rng)
        finally:
            _release(groups)

    def _epochs(self, groups: list[_Group], data: dict[str, Any], rng: Any) -> None:
        plan, cursor, bs, n = self.plan, self.res.cursor, self.plan.batch_size, len(self.plan.train)
        while cursor.epoch <= plan.num_epoch and self._active():
            epoch = cursor.epoch
            if cursor.orders is None:
                cursor.orders = {
                    c.name: rng.permutation(len(data[c.name][1])) for c, _ in self._active()
                }
                cursor.rng_state = copy.deepcopy(rng.bit_generator.state)
            orders = cursor.orders
            n_steps = max(math.ceil(len(o) / bs) for o in orders.values())
            for s in range(cursor.step, n_steps):
                for group in groups:
                    rows = [orders[cfg.name][s * bs : (s + 1) * bs] for cfg, _ in group.members]
                    if len(rows[0]):
                        self._step_group(group, data, rows, epoch)
                groups[:] = [g for g in groups if g.prune()]
                cursor.step = s + 1
                self.progress("train", epoch, min((s + 1) * bs, n), n, None)
                self.checkpoint()
            for _, probe in self._active():
                probe.record.epochs_done = epoch
            cursor.epoch, cursor.step, cursor.orders = epoch + 1, 0, None

    def _groups(self, rows: Callable[[ProbeConfig], object]) -> list[_Group]:
        """The active probes, those that can step together stacked (core.engine.
        probe_stack): same shape, same `rows(cfg)` per step, validation rows and
        schedule."""
        active = self._active()
        keys = []
        for cfg, _ in active:
            xv = self.val_xy.get(cfg.name, (None,))[0]
            keys.append((rows(cfg), cfg.eval_every, None if xv is None else xv.shape))
        groups = []
        for idx in stackable_groups([p for _, p in active], keys):
            members = [active[i] for i in idx]
            if len(members) == 1:
                groups.append(_Group(members))
                continue
            val = None
            if members[0][0].name in self.val_xy:
                xv = stack_rows([self.val_rows[c.name] for c, _ in members], self.device)
                val = (xv, np.stack([self.val_xy[c.name][1] for c, _ in members]))
            stack = ProbeStack([p for _, p in members], val, self.device)
            groups.append(_Group(members, stack))
        return groups

    def _hold_rows(self, groups: list[_Group], data: dict[str, Any]) -> None:
        """Torch stacks keep their probes' training rows on their device while all of
        them fit the runner's memory budget and the cache's device budget (the first
        stacks first); the others gather each step's rows where the cache keeps them
        and send them over."""
        room = min(self.cache.budget_bytes, self.cache.device_budget() - self.cache.device_nbytes)
        for group in groups:
            stack = group.stack
            if stack is None or stack.device is None:
                continue
            n = len(data[group.members[0][0].name][2])
            need = len(group.members) * n * stack.width * 4
            if need > room:
                continue
            room -= need
            x = [data[c.name][0][data[c.name][1]] for c, _ in group.members]
            y = np.stack([data[c.name][2] for c, _ in group.members]).astype(np.int64)
            stack.hold(stack_rows(x, self.device), y)

    def _step_group(self, group: _Group, data: dict[str, Any], rows: list, epoch: int) -> None:
        """One later-epoch step of a group's probes on their `rows` (one array each)."""
        if group.stack is None:
            (cfg, probe), sel = group.members[0], rows[0]
            x, keep, y_idx = data[cfg.name]
            self._train_step(cfg, probe, rows_on(x[keep[sel]], None), y_idx[sel], epoch, False)
            return
        lr = np.array([cfg.lr for cfg, _ in group.members])
        if not group.stack.has_scalers:  # the scalers are frozen after the first pass
            group.stack.refresh_scalers()
        if group.stack.holds_rows:
            losses, _ = group.stack.step_rows(np.stack(rows), lr)
            self._record_group(group, losses, epoch)
            return
        picks = [(data[cfg.name], sel) for (cfg, _), sel in zip(group.members, rows, strict=True)]
        x = gather_rows([(feats, keep[sel]) for (feats, keep, _), sel in picks], group.stack.device)
        y = np.stack([y_idx[sel] for (_, _, y_idx), sel in picks]).astype(np.int64, copy=False)
        losses, _ = group.stack.step(x, y, lr)
        self._record_group(group, losses, epoch)

    def _record_group(self, group: _Group, losses: np.ndarray, epoch: int) -> None:
        """After a stack's step: its validation losses when due, then each probe's
        events, history and stopping test."""
        cfg0, probe0 = group.members[0]
        val = None
        if group.stack.has_validation and probe0.record.steps % cfg0.eval_every == 0:
            val = group.stack.val_losses()
        for i, (cfg, probe) in enumerate(group.members):
            self._record_step(cfg, probe, epoch, float(losses[i]), None if val is None else val[i])

    def _refine(self) -> None:
        """Converge the probes that finished training (LinearProbe.refine; logistic
        ones all at once, refine_many) and fit the family probes (core.engine.families);
        a stop between two, or inside a family's fit, leaves the rest for `resume=True`."""
        plan, r = self.plan, self.reader
        todo = [
            (cfg, self.res.probes[cfg.name])
            for cfg in plan.configs
            if cfg.refine
            and cfg.name in self.res.probes
            and (cfg.kind != "linear" or ProbeState(self.res.probes[cfg.name].state).trained)
            and not self.res.probes[cfg.name].record.refined
        ]
        if not todo:
            return
        device = self.device  # the final fit too: None is the CPU
        # rows where the cache keeps them for the batched logistic final fit and the
        # torch families; host copies (one per key) for ridge and sparse probes
        keys = [c.feature_key for c, _ in todo]
        got = r.features(plan.train, keys, plan.batch_size, device=device)
        held: dict[Any, Any] = {}

        def rows(cfg: ProbeConfig) -> Any:
            probe = self.res.probes[cfg.name]
            at = device if cfg.kind in TORCH_KINDS or type(probe) is LinearProbe else None
            if (cfg.feature_key, at) not in held:
                held[cfg.feature_key, at] = rows_on(got[cfg.feature_key], at)
            return held[cfg.feature_key, at]

        def inputs(cfg: ProbeConfig) -> dict[str, Any]:
            keep, y_idx = scored_labels(cfg, plan.train)
            x = family_inputs(cfg, rows(cfg), keep, plan.train)
            xv, yv = self.val_xy.get(cfg.name, (None, None))
            merge = cfg.validation == "split"
            groups, val_groups = cv_groups(cfg, plan.train, plan.val if merge else None)
            kw = dict(x=x, y_idx=y_idx, x_val=xv, y_val=yv, merge_validation=merge)
            return dict(kw, groups=groups, val_groups=val_groups)

        # All logistic probes of one shape in one solve: faster than probe by probe on
        # the CPU too (benchmarks/README.md, bench_probe_maths.py --final).
        together = [(c, p) for c, p in todo if type(p) is LinearProbe]
        if together:
            refine_many([p for _, p in together], (inputs(c) for c, _ in together), device=device)
        solved = {id(p) for _, p in together}
        for i, (cfg, probe) in enumerate(todo):
            if id(probe) not in solved:  # ridge probes: their targets are `y`
                kw = inputs(cfg)
                x, y = kw.pop("x"), kw.pop("y_idx")
                if isinstance(probe, FamilyProbe):  # a Stop may end its fit: nothing kept
                    kw["poll"] = self.checkpoint
                probe.refine(x, y, **kw, device=device)
                if isinstance(probe, FamilyProbe):
                    self._finish(cfg, probe, probe.state, probe.record.stop_reason, None)
            rec = probe.record
            self.bus.emit(ev.Refined(cfg.name, val_loss=rec.refined_val_loss, l2=rec.best_l2))
            self.progress("refine", rec.epochs_done, i + 1, len(todo), None)
            if id(probe) not in solved or i == len(todo) - 1:  # a stop after all events
                self.checkpoint()

    def _evaluate(self) -> None:
        plan, r = self.plan, self.reader
        ds = plan.eval_set
        probes = self.res.probes
        fitted = [c for c in plan.configs if c.name in probes and _scoreable(probes[c.name])]
        keys = sorted({c.feature_key for c in fitted})
        feats = r.features(ds, keys, plan.batch_size, self._on_batch("extract-eval", 0, len(ds)))
        metrics = {}
        for cfg in fitted:
            x = feats[cfg.feature_key]
            metrics[cfg.name] = evaluate_probe(
                self.res.probes[cfg.name], ds, x, plan.bootstrap, plan.seed
            )
        self.res.metrics = metrics


def _scoreable(probe: LinearProbe) -> bool:
    """A probe with weights to score: not a family probe still waiting for its fit."""
    return not isinstance(probe, FamilyProbe) or probe.fitted


def _release(groups: list[_Group]) -> None:
    """Stacks on an accelerator hand their probes host copies when a stage ends."""
    for group in groups:
        if group.stack is not None:
            group.stack.release()


def config_summary(cfg: ProbeConfig) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "kind": cfg.kind,
        "submodule": cfg.submodule,
        "pooling": cfg.pooling,
        "classes": [str(c) for c in cfg.classes or ()],
        "task": cfg.task,
        "patience": cfg.patience,
        "warmup_steps": cfg.warmup_steps,
        "max_steps": cfg.max_steps,
        "early_stopping": cfg.early_stopping,
        "eval_every": cfg.eval_every,
    }


def plan_started_event(plan: FitPlan) -> ev.FitStarted:
    steps_per_epoch = math.ceil(len(plan.train) / plan.batch_size)
    return ev.FitStarted(
        probes=[c.name for c in plan.configs],
        configs=[config_summary(c) for c in plan.configs],
        num_epoch=plan.num_epoch,
        n_train=len(plan.train),
        n_val=len(plan.val) if plan.val is not None else 0,
        n_eval=len(plan.eval_set) if plan.eval_set is not None else 0,
        batch_size=plan.batch_size,
        steps_per_epoch=steps_per_epoch,
        max_steps={  # a family probe's steps are its final fit's
            c.name: c.max_steps
            if c.kind != "linear"
            else min(c.max_steps, steps_per_epoch * plan.num_epoch)
            for c in plan.configs
        },
        phases=planned_phases(plan),
    )


def planned_phases(plan: FitPlan) -> list[dict[str, Any]]:
    """The phases this plan will go through, in order, with what each counts (the
    `phase` values of its `batch` events), so a display can show all of them at once.
    Phases may end early (a Stop, probes that stop early); none is added later."""
    n_train = len(plan.train)
    out = []
    if plan.val is not None and any(c.validation == "split" for c in plan.configs):
        out.append({"phase": "extract-val", "total": len(plan.val), "unit": "examples"})
    out.append({"phase": "extract-train", "total": n_train, "unit": "examples"})
    if plan.num_epoch > 1:
        out.append(
            {"phase": "train", "total": n_train, "unit": "examples", "epochs": plan.num_epoch - 1}
        )
    refined = sum(1 for c in plan.configs if c.refine)
    if refined:
        out.append({"phase": "refine", "total": refined, "unit": "probes"})
    if plan.eval_set is not None:
        out.append({"phase": "extract-eval", "total": len(plan.eval_set), "unit": "examples"})
    if plan.control:
        out.append({"phase": "control", "total": None, "unit": "examples"})
    for name in plan.baselines:
        out.append({"phase": f"baseline-{name}", "total": None, "unit": "examples"})
    return out
