"""How metrics columns are shown to people: which ones by default, under which
heading, with how many decimals, and which value of a column is the best one (the
direction of "better", the columns that are not ranked). Used by the HTML repr, the
metrics table widget (whose browser view receives the directions and best cells as
data) and the static snapshots, so they agree. `runner.metrics` itself is never
changed.

Only the standard library is imported (a baseline column's name is read by the
core's rule, imported when one is met: a metrics frame, so numpy and pandas, exists).
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
    "recall_at_1fpr": "recall at 1% FPR",
    "recall_at_5fpr": "recall at 5% FPR",
    "val_loss": "val loss (kept weights)",
    "control_accuracy": "control accuracy",
    "selectivity": "selectivity",
    "mdl_bits": "MDL, online code (bits)",
    "compression": "MDL compression",
    "online_adam_code_bits": "online Adam code, first pass (bits)",
    "online_adam_compression": "online Adam compression",
    "best_step": "best step",
    "examples_seen": "examples seen",
    "stop_reason": "why it stopped",
}


# -- which value is best -------------------------------------------------------------
# Lower is better for losses, code lengths and errors; higher for every other score.
LOWER_IS_BETTER_WORDS = ("loss", "mdl", "bits")
LOWER_IS_BETTER_SUFFIXES = ("error",)
LOWER_IS_BETTER_NAMES = frozenset({"brier"})
# Counts, settings and bookkeeping: a larger number is not "better", nothing is ranked.
NEUTRAL = frozenset(
    {
        "n",
        "steps",
        "best_step",
        "examples_seen",
        "epoch",
        "epochs",
        "dim",
        "seed",
        "l2",
        "lr",
        "seconds",
        "time",
        "classes",
        "n_classes",
        "submodule",
        "kind",
        "pooling",
        "state",
        "stop_reason",
    }
)
NEUTRAL_PREFIXES = ("n_",)
# Baseline and control columns are references for the probes, not competitors.
UNRANKED_PREFIXES = ("baseline_", "control_")


def better_direction(name: str, kind: str = "number") -> str | None:
    """ "min" when a lower value is better (losses, bits, errors), "max" for other
    scores, None where no value is better: non-numbers, counts and settings (`n`,
    `steps`, `n_*`), interval bounds (`*_low`, `*_high`) and references (`baseline_*`,
    `control_*`). The one rule every display of this package ranks by."""
    if kind != "number":
        return None
    lower = str(name).lower()
    if (
        lower in NEUTRAL
        or lower.startswith(NEUTRAL_PREFIXES + UNRANKED_PREFIXES)
        or lower.endswith(CI_SUFFIXES)
    ):
        return None
    if (
        any(word in lower for word in LOWER_IS_BETTER_WORDS)
        or lower.endswith(LOWER_IS_BETTER_SUFFIXES)
        or lower in LOWER_IS_BETTER_NAMES
    ):
        return "min"
    return "max"


def better_hint(direction: str | None) -> str:
    """The words a header shows for a direction: "lower is better", ..."""
    return {"min": "lower is better", "max": "higher is better"}.get(direction or "", "")


def best_positions(values: Sequence[Any], direction: str | None) -> list[int]:
    """Positions of the best value among `values` (ties all marked); none when there is
    no direction, fewer than two numbers, or every number ties (nothing to tell)."""
    if direction not in ("min", "max"):
        return []
    nums = [finite(v) for v in values]
    present = [v for v in nums if v is not None]
    if len(present) < 2 or all(math.isclose(v, present[0]) for v in present):
        return []
    target = min(present) if direction == "min" else max(present)
    return [i for i, v in enumerate(nums) if v is not None and math.isclose(v, target)]


def baseline_of(column: str) -> tuple[str, str]:
    """(baseline name, "accuracy" or "r2") of a ``baseline_*`` column, by the core's
    naming rule (``core.engine.metrics.baseline_column``)."""
    from ..core.engine.metrics import parse_baseline_column  # numpy + pandas: a frame exists

    parsed = parse_baseline_column(column)
    if parsed is None:
        raise ValueError(f"{column!r} is not a baseline column")
    return parsed


def baseline_columns(columns: Sequence[Any], metric: str) -> list[str]:
    """The ``baseline_*`` columns that hold `metric` (accuracy or r2)."""
    names = [str(c) for c in columns if str(c).startswith("baseline_")]
    return [c for c in names if baseline_of(c)[1] == metric]


def column_label(name: str) -> str:
    """The heading a person reads; the raw column name stays in exports and tooltips."""
    if name in LABELS:
        return LABELS[name]
    if name.startswith("baseline_"):
        base, metric = baseline_of(name)
        label = base.replace("_", " ") + " baseline"
        return label if metric == "accuracy" else f"{label} (R²)"
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
