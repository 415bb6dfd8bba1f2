"""Events the runner publishes while fitting.

Everything that shows progress (console meter, logging, notebook widgets) is a
subscriber; the runner never knows who listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lm_probe_widgets")

# Kinds, in the order a normal fit emits them.
FIT_STARTED = "fit_started"  # data: probes, num_epoch, n_train, n_val, n_eval, batch_size, ...
BATCH = "batch"  # data: epoch, examples_done, examples_total, tokens, real_tokens, phase,
#                 traced (examples the model ran on: 0 when cache or store served them)
STEP = "step"  # probe; data: step, epoch, examples_seen, train_loss
EVALUATED = "evaluated"  # probe; data: step, val_loss, best_val_loss, best_step
STOPPED = "stopped"  # probe; data: step, reason, best_step (early stop / max steps / user)
PROBE_FINISHED = "probe_finished"  # probe; data: state, reason, best_step, steps
REFINED = "refined"  # probe; data: val_loss, l2 (the converged full-batch fit in use)
FIT_FINISHED = "fit_finished"  # data: reason, seconds; once, after everything the call does
ERROR = "error"  # probe may be None; data: message
INTERRUPTED = "interrupted"  # data: message


@dataclass(frozen=True)
class Event:
    kind: str
    probe: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


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

    def publish(self, kind: str, probe: str | None = None, /, **data: Any) -> None:
        event = Event(kind, probe, data)
        for fn in list(self._subscribers):
            try:
                fn(event)
            except KeyboardInterrupt:
                self.interrupted = True
            except Exception:  # a broken display must not kill a long fit
                log.exception("event subscriber %r failed on %s", fn, kind)
