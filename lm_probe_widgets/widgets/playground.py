"""Probe playground: type a sentence, see what every layer's probe thinks of it, and why.

``ProbePlayground(runner, text="the film was great")`` shows, for the typed sentence:

* a strip along the layers: one cell per fitted probe (``runner.configs`` order) with
  its predicted class and that class's probability (colour intensity), and a small bar
  per class;
* for one chosen probe, a per-token heatmap: each token coloured by the probe applied
  to that token's own activation (token-level features of the same read site). The
  colour is the chosen class's logit minus the mean of the other classes' logits (with
  two classes: the log-odds), on a diverging scale centred at 0 (the decision boundary)
  with a fixed range (``HEAT_RANGE``), so colours compare across sentences.

Python computes everything; the browser only draws ``result``. The browser sends the
text (debounced as you type) through the synced ``text`` trait; an exception while
computing becomes the ``error`` trait, shown in the widget, never a crash.

A static HTML copy of the current result is shown beside the live view (its own
output, see ``widgets.snapshot``), for a notebook reopened without its kernel or
exported with nbconvert; typing and changes made in Python refresh it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import anywidget
import numpy as np
import traitlets

from ..display.columns import format_number
from ..display.html import _wrap
from ._assets import css_text, esm_source
from .snapshot import SnapshotDisplay, with_snapshot

# Colours shared with js/playground.js (same numbers): one hue per class for the strip,
# a diverging pair for the token heatmap. Mixed over a transparent base, so they read
# on light and dark backgrounds alike.
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
            result["probes"].append(_regression_entry(cfg, probe, x, rows, len(ids)))
            continue
        note = ""
        if getattr(cfg, "token_level", False) and len(x) > 1:
            x = x[-1:]
            note = "token-level probe: the strip shows its prediction on the last token"
        proba = np.asarray(probe.predict_proba(x), dtype=np.float64)[0]
        rows = np.asarray(tokens[token_keys[cfg.name]])
        if len(rows) != len(ids):
            raise ValueError(f"probe {cfg.name!r}: {len(rows)} token rows for {len(ids)} tokens")
        logits = np.asarray(probe.decision_function(rows), dtype=np.float64)
        margin = margins(logits)
        top = int(np.argmax(proba))
        result["probes"].append(
            {
                "name": str(cfg.name),
                "submodule": str(cfg.submodule),
                "layer": layer_of(str(cfg.feature_key[0])),
                "pooling": str(cfg.pooling),
                "classes": [class_label(c, class_names) for c in probe.classes],
                "proba": _finite(proba),
                "top": top,
                "token_logits": _rows(logits),
                "token_margin": _rows(margin),
                "scale": [HEAT_RANGE] * len(probe.classes),
                "note": note,
            }
        )
    return result


REGRESSION_NOTE = (
    "regression probe: the predicted value; tokens coloured by their prediction minus the "
    "training targets' mean (red above, blue below), full colour at two standard deviations"
)


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


class ProbePlayground(SnapshotDisplay, anywidget.AnyWidget):
    """Type a sentence; see every probe's prediction along the layers and, for one
    probe, a per-token heatmap of its score on each token's activation.

    ``probe`` names the probe whose heatmap is shown (default: the one with the best
    held-out accuracy, else the first fitted one); ``target`` the class it is coloured
    for (default "": the last class). ``class_names`` ({value: name} or a list indexed
    by integer classes, e.g. ``["negative", "positive"]``) shows names, not 0/1. ``result``
    holds everything drawn (also handy in Python); ``error`` the last failure's message.
    ``refresh()`` computes again for the same text, e.g. once the runner is refitted.
    """

    _esm = esm_source("playground")
    _css = css_text("playground")

    text = traitlets.Unicode("").tag(sync=True)
    result = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    probe = traitlets.Unicode("").tag(sync=True)
    target = traitlets.Unicode("").tag(sync=True)
    debounce_ms = traitlets.Int(300).tag(sync=True)
    note = traitlets.Unicode(TOKEN_NOTE).tag(sync=True)

    def __init__(
        self,
        runner: Any,
        text: str = "",
        class_names: Mapping[Any, str] | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.runner = runner
        self.class_names = class_names
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_msg)
        self._update(text)
        self.text = text

    # -- computing ----------------------------------------------------------------------
    def _update(self, text: str) -> None:
        try:
            result = compute(self.runner, text, self.class_names)
            error = ""
        except Exception as exc:  # shown in the widget; the kernel keeps going
            result = {"text": text, "tokens": [], "probes": [], "skipped": [], "truncated": False}
            error = f"{type(exc).__name__}: {exc}"
        names = [p["name"] for p in result["probes"]]
        with self.hold_sync():
            self.result = result
            self.error = error
            if names and self.probe not in names:
                self.probe = best_probe(self.runner, names) or names[0]

    def refresh(self) -> None:
        """Compute the current text again (e.g. after the runner fitted more probes)."""
        self._update(self.text)
        self.refresh_snapshot()

    @traitlets.observe("text")
    def _on_text(self, change: dict[str, Any]) -> None:
        if change["new"] != self.result.get("text"):
            self._update(change["new"])
        self.snapshot_changed()

    @traitlets.observe("probe", "target")
    def _on_choice(self, change: dict[str, Any]) -> None:
        self.snapshot_changed()

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # the view lost focus: now the snapshot may re-render it
        if isinstance(content, dict) and content.get("type") == "commit":
            self.catch_up_snapshot()

    # -- reading ------------------------------------------------------------------------
    def chosen(self) -> tuple[dict[str, Any] | None, int]:
        """(the heatmap's probe entry of ``result``, its class index), or (None, -1)."""
        entries = self.result.get("probes") or []
        entry = next((p for p in entries if p["name"] == self.probe), None)
        if entry is None and entries:
            entry = entries[0]
        if entry is None:
            return None, -1
        classes = entry["classes"]
        index = classes.index(self.target) if self.target in classes else len(classes) - 1
        return entry, index

    def summary(self) -> str:
        """The result as plain text: one line per probe, then the chosen heatmap."""
        lines = [f"ProbePlayground: {self.result.get('text', self.text)!r}"]
        if self.error:
            lines.append(f"error: {self.error}")
        for p in self.result.get("probes") or []:
            top = p["top"]
            if p.get("task") == "regression":
                value = p.get("value")
                shown = format_number(value) if value is not None else "–"
                lines.append(f"  {p['name']}: predicted {shown}")
                continue
            lines.append(
                f"  {p['name']}: {p['classes'][top]} ({format_number(p['proba'][top] or 0.0)})"
            )
        entry, c = self.chosen()
        if entry is not None and self.result.get("tokens"):
            cls = entry["classes"][c]
            words = [
                f"{t['text']!r}:{format_number(m[c]) if m[c] is not None else '–'}"
                for t, m in zip(self.result["tokens"], entry["token_margin"], strict=True)
            ]
            lines.append(f"  tokens ({entry['name']}, toward {cls}): " + " ".join(words))
        return "\n".join(lines)

    def snapshot_html(self) -> str:
        return playground_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget plus a static, escaped HTML snapshot of the current result."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self)

    def __repr__(self) -> str:
        n = len(self.result.get("probes") or [])
        return f"ProbePlayground({n} probes, text={self.text!r})"


# -- static snapshot ------------------------------------------------------------------


def _e(value: Any) -> str:
    import html

    return html.escape(str(value), quote=True)


def _mix(colour: str, percent: float) -> str:
    return f"color-mix(in srgb, {colour} {percent:.0f}%, transparent)"


def strip_mix(p: float | None) -> float:
    return STRIP_MAX_MIX * max(0.0, min(1.0, p or 0.0))


def heat_style(value: float | None, scale: float | None) -> str:
    if value is None or not scale:
        return ""
    share = max(-1.0, min(1.0, value / scale))
    if share == 0:
        return ""
    colour = POSITIVE_COLOUR if share > 0 else NEGATIVE_COLOUR
    return f"background: {_mix(colour, HEAT_MAX_MIX * abs(share))}"


def _probe_cell(p: dict[str, Any]) -> str:
    if p.get("task") == "regression":
        layer = f" · layer {p['layer']}" if p.get("layer") is not None else ""
        value = format_number(p["value"]) if p.get("value") is not None else "–"
        return (
            f'<div class="lpw-snap-pg-cell" data-probe="{_e(p["name"])}" '
            f'title="{_e(p["name"])}: predicted {_e(value)}">'
            f'<div class="lpw-snap-pg-layer">{_e(p["name"])}{_e(layer)}</div>'
            '<div class="lpw-snap-pg-class">predicted</div>'
            f'<div class="lpw-mono">{_e(value)}</div></div>'
        )
    top = p["top"]
    cls = p["classes"][top]
    prob = p["proba"][top]
    colour = CLASS_COLOURS[top % len(CLASS_COLOURS)]
    title = ", ".join(
        f"{c} {format_number(v) if v is not None else '–'}"
        for c, v in zip(p["classes"], p["proba"], strict=True)
    )
    bars = "".join(
        f'<span class="lpw-snap-pg-bar" title="{_e(c)}" style="height: {100 * (v or 0):.0f}%; '
        f'background: {CLASS_COLOURS[j % len(CLASS_COLOURS)]}"></span>'
        for j, (c, v) in enumerate(zip(p["classes"], p["proba"], strict=True))
    )
    layer = f"layer {p['layer']}" if p.get("layer") is not None else ""
    return (
        f'<div class="lpw-snap-pg-cell" data-probe="{_e(p["name"])}" title="{_e(p["name"])}: '
        f'{_e(title)}" style="background: {_mix(colour, strip_mix(prob))}">'
        f'<div class="lpw-snap-pg-layer">{_e(p["name"])}{" · " + _e(layer) if layer else ""}</div>'
        f'<div class="lpw-snap-pg-class">{_e(cls)}</div>'
        f'<div class="lpw-mono">{_e(format_number(prob) if prob is not None else "–")}</div>'
        f'<div class="lpw-snap-pg-bars">{bars}</div></div>'
    )


def playground_html(widget: ProbePlayground) -> str:
    result = widget.result or {}
    parts = [
        '<div class="lpw-head"><span class="lpw-title">Probe playground</span>'
        f'<span class="lpw-muted">{len(result.get("probes") or [])} probe(s)</span></div>',
        f'<div class="lpw-snap-pg-text lpw-mono">{_e(result.get("text", widget.text))}</div>',
    ]
    if widget.error:
        parts.append(f'<div class="lpw-snap-pg-error">{_e(widget.error)}</div>')
    probes = result.get("probes") or []
    if probes:
        parts.append('<div class="lpw-snap-pg-strip">')
        parts.extend(_probe_cell(p) for p in probes)
        parts.append("</div>")
    entry, c = widget.chosen()
    tokens = result.get("tokens") or []
    if entry is not None and tokens:
        cls = entry["classes"][c]
        scale = entry["scale"][c] if entry.get("scale") else None
        regression = entry.get("task") == "regression"
        toward = "predicted value minus the training mean" if regression else f"toward {cls}"
        parts.append(
            f"<h4>Tokens: {_e(entry['name'])}, {_e(toward)} "
            f'<span class="lpw-muted">(±{_e(format_number(scale or 0.0))})</span></h4>'
            '<div class="lpw-snap-pg-tokens">'
        )
        for t, m in zip(tokens, entry["token_margin"], strict=True):
            v = m[c]
            tip = f"{t['raw']}: {format_number(v) if v is not None else '–'}"
            parts.append(
                f'<span class="lpw-snap-pg-token" title="{_e(tip)}" '
                f'style="{heat_style(v, scale)}">{_e(t["text"])}</span>'
            )
        parts.append("</div>")
        if result.get("truncated"):
            parts.append(f'<div class="lpw-snap-pg-note">{_e(TRUNCATED_NOTE)}</div>')
        if regression:
            parts.append(f'<div class="lpw-snap-pg-note">{_e(REGRESSION_NOTE)}</div>')
        parts.append(f'<div class="lpw-snap-pg-note">{_e(TOKEN_NOTE)}</div>')
    return _wrap(widget.summary(), "".join(parts), "playground")
