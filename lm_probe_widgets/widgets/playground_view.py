"""What the probe playground shows for one text, computed once, here: each probe's
prediction along the layers, each token's score, and every colour they are drawn in.
The live view (js/playground.js) and the static snapshot (widgets.playground_html) only
lay this out, so a colour or scale rule has this one home.

Token scores: the probe applied to each token's own activation at its read site; the
chosen class's logit minus the mean of the other classes' logits (with two classes: the
log-odds), on a diverging scale centred at 0 (the decision boundary) with a fixed range
(``HEAT_RANGE``), so colours compare across sentences.

An attention probe scores the whole text, not each token: its tokens are coloured by
the weight its learned pooling gives each one (the mean over its heads: each head's
weights sum to 1 over the text, so their mean does too), from no colour at 0 to full
colour at the text's largest weight; each head's weight is in the token's hover text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# One hue per class for the strip, a diverging pair for the token heatmap. Mixed over
# a transparent base, so they read on light and dark backgrounds alike.
CLASS_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
NEGATIVE_COLOUR = "#2c7bb6"
POSITIVE_COLOUR = "#d7301f"
# An attention probe's token weights: one sequential hue, apart from the diverging pair
# (a weight has no sign: it says where the probe read, not which way).
ATTENTION_COLOUR = "#8e44ad"
STRIP_MAX_MIX = 80  # % of the class colour at probability 1
HEAT_MAX_MIX = 70  # % of the diverging colour at |score| >= HEAT_RANGE
# The heatmap's range, the same for every sentence and probe (a range rescaled to each
# sentence made a weak score look as strong as a strong one): ±4 in log-odds is a
# probability of 0.02 / 0.98 at the decision boundary's sides; beyond it, full colour.
HEAT_RANGE = 4.0
MAX_LENGTH = 128  # tokens read from the typed text
TRUNCATED_NOTE = f"Only the first {MAX_LENGTH} tokens are read."

TOKEN_NOTE = (
    "Token scores: the probe, trained on pooled features, applied to each token's own "
    "activation at the same read site. Colour: the chosen class's logit minus the mean of "
    "the other classes' logits (two classes: the log-odds); 0 = no colour, the same "
    "fixed range for every sentence (full colour at ±4 and beyond)."
)


ATTENTION_NOTE = (
    "attention probe: it scores the whole text; tokens coloured by the weight its learned "
    "pooling gives each one (the mean over its heads; the weights sum to 1 over the "
    "text), from no colour at 0 to full colour at this text's largest weight"
)

REGRESSION_NOTE = (
    "regression probe: the predicted value; tokens coloured by their prediction minus the "
    "training targets' mean (red above, blue below), full colour at two standard deviations"
)


def _mix(colour: str, percent: float) -> str:
    return f"color-mix(in srgb, {colour} {percent:.0f}%, transparent)"


def class_colour(j: int) -> str:
    return CLASS_COLOURS[j % len(CLASS_COLOURS)]


def strip_colour(j: int, p: float | None) -> str:
    """A strip cell's background: class j's hue, stronger the surer the probe."""
    return _mix(class_colour(j), STRIP_MAX_MIX * max(0.0, min(1.0, p or 0.0)))


def heat_colour(value: float | None, scale: float | None) -> str:
    """A token's background: red toward the class (or above the mean), blue against it,
    full colour at |value| >= scale; "" (no colour) at 0 or without a value."""
    if value is None or not scale:
        return ""
    share = max(-1.0, min(1.0, value / scale))
    if share == 0:
        return ""
    colour = POSITIVE_COLOUR if share > 0 else NEGATIVE_COLOUR
    return _mix(colour, HEAT_MAX_MIX * abs(share))


def weight_colour(weight: float | None, top: float | None) -> str:
    """A token's background for an attention weight: the attention hue, stronger the
    larger the weight, full at `top` (the text's largest); "" at 0 or without one."""
    if weight is None or not top or weight <= 0:
        return ""
    return _mix(ATTENTION_COLOUR, HEAT_MAX_MIX * min(1.0, weight / top))


# The attention weights' legend: from no colour (0) to full colour (the largest weight).
ATTENTION_LEGEND = f"linear-gradient(to right, transparent, {_mix(ATTENTION_COLOUR, HEAT_MAX_MIX)})"

# The heatmap's legend: from full blue through no colour to full red.
HEAT_LEGEND = (
    f"linear-gradient(to right, {_mix(NEGATIVE_COLOUR, HEAT_MAX_MIX)}, transparent, "
    f"{_mix(POSITIVE_COLOUR, HEAT_MAX_MIX)})"
)


def paint(entry: dict[str, Any]) -> dict[str, Any]:
    """Add every colour a probe's entry is drawn with: the strip cell, the class bars and
    each token's background for each class (an attention probe: one, for its weight)."""
    scales = entry["scale"]
    if entry.get("heat") == "attention":
        entry["token_colours"] = [[weight_colour(w, scales[0])] for w in entry["token_weight"]]
    else:
        entry["token_colours"] = [
            [heat_colour(v, scales[c]) for c, v in enumerate(row)] for row in entry["token_margin"]
        ]
    if entry.get("task") == "regression":
        entry["strip_colour"], entry["bar_colours"] = "", []
        return entry
    entry["strip_colour"] = strip_colour(entry["top"], entry["proba"][entry["top"]])
    entry["bar_colours"] = [class_colour(j) for j in range(len(entry["classes"]))]
    return entry


def token_values(entry: dict[str, Any], c: int) -> tuple[list[float | None], list[str]]:
    """What the heatmap of `entry` shows for class index `c`: each token's value (its
    attention weight for an attention probe, else its score toward class c) and its
    background colour."""
    if entry.get("heat") == "attention":
        return list(entry["token_weight"]), [row[0] for row in entry["token_colours"]]
    values = [row[c] for row in entry["token_margin"]]
    return values, [row[c] for row in entry["token_colours"]]


def layer_of(submodule: str) -> int | None:
    """The last number in a dotted module path (``transformer.h.3.mlp`` -> 3), if any."""
    found = re.findall(r"(?:^|\.)(\d+)(?=\.|$)", submodule)
    return int(found[-1]) if found else None


def _finite(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in np.ravel(values)]


def _rows(matrix: np.ndarray) -> list[list[float | None]]:
    return [_finite(row) for row in np.asarray(matrix, dtype=np.float64)]


def margins(logits: np.ndarray) -> np.ndarray:
    """Per class: its logit minus the mean of the other classes' logits (n, classes).
    With two classes this is the log-odds of each class; 0 where a class ties the rest."""
    z = np.asarray(logits, dtype=np.float64)
    k = z.shape[1]
    if k < 2:
        return np.zeros_like(z)
    others = (z.sum(axis=1, keepdims=True) - z) / (k - 1)
    return z - others


def token_strings(tokenizer: Any, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Each token as text (decoded alone, so spaces show) and as the tokenizer's piece."""
    ids = [int(i) for i in ids]
    raw: list[str] = []
    convert = getattr(tokenizer, "convert_ids_to_tokens", None)
    if callable(convert):
        try:
            raw = [str(t) for t in convert(ids)]
        except Exception:
            raw = []
    out = []
    for j, i in enumerate(ids):
        piece = raw[j] if j < len(raw) else str(i)
        try:
            text = str(tokenizer.decode([i]))
        except Exception:
            text = piece
        out.append({"id": i, "text": text if text != "" else piece, "raw": piece})
    return out


def class_label(value: Any, class_names: Mapping[Any, str] | Sequence[str] | None) -> str:
    """The name a reader knows for a class value: `class_names[value]` (a mapping, or a
    sequence indexed by integer classes), else the value itself."""
    if isinstance(class_names, Mapping):
        return str(class_names.get(value, value))
    if class_names is not None and isinstance(value, (int, np.integer)):
        if 0 <= int(value) < len(class_names):
            return str(class_names[int(value)])
    return str(value)


def best_probe(runner: Any, names: Sequence[str]) -> str | None:
    """The probe with the highest held-out accuracy (R² for regression) among `names`,
    or None when none was measured."""
    try:
        metrics = runner.metrics
    except Exception:
        return None
    for column in ("accuracy", "r2"):
        if column in metrics.columns:
            values = metrics[column].reindex(list(names)).astype(float).dropna()
            if len(values):
                return str(values.idxmax())
    return None


def compute(
    runner: Any, text: str, class_names: Mapping[Any, str] | Sequence[str] | None = None
) -> dict[str, Any]:
    """The playground's result for one text (raises on errors; the widget catches)."""
    from ..core.engine.data import ProbeDataset

    fitted = [c for c in runner.configs if c.name in runner.probes]
    skipped = [c.name for c in runner.configs if c.name not in runner.probes]
    if not fitted:
        raise ValueError(
            "no fitted probes: run runner.fit_probes(...) first, then make the playground"
        )
    result: dict[str, Any] = {
        "text": text,
        "tokens": [],
        "probes": [],
        "skipped": skipped,
        "truncated": False,
        "heat_legend": HEAT_LEGEND,
    }
    if not text.strip():
        return result
    tokenizer = getattr(runner.model, "tokenizer", None)
    ds = ProbeDataset.from_texts([text], None, tokenizer, max_length=MAX_LENGTH)
    ids = np.asarray(ds[0]["input_ids"]).tolist()
    mask = ds[0].get("attention_mask")
    if mask is not None:
        ids = [i for i, m in zip(ids, np.asarray(mask).tolist(), strict=True) if m]
    if not ids:
        return result
    result["tokens"] = token_strings(tokenizer, ids)
    if len(ids) >= MAX_LENGTH:
        result["truncated"] = len(tokenizer([text])["input_ids"][0]) > len(ids)
    # one pass through the model for every read site, pooled and per token
    token_keys = {c.name: (c.feature_key[0], c.feature_key[1], "none") for c in fitted}
    runner.features(ds, [c.feature_key for c in fitted] + list(token_keys.values()), persist=False)
    tokens = runner.features(ds, list(token_keys.values()), persist=False)
    pooled = runner.get_probe_features(ds, subset=[c.name for c in fitted])
    for cfg in fitted:
        probe = runner.probes[cfg.name]
        x = pooled[cfg.name]
        if cfg.task == "regression":
            rows = np.asarray(tokens[token_keys[cfg.name]])
            result["probes"].append(paint(_regression_entry(cfg, probe, x, rows, len(ids))))
            continue
        note = ""
        if getattr(cfg, "token_level", False) and len(x) > 1:
            x = x[-1:]
            note = "token-level probe: the strip shows its prediction on the last token"
        proba = np.asarray(probe.predict_proba(x), dtype=np.float64)[0]
        rows = np.asarray(tokens[token_keys[cfg.name]])
        if len(rows) != len(ids):
            raise ValueError(f"probe {cfg.name!r}: {len(rows)} token rows for {len(ids)} tokens")
        entry = {
            "name": str(cfg.name),
            "submodule": str(cfg.submodule),
            "layer": layer_of(str(cfg.feature_key[0])),
            "pooling": str(cfg.pooling),
            "classes": [class_label(c, class_names) for c in probe.classes],
            "proba": _finite(proba),
            "top": int(np.argmax(proba)),
        }
        if getattr(cfg, "kind", "linear") == "attention":  # one score for the whole text
            entry.update(attention_heat(probe.token_weights([rows])[0]))
        else:
            logits = np.asarray(probe.decision_function(rows), dtype=np.float64)
            entry.update(
                token_logits=_rows(logits),
                token_margin=_rows(margins(logits)),
                scale=[HEAT_RANGE] * len(probe.classes),
                note=note,
            )
        result["probes"].append(paint(entry))
    return result


def attention_heat(weights: np.ndarray) -> dict[str, Any]:
    """An attention probe's heatmap fields from its weights [tokens, heads]: each head's
    weight per token, their mean (what the colour shows) and the largest mean (full
    colour). No per-token scores: the probe reads the text as a whole."""
    w = np.asarray(weights, dtype=np.float64)
    mean = w.mean(axis=1)
    top = float(mean.max()) if len(mean) else 0.0
    heads = w.shape[1]
    return {
        "heat": "attention",
        "pooling": "attention",
        "heads": heads,
        "token_weights": _rows(w),
        "token_weight": _finite(mean),
        "token_logits": [],
        "token_margin": [],
        "scale": [top],
        "legend": ATTENTION_LEGEND,
        "legend_label": "attention weight" + (f" (mean over {heads} heads)" if heads > 1 else ""),
        "note": ATTENTION_NOTE,
    }


def _regression_entry(
    cfg: Any, probe: Any, x: np.ndarray, rows: np.ndarray, n_tokens: int
) -> dict[str, Any]:
    """A regression probe's strip cell and heatmap: the predicted value for the text, and
    each token's prediction, centred at the training targets' mean on a fixed range of
    two standard deviations (the same for every sentence)."""
    if len(rows) != n_tokens:
        raise ValueError(f"probe {cfg.name!r}: {len(rows)} token rows for {n_tokens} tokens")
    mean, std = probe._target_stats()  # the targets the probe was trained on
    value = float(np.asarray(probe.predict(x), dtype=np.float64)[-1])
    per_token = np.asarray(probe.predict(rows), dtype=np.float64)[:, None]
    return {
        "name": str(cfg.name),
        "submodule": str(cfg.submodule),
        "layer": layer_of(str(cfg.feature_key[0])),
        "pooling": str(cfg.pooling),
        "task": "regression",
        "classes": ["value"],
        "proba": [],
        "top": 0,
        "value": _finite([value])[0],
        "center": mean,
        "token_logits": _rows(per_token),
        "token_margin": _rows(per_token - mean),
        "scale": [2.0 * std],
        "note": REGRESSION_NOTE,
    }
