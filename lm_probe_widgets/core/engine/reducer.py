"""One reducer from events to the state of a fit call, its phases and its probes.

The console meter, the progress widget and the early-stopping monitor all read a
`FitTracker`, so each rule is written once: a probe waits until its first step; a
phase runs while its batches arrive and is done when another begins; and when the
call ends, a phase still running takes the call's end state and a probe still
training becomes stopped, interrupted or error (`FitTracker.finish`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from .states import FitOutcome, LiveState, ProbeState

# The end states a probe_finished event may carry; anything else reads as finished.
_FINISHED = frozenset(
    s.value
    for s in (
        ProbeState.FINISHED,
        ProbeState.EARLY_STOPPED,
        ProbeState.STOPPED,
        ProbeState.INTERRUPTED,
        FitOutcome.ERROR,
    )
)


def _finite(v: Any) -> float | None:
    """A loss as a float, or None for a missing or non-finite one (JSON has no NaN)."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


@dataclass
class ProbeTrack:
    """What the events said about one probe."""

    name: str
    submodule: str = ""
    max_steps: int = 0  # planned steps (0: not known)
    warmup_steps: int = 0
    patience: int = 0
    eval_every: int = 1
    early_stopping: bool = True
    state: str = LiveState.WAITING.value
    step: int = 0
    epoch: int = 0
    train_loss: float | None = None
    val_loss: float | None = None  # the latest evaluation's
    best_val_loss: float | None = None
    best_step: int | None = None
    reason: str = ""  # the latest stop or finish reason, or the error message
    stop_step: int | None = None  # where the curve ends, once it ended
    stop_reason: str = ""
    stop_kind: str = ""  # early_stopping, max_steps, user, interrupted
    refined: bool = False
    refined_val_loss: float | None = None  # the final fit's (cross-validated) loss
    l2: float | None = None

    @property
    def running(self) -> bool:
        """Not ended yet (waiting or training)."""
        return self.state in (LiveState.WAITING, ProbeState.TRAINING)


@dataclass
class PhaseTrack:
    """One phase of the call: counts so far, across its epochs and relayed stages."""

    key: str
    state: str = LiveState.RUNNING.value
    detail: str | None = None  # the stage of a relayed (control, baseline) fit
    epoch: int = 0
    done: int = 0
    total: int = 0
    units: float = 0.0  # cumulative, across the phase's epochs and stages
    segment: tuple[str | None, int] | None = None
    offset: float = 0.0


@dataclass
class FitTrack:
    """The call as a whole: waiting, running, then its FitOutcome."""

    state: str = LiveState.WAITING.value
    phase: str = ""  # the phase of the latest batch
    epoch: int = 0
    num_epoch: int = 0
    n_train: int = 0
    n_val: int = 0
    n_eval: int = 0
    task: str = ""  # a call other than a fit (core.engine.progress.track)
    what: str = ""
    probes: int = 0
    batch_size: int = 0
    planned: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)  # by event kind: error, interrupted


class FitTracker:
    """Apply events in order; read `fit`, `phases` and `probes`."""

    def __init__(self) -> None:
        self.fit = FitTrack()
        self.phases: dict[str, PhaseTrack] = {}
        self.probes: dict[str, ProbeTrack] = {}

    def apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.FitStarted):
            self.start(event)
        elif isinstance(event, ev.Batch):
            self.batch(event)
        elif isinstance(event, ev.FitFinished):
            self.finish(event.reason)
        elif event.probe is not None and event.probe in self.probes:
            self._probe(self.probes[event.probe], event)
        elif isinstance(event, ev.Error | ev.Interrupted):
            self.fit.messages[event.kind] = event.message

    def start(self, e: ev.FitStarted) -> None:
        configs = {c["name"]: c for c in e.configs}
        self.probes = {}
        for name in e.probes:
            cfg = configs.get(name, {})
            self.probes[name] = ProbeTrack(
                name=str(name),
                submodule=str(cfg.get("submodule", name)),
                max_steps=int(e.max_steps.get(name, cfg.get("max_steps", 0)) or 0),
                warmup_steps=int(cfg.get("warmup_steps", 0) or 0),
                patience=int(cfg.get("patience", 0) or 0),
                eval_every=int(cfg.get("eval_every", 1) or 1),
                early_stopping=bool(cfg.get("early_stopping", True)),
            )
        self.phases = {}
        self.fit = FitTrack(
            state=LiveState.RUNNING.value,
            num_epoch=int(e.num_epoch or 0),
            n_train=int(e.n_train or 0),
            n_val=int(e.n_val or 0),
            n_eval=int(e.n_eval or 0),
            task=str(e.task or ""),
            what=str(e.what or ""),
            probes=len(e.probes),
            batch_size=int(e.batch_size or 0),
            planned=list(e.phases),
        )

    def batch(self, e: ev.Batch) -> PhaseTrack:
        """Count a batch in its phase (which is now the running one); returns it."""
        key = str(e.phase)
        detail = str(e.detail) if e.detail else None
        epoch = int(e.epoch or 0)
        done, total = int(e.examples_done), int(e.examples_total)
        for other in self.phases.values():
            if other.key != key and other.state == LiveState.RUNNING:
                other.state = LiveState.DONE.value
        ph = self.phases.get(key)
        if ph is None:
            ph = self.phases[key] = PhaseTrack(key=key, epoch=epoch, total=total)
        segment = (detail, epoch)
        if ph.segment != segment or done < ph.done:  # a new epoch or stage counts on
            if ph.segment is not None:
                ph.offset += ph.done
            ph.segment = segment
        ph.state, ph.detail, ph.epoch, ph.done, ph.total = (
            LiveState.RUNNING.value,
            detail,
            epoch,
            done,
            total,
        )
        ph.units = ph.offset + done
        self.fit.phase, self.fit.epoch = key, epoch
        return ph

    def finish(self, reason: str) -> None:
        """The call ended with `reason` (a FitOutcome; anything else reads as error)."""
        known = {o.value for o in FitOutcome}
        outcome = FitOutcome(reason) if reason in known else FitOutcome.ERROR
        self.fit.state = outcome.value
        phase_end = LiveState.DONE if outcome == FitOutcome.COMPLETED else outcome
        for ph in self.phases.values():
            if ph.state == LiveState.RUNNING:
                ph.state = phase_end.value
        probe_end = (
            outcome if outcome in (FitOutcome.ERROR, FitOutcome.INTERRUPTED) else ProbeState.STOPPED
        )
        for p in self.probes.values():
            if p.running:  # never reached a finish event
                p.state = probe_end.value

    def _probe(self, p: ProbeTrack, e: ev.Event) -> None:
        if isinstance(e, ev.Step):
            if p.state == LiveState.WAITING:
                p.state = ProbeState.TRAINING.value
            p.step, p.epoch, p.train_loss = int(e.step), int(e.epoch), _finite(e.train_loss)
        elif isinstance(e, ev.Evaluated):
            if p.state == LiveState.WAITING:
                p.state = ProbeState.TRAINING.value
            p.val_loss = _finite(e.val_loss)
            p.best_val_loss = _finite(e.best_val_loss)
            p.best_step = e.best_step
        elif isinstance(e, ev.Stopped):
            p.reason = p.stop_reason = str(e.reason)
            p.stop_step, p.stop_kind = int(e.step), str(e.stop_kind)
            if e.best_step is not None:
                p.best_step = e.best_step
        elif isinstance(e, ev.ProbeFinished):
            p.state = e.state if e.state in _FINISHED else ProbeState.FINISHED.value
            p.reason = str(e.reason or p.reason)
            if e.best_step is not None:
                p.best_step = e.best_step
            p.step = int(e.steps)
            if p.stop_step is None:
                p.stop_step, p.stop_reason = int(e.steps), str(e.reason)
        elif isinstance(e, ev.Refined):
            p.refined = True
            p.refined_val_loss, p.l2 = _finite(e.val_loss), _finite(e.l2)
        elif isinstance(e, ev.Error):
            p.state = FitOutcome.ERROR.value
            p.reason = p.stop_reason = e.message
