"""StopFlag: how a Stop button, `request_stop` or a Ctrl-C reach a running fit.

The fit loop reads the flag at each batch boundary, where the cursor says exactly
what is done, so a stopped fit resumes to the result it would have reached.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ProbeError


class StopFlag:
    """A Stop (`request`) and a first Ctrl-C (`interrupt`) asked of the running fit;
    `poll`, set by a display while a fit runs, lets it deliver a button's click first.
    A subscriber of `bus` that relayed Ctrl-C counts as an interrupt too."""

    def __init__(self, bus: Any = None) -> None:
        self.bus = bus
        self.poll: Callable[[], None] | None = None
        self.requested = False
        self.ctrl_c = False

    def request(self) -> None:
        """Stop cleanly after the current batch (thread-safe: one attribute write)."""
        self.requested = True

    def interrupt(self) -> None:
        self.ctrl_c = True

    @property
    def interrupted(self) -> bool:
        return self.ctrl_c or bool(getattr(self.bus, "interrupted", False))

    def clear(self) -> None:
        """A new fit starts with nothing asked."""
        self.requested = self.ctrl_c = False
        if self.bus is not None:
            self.bus.interrupted = False


@contextlib.contextmanager
def deferred_interrupt(stop: StopFlag) -> Iterator[None]:
    """A first Ctrl-C asks the fit to stop at the next batch boundary (where it can
    resume exactly); a second one interrupts at once. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.ctrl_c:
            raise KeyboardInterrupt
        stop.interrupt()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def one_fit_at_a_time(lock: threading.Lock) -> Iterator[None]:
    """A second fit on the same runner is refused at once, saying what to do."""
    if not lock.acquire(blocking=False):
        raise ProbeError(
            "another fit_probes is running on this runner; wait for it to finish, or "
            "call runner.request_stop() first"
        )
    try:
        yield
    finally:
        lock.release()
