"""FitSession: everything around one fit that is not the fit itself.

The display subscribed and closed, the stop flag cleared and polled, torch's thread
count set and put back, Ctrl-C deferred to the next batch boundary, and the events
that open and close the fit (started; error or interrupted; finished), whatever
happens inside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from . import events as ev
from .fit import plan_started_event
from .plan import FitPlan
from .states import FitOutcome
from .stop import StopFlag, deferred_interrupt


class FitSession:
    """One fit's surroundings: `run(plan, body, on_error)` runs `body` inside them."""

    def __init__(self, bus: Any, stop: StopFlag, display: Any, threads: int | None) -> None:
        self.bus, self.stop, self.display, self.threads = bus, stop, display, threads

    def run(self, plan: FitPlan, body: Callable[[], str], on_error: Callable[[], None]) -> str:
        """`body()`'s outcome; `on_error()` runs before the error event when it raises."""
        display = self.display
        unsubscribe = self.bus.subscribe(display) if display is not None else None
        self.stop.clear()
        self.stop.poll = getattr(display, "poll", None)
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        started = time.monotonic()
        self.bus.publish(ev.FIT_STARTED, **plan_started_event(plan))
        outcome = FitOutcome.ERROR
        try:
            with deferred_interrupt(self.stop):
                outcome = body()
        except BaseException as e:
            on_error()
            interrupted = isinstance(e, KeyboardInterrupt)
            outcome = FitOutcome.INTERRUPTED if interrupted else FitOutcome.ERROR
            message = (
                "fitting interrupted mid-batch: the runner is as it was before this call"
                if interrupted
                else f"{type(e).__name__}: {e} (the runner is as it was before this call)"
            )
            self.bus.publish(ev.INTERRUPTED if interrupted else ev.ERROR, message=message)
            raise
        finally:
            seconds = time.monotonic() - started
            self.bus.publish(ev.FIT_FINISHED, reason=outcome, seconds=seconds)
            torch.set_num_threads(old_threads)
            self.stop.poll = None
            if unsubscribe is not None:
                unsubscribe()
            close = getattr(display, "close", None)
            if close is not None:
                close()
        return outcome
