"""The console meter worded for the command line, with plain progress lines when the
output is a file or a pipe.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

from .errors import cli_wording


class CLIProgress:
    """The console meter, worded for the command line; with output redirected (a log
    file, a pipe: no meter to redraw) it still says where the fit is: a line when a
    phase starts, and one every `every` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        from ..core.engine.progress import ConsoleProgress

        self._console = ConsoleProgress()
        self._tty = self._console._tty
        self.every = every
        self._phase: str | None = None
        self._last = 0.0

    def __call__(self, event: Any) -> None:
        from ..core.engine import events as ev

        if isinstance(event, ev.Error | ev.Interrupted):
            event = dataclasses.replace(event, message=cli_wording(event.message))
        self._console(event)
        if self._tty or not isinstance(event, ev.Batch):
            return
        now = time.monotonic()
        if event.phase != self._phase or now - self._last >= self.every:
            self._phase, self._last = event.phase, now
            sys.stderr.write(
                f"{event.phase:<14} {event.examples_done:>6}/{event.examples_total:<6} "
                f"{event.seconds:6.1f}s\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        self._console.close()
