"""The states a probe and a runner can be in: one vocabulary, defined here.

Both are `str` enums, so a state compares equal to its plain string (`"finished"`),
travels in events and JSON as that string, and the display layer
(`display/states.py`) keys its words and colours on the same values.
"""

from __future__ import annotations

from enum import Enum


class ProbeState(str, Enum):
    NOT_FITTED = "not fitted"
    TRAINING = "training"
    FINISHED = "finished"  # trained every epoch (or reached max_steps)
    EARLY_STOPPED = "early-stopped"  # validation loss stopped improving
    STOPPED = "stopped"  # a Stop: resumable
    INTERRUPTED = "interrupted"  # a Ctrl-C: resumable

    def __str__(self) -> str:
        return self.value

    @property
    def resumable(self) -> bool:
        return self in (ProbeState.STOPPED, ProbeState.INTERRUPTED)

    @property
    def trained(self) -> bool:
        """Training ended on its own: the final fit may run."""
        return self in (ProbeState.FINISHED, ProbeState.EARLY_STOPPED)


class RunnerState(str, Enum):
    NOT_FITTED = "not fitted"
    FITTING = "fitting"
    FITTED = "fitted"  # the whole fit_probes call completed
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


class FitOutcome(str, Enum):
    """How a fit_probes call ended (the `fit_finished` event's reason)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value
