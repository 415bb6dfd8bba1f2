"""How metrics columns are shown to people: which ones by default, under which
heading, with how many decimals. Used by the HTML repr, the metrics table widget and
the static snapshots, so they agree. `runner.metrics` itself is never changed.

Only the standard library is imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

DECIMALS = 3

# The compact view: the original lm_probe's metrics, with intervals, then the state.
COMPACT = ("accuracy", "f1", "matthews", "loss", "state")
# References shown in the compact view whenever the metrics carry them.
REFERENCE_COLUMNS = ("control_accuracy", "selectivity")
REFERENCE_PREFIXES = ("baseline_",)
CI_SUFFIXES = ("_low", "_high")

LABELS = {
    "probe": "probe",
    "accuracy": "accuracy",
    "f1": "F1 (macro)",
    "matthews": "Matthews corr.",
    "loss": "test log-loss",
    "state": "state",
    "precision": "precision (macro)",
    "recall": "recall (macro)",
    "roc_auc": "ROC AUC",
    "val_loss": "val loss (kept weights)",
    "control_accuracy": "control accuracy",
    "selectivity": "selectivity",
    "code_length_bits": "online code length (bits)",
    "compression": "compression",
    "best_step": "best step",
    "examples_seen": "examples seen",
    "stop_reason": "why it stopped",
}


def column_label(name: str) -> str:
    """The heading a person reads; the raw column name stays in exports and tooltips."""
    if name in LABELS:
        return LABELS[name]
    if name.startswith("baseline_"):
        return name[len("baseline_") :].replace("_", " ") + " baseline"
    for suffix, word in (("_low", "low"), ("_high", "high")):
        if name.endswith(suffix) and name[: -len(suffix)] in LABELS:
            return f"{LABELS[name[: -len(suffix)]]} ({word})"
    return name.replace("_", " ")


def is_reference(name: str) -> bool:
    return name in REFERENCE_COLUMNS or name.startswith(REFERENCE_PREFIXES)


def compact_columns(names: Iterable[str]) -> list[str]:
    """The columns of the compact view, in display order, among `names`."""
    names = [str(n) for n in names]
    have = set(names)
    out = [c for c in COMPACT if c in have]
    out += [c for c in REFERENCE_COLUMNS if c in have]
    out += [c for c in names if c.startswith(REFERENCE_PREFIXES) and not c.endswith(CI_SUFFIXES)]
    return out


def ci_columns(name: str, names: Sequence[str]) -> tuple[str, str] | None:
    """(low, high) interval columns of `name`, when the metrics carry both."""
    lo, hi = f"{name}{CI_SUFFIXES[0]}", f"{name}{CI_SUFFIXES[1]}"
    return (lo, hi) if lo in names and hi in names else None


def finite(v: Any) -> float | None:
    """A finite float, or None (NaN, inf, None, bools, strings): the one rule for
    "is this a number to show or send" (JSON has no NaN)."""
    if v is None or isinstance(v, (bool, str)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_number(v: Any, decimals: int = DECIMALS, dash: str = "–") -> str:
    """Integers as integers; other numbers with `decimals` decimals (3: 0.812, 12.500);
    magnitudes below 0.001 in exponent form so they never read as zero."""
    if isinstance(v, bool):
        return str(v)
    kind = getattr(getattr(v, "dtype", None), "kind", "")
    if isinstance(v, int) or kind in ("i", "u"):
        return str(int(v))
    f = finite(v)
    if f is None:
        return dash if v is None or not isinstance(v, str) else str(v)
    if f != 0 and abs(f) < 10**-decimals:
        return f"{f:.2e}"
    return f"{f:.{decimals}f}"


def format_ci(lo: Any, hi: Any, decimals: int = DECIMALS) -> str:
    a, b = finite(lo), finite(hi)
    if a is None or b is None:
        return ""
    return f"[{format_number(a, decimals)}, {format_number(b, decimals)}]"
