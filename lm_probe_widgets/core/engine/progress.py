"""Progress displays are event subscribers. The console meter lives here; a
notebook extension may register a richer factory without core knowing of it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from . import events as ev

ProgressFactory = Callable[[Any], Any]
_factory: ProgressFactory | None = None


def set_progress_factory(factory: ProgressFactory | None) -> ProgressFactory | None:
    """Make `factory(runner)` the display for `progress="auto"`; returns the previous one."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def get_progress_factory() -> ProgressFactory | None:
    return _factory


def make_progress(progress: Any, runner: Any) -> Any:
    """Resolve fit_probes' `progress` argument to a subscriber (or None)."""
    if progress is None or progress is False:
        return None
    if progress == "auto":
        return _factory(runner) if _factory is not None else ConsoleProgress()
    if progress == "console" or progress is True:
        return ConsoleProgress()
    if callable(progress):
        return progress(runner) if isinstance(progress, type) or _is_factory(progress) else progress
    raise ValueError("progress must be 'auto', 'console', None, or a factory(runner)")


def _is_factory(fn: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return len(params) == 1 and next(iter(params)) == "runner"


class ConsoleProgress:
    """A one-line meter on stderr (redrawn at most 10 times a second), and a line
    per probe when it stops — like the original lm_probe's log, but honest."""

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self._last = 0.0
        self._phase = ""
        self._done = 0
        self._total = 0
        self._tty = getattr(self.stream, "isatty", lambda: False)()

    def __call__(self, event: ev.Event) -> None:
        d = event.data
        cr = "\r" if self._tty else ""
        if event.kind == ev.FIT_STARTED:
            self._write(
                f"fitting {len(d['probes'])} probe(s) on {d['n_train']} training examples "
                f"({d['n_val']} for validation), {d['num_epoch']} epoch(s), "
                f"batch {d['batch_size']}\n"
            )
        elif event.kind == ev.BATCH:
            self._phase, self._done, self._total = (
                d["phase"],
                d["examples_done"],
                d["examples_total"],
            )
            now = time.monotonic()
            if self._tty and now - self._last >= self.min_interval:
                self._last = now
                self._write(
                    f"\r{self._phase:<14} {self._done:>6}/{self._total:<6} {d['seconds']:6.1f}s",
                    flush=True,
                )
        elif event.kind == ev.STOPPED:
            self._write(f"{cr}probe {event.probe!r} stopped at step {d['step']}: {d['reason']}\n")
        elif event.kind == ev.ERROR:
            self._write(f"\nerror in {event.probe or 'fit'}: {d['message']}\n")
        elif event.kind == ev.INTERRUPTED:
            self._write(f"\n{d['message']}\n")
        elif event.kind == ev.FIT_FINISHED:
            self._write(f"{cr}fit {d['reason']} in {d['seconds']:.1f}s\n")

    def _write(self, text: str, flush: bool = True) -> None:
        self.stream.write(text)
        if flush:
            self.stream.flush()

    def close(self) -> None:
        pass
