"""Events the runner publishes while fitting: one typed vocabulary, defined here.

Everything that shows progress (console meter, logging, notebook widgets) is a
subscriber; the runner never knows who listens. Each kind of event is a frozen
dataclass whose fields are the facts it carries, so an emit site cannot leave one out
or misspell one, and `Event.data` is the one plain-dict form of an event (for JSON,
logs and the command line).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .states import FitOutcome, ProbeState

log = logging.getLogger("lm_probe_widgets")

# Kinds, in the order a normal fit emits them.
FIT_STARTED = "fit_started"
BATCH = "batch"
STEP = "step"
EVALUATED = "evaluated"
STOPPED = "stopped"
PROBE_FINISHED = "probe_finished"
REFINED = "refined"
FIT_FINISHED = "fit_finished"  # once, after everything the call does
ERROR = "error"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Event:
    """Base of every event: `kind` names it, `probe` is the probe it is about (None:
    the whole call). The facts of each kind are keyword-only: an emit site names them."""

    kind: ClassVar[str] = ""
    probe: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The event's facts as a plain dict (every field but `probe`)."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "probe"
        }


@dataclass(frozen=True, kw_only=True)
class FitStarted(Event):
    """A fit (or a long call through `track`, then named by `task`) begins."""

    kind: ClassVar[str] = FIT_STARTED
    probes: list[str] = field(default_factory=list)
    configs: list[dict[str, Any]] = field(default_factory=list)  # config_summary per probe
    num_epoch: int = 0
    n_train: int = 0
    n_val: int = 0
    n_eval: int = 0
    batch_size: int = 0
    steps_per_epoch: int = 0
    max_steps: dict[str, int] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)  # {"phase", "total", "unit"}
    task: str | None = None  # a call other than a fit: its name
    what: str | None = None  # ... and what it counts ("54 steps")


@dataclass(frozen=True, kw_only=True)
class Batch(Event):
    """A batch of a phase is through. `traced`: examples of it the model ran on (0
    when cache or store served them); `detail`: the inner phase of a relayed fit."""

    kind: ClassVar[str] = BATCH
    phase: str = ""
    epoch: int = 0
    examples_done: int = 0
    examples_total: int = 0
    tokens: int = 0
    real_tokens: int = 0
    traced: int = 0
    seconds: float = 0.0
    detail: str | None = None

    def relayed(self, phase: str) -> Batch:
        """This batch of a nested fit, shown as part of the outer call's `phase`."""
        return dataclasses.replace(self, probe=None, detail=self.phase, phase=phase)


@dataclass(frozen=True, kw_only=True)
class Step(Event):
    kind: ClassVar[str] = STEP
    step: int = 0
    epoch: int = 0
    examples_seen: int = 0
    train_loss: float | None = None


@dataclass(frozen=True, kw_only=True)
class Evaluated(Event):
    kind: ClassVar[str] = EVALUATED
    step: int = 0
    val_loss: float | None = None
    best_val_loss: float | None = None
    best_step: int | None = None
    improved: bool = False


@dataclass(frozen=True, kw_only=True)
class Stopped(Event):
    """A probe stopped before its last planned step, or at it (`stop_kind`:
    early_stopping, max_steps, user, interrupted)."""

    kind: ClassVar[str] = STOPPED
    step: int = 0
    reason: str = ""
    stop_kind: str = ""
    best_step: int | None = None


@dataclass(frozen=True, kw_only=True)
class ProbeFinished(Event):
    kind: ClassVar[str] = PROBE_FINISHED
    state: str = ProbeState.FINISHED.value
    reason: str = ""
    best_step: int | None = None
    steps: int = 0


@dataclass(frozen=True, kw_only=True)
class Refined(Event):
    """The converged full-batch fit a probe now uses."""

    kind: ClassVar[str] = REFINED
    val_loss: float | None = None
    l2: float | None = None


@dataclass(frozen=True, kw_only=True)
class FitFinished(Event):
    kind: ClassVar[str] = FIT_FINISHED
    reason: str = FitOutcome.COMPLETED.value
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    kind: ClassVar[str] = ERROR
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class Interrupted(Event):
    kind: ClassVar[str] = INTERRUPTED
    message: str = ""


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        FitStarted,
        Batch,
        Step,
        Evaluated,
        Stopped,
        ProbeFinished,
        Refined,
        FitFinished,
        Error,
        Interrupted,
    )
}


def make_event(kind: str, probe: str | None = None, data: dict[str, Any] | None = None) -> Event:
    """The typed event of `kind` from its plain-dict form (`Event.data`); an unknown
    kind or field raises ValueError."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(KINDS)}")
    facts = dict(data or {})
    if cls is Stopped and "kind" in facts:  # tolerate the older name of stop_kind
        facts["stop_kind"] = facts.pop("kind")
    names = {f.name for f in dataclasses.fields(cls)} - {"probe"}
    unknown = sorted(set(facts) - names)
    if unknown:
        raise ValueError(f"{kind} events have no field(s) {unknown}; they have {sorted(names)}")
    return cls(probe, **facts)


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan events out to subscribers; a failing subscriber is logged, never fatal.

    A subscriber that raises KeyboardInterrupt (a display relaying Ctrl-C) sets
    `interrupted` instead: the fit stops at its next batch boundary, where it can
    resume from exactly that point."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.interrupted = False

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add `fn`; returns a function that removes it again."""
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Give `event` to every subscriber."""
        for fn in list(self._subscribers):
            try:
                fn(event)
            except KeyboardInterrupt:
                self.interrupted = True
            except Exception:  # a broken display must not kill a long fit
                log.exception("event subscriber %r failed on %s", fn, event.kind)

    def publish(self, kind: str, probe: str | None = None, /, **data: Any) -> None:
        """`emit` the typed event of `kind` with these fields (checked)."""
        self.emit(make_event(kind, probe, data))
