"""The words and colours of every state a probe or a fit can be in, and the names of
the phases a fit goes through: defined once, here.

The live widgets receive these tables as data (a synced trait), the static snapshots
and HTML reprs read them directly, so a state looks and reads the same everywhere.
Colours are CSS values that follow JupyterLab's theme variables, then VS Code's, then
a fallback readable on light and dark backgrounds. The state names are core.engine.states'
enums (ProbeState, FitOutcome, and LiveState for a display's waiting, running and
done). Only the standard library is used.
"""

from __future__ import annotations

from typing import Any

from ..core.engine.states import FitOutcome, LiveState, ProbeState, RunnerState

_GREEN = "var(--jp-success-color1, var(--vscode-testing-iconPassed, #388e3c))"
_TEAL = "#0097a7"  # early stopping: a success of its own kind; no theme variable for it
_AMBER = "var(--jp-warn-color1, var(--vscode-editorWarning-foreground, #f57c00))"
_BROWN = "#8d6e63"  # interrupted (Ctrl-C / kernel interrupt): neutral, not an error
_RED = "var(--jp-error-color1, var(--vscode-errorForeground, #d32f2f))"
_BLUE = "var(--jp-brand-color1, var(--vscode-focusBorder, #1976d2))"
_GREY = "var(--jp-ui-font-color2, var(--vscode-descriptionForeground, #757575))"

ERROR = FitOutcome.ERROR.value  # a probe whose fit raised shows the fit's outcome

# End states reached before a probe's last planned step: its curve ends in a cross.
ENDED_EARLY = (
    ProbeState.EARLY_STOPPED.value,
    ProbeState.STOPPED.value,
    ProbeState.INTERRUPTED.value,
    ERROR,
)

# Probe states (core.engine.states.ProbeState, which the runner's probe_finished events carry,
# plus "waiting" before a probe's first step and "error").
# label: what a person reads; color: CSS colour; final: an end state.
PROBE_STATES: dict[str, dict[str, Any]] = {
    LiveState.WAITING.value: {"label": "waiting", "color": _GREY, "final": False},
    ProbeState.TRAINING.value: {"label": "training", "color": _BLUE, "final": False},
    ProbeState.FINISHED.value: {"label": "finished", "color": _GREEN, "final": True},
    ProbeState.EARLY_STOPPED.value: {"label": "stopped early", "color": _TEAL, "final": True},
    ProbeState.STOPPED.value: {"label": "stopped by you", "color": _AMBER, "final": True},
    ProbeState.INTERRUPTED.value: {"label": "interrupted", "color": _BROWN, "final": True},
    ERROR: {"label": "error", "color": _RED, "final": True},
}

# Fit states: "running" until the one fit_finished event, then its reason.
FIT_STATES: dict[str, dict[str, Any]] = {
    LiveState.WAITING.value: {"label": "waiting for fit_probes…", "color": _GREY, "final": False},
    LiveState.RUNNING.value: {"label": "fitting", "color": _BLUE, "final": False},
    FitOutcome.COMPLETED.value: {"label": "fit completed", "color": _GREEN, "final": True},
    FitOutcome.STOPPED.value: {"label": "fit stopped by you", "color": _AMBER, "final": True},
    FitOutcome.INTERRUPTED.value: {"label": "fit interrupted", "color": _BROWN, "final": True},
    FitOutcome.ERROR.value: {"label": "fit failed", "color": _RED, "final": True},
}

# Phase rows ("running" while batches of the phase arrive, then "done", or the fit's
# end state if the fit ended inside it).
PHASE_STATES: dict[str, dict[str, Any]] = {
    LiveState.RUNNING.value: {"label": "running", "color": _BLUE, "final": False},
    LiveState.DONE.value: {"label": "done", "color": _GREEN, "final": True},
    ProbeState.STOPPED.value: PROBE_STATES[ProbeState.STOPPED.value],
    ProbeState.INTERRUPTED.value: PROBE_STATES[ProbeState.INTERRUPTED.value],
    ERROR: PROBE_STATES[ERROR],
}

# The badge class ("kind") of a probe's or a runner's state in the static reprs.
STATE_KIND: dict[str, str] = {
    ProbeState.NOT_FITTED.value: "idle",
    ProbeState.TRAINING.value: "busy",
    RunnerState.FITTING.value: "busy",
    ProbeState.FINISHED.value: "good",
    RunnerState.FITTED.value: "good",
    ProbeState.EARLY_STOPPED.value: "good",
    ProbeState.STOPPED.value: "warn",
    ProbeState.INTERRUPTED.value: "warn",
    ERROR: "bad",
}

# Verdicts of a paired comparison (core.methods.compare): the validity card colours each
# reading by the word it starts with.
VERDICTS: dict[str, dict[str, Any]] = {
    "beats": {"label": "beats", "color": _GREEN},
    "ties": {"label": "ties", "color": _GREY},
    "loses": {"label": "loses to", "color": _RED},
}


def reading_verdict(reading: str) -> str | None:
    """The verdict a validity reading states ("beats ...", "ties with ...", "loses to
    ..."), or None for a reading that compares nothing."""
    first = reading.split(" ", 1)[0]
    return first if first in VERDICTS else None


FINAL_PROBE_STATES = frozenset(k for k, v in PROBE_STATES.items() if v["final"])

# What each phase of a fit is called on screen, and what its counts count.
PHASES: dict[str, dict[str, str | None]] = {
    "extract-val": {"label": "validation activations", "unit": "examples"},
    "extract-train": {"label": "first epoch (model pass)", "unit": "examples"},
    "train": {"label": "training, later epochs", "unit": "examples"},
    "refine": {"label": "final fit", "unit": "probes"},
    "extract-eval": {"label": "test-set activations", "unit": "examples"},
    "control": {"label": "control probes", "unit": "examples"},
    "bootstrap": {"label": "bootstrap intervals", "unit": None},
    "baseline-majority": {"label": "baseline: majority class", "unit": "examples"},
    "baseline-embeddings": {"label": "baseline: input embeddings", "unit": "examples"},
    "baseline-random_init": {"label": "baseline: random-init model", "unit": "examples"},
}


def phase_label(phase: str) -> str:
    """A readable name for any phase string, known or not."""
    known = PHASES.get(phase)
    if known is not None:
        return str(known["label"])
    if phase.startswith("baseline-"):
        return "baseline: " + phase[len("baseline-") :].replace("_", " ").replace("-", " ")
    return phase.replace("_", " ").replace("-", " ")


def phase_unit(phase: str, detail: str | None = None) -> str | None:
    """What `examples_done` counts: "probes" for the final fit, else examples (None:
    a phase whose unit is not known; only the counts are shown)."""
    inner = detail or phase
    known = PHASES.get(inner) or PHASES.get(phase)
    if known is None:
        return "examples"
    return known["unit"]


def kept_loss_words(refined: bool) -> str:
    """The name of the one loss a probe's row and card show for its kept weights: the
    final fit's cross-validated loss (on the training data, not the validation slice)
    once it reports, the best step's validation loss until then."""
    return "CV loss (final fit)" if refined else "best-step val loss"


def probe_state(state: str) -> dict[str, Any]:
    return PROBE_STATES.get(state, {"label": state, "color": _GREY, "final": True})


def fit_state(state: str) -> dict[str, Any]:
    return FIT_STATES.get(state, {"label": state, "color": _GREY, "final": True})


def styles() -> dict[str, Any]:
    """Everything above as JSON for the front end (one synced trait)."""
    return {
        "probe": PROBE_STATES,  # keys are plain strings: JSON for the front end
        "fit": FIT_STATES,
        "phase": PHASE_STATES,
    }
