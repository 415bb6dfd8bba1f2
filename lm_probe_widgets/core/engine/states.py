"""Every state a probe, a runner, a fit call or a phase of it can be in: one
vocabulary, defined here and nowhere else.

All are `str` enums, so a state compares equal to its plain string (`"finished"`),
travels in events and JSON as that string, and the display layer
(`display/states.py`) keys its words and colours on the same values. The front end
takes the same names from `js/shared.js` (`STATES`), which a test checks against
`js_state_names()`.
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


class LiveState(str, Enum):
    """The states a progress display has beyond the above: a probe before its first
    step and a fit before its first event wait; a fit or phase in progress runs; a
    phase that is through is done. (A probe whose fit raised shows FitOutcome.ERROR.)"""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"

    def __str__(self) -> str:
        return self.value


def js_state_names() -> dict[str, str]:
    """Every state name the front end compares against, keyed as `js/shared.js`'s
    STATES object spells them (upper-case member names)."""
    out: dict[str, str] = {}
    for enum in (ProbeState, RunnerState, FitOutcome, LiveState):
        for member in enum:
            if out.setdefault(member.name, member.value) != member.value:
                raise ValueError(f"{member.name} names two different states")
    return out
