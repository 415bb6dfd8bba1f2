"""The probe playground's static snapshot: its current result laid out as escaped HTML,
for a notebook reopened without its kernel or exported. Every number and colour comes
from the result (widgets.playground_view), as in the live view."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..display.columns import format_number
from ..display.html import _wrap
from .playground_view import (
    ATTENTION_NOTE,
    REGRESSION_NOTE,
    TOKEN_NOTE,
    TRUNCATED_NOTE,
    token_values,
)

if TYPE_CHECKING:
    from .playground import ProbePlayground


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None) -> str:
    return format_number(value) if value is not None else "–"


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
    title = ", ".join(
        f"{c} {format_number(v) if v is not None else '–'}"
        for c, v in zip(p["classes"], p["proba"], strict=True)
    )
    bars = "".join(
        f'<span class="lpw-snap-pg-bar" title="{_e(c)}" style="height: {100 * (v or 0):.0f}%; '
        f'background: {_e(colour)}"></span>'
        for c, v, colour in zip(p["classes"], p["proba"], p["bar_colours"], strict=True)
    )
    layer = f"layer {p['layer']}" if p.get("layer") is not None else ""
    return (
        f'<div class="lpw-snap-pg-cell" data-probe="{_e(p["name"])}" title="{_e(p["name"])}: '
        f'{_e(title)}" style="background: {_e(p["strip_colour"])}">'
        f'<div class="lpw-snap-pg-layer">{_e(p["name"])}{" · " + _e(layer) if layer else ""}</div>'
        f'<div class="lpw-snap-pg-class">{_e(cls)}</div>'
        f'<div class="lpw-mono">{_e(format_number(prob) if prob is not None else "–")}</div>'
        f'<div class="lpw-snap-pg-bars">{bars}</div></div>'
    )


def playground_html(widget: ProbePlayground) -> str:
    """The widget's current result as escaped static HTML (its snapshot)."""
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
        regression = entry.get("task") == "regression"
        attention = entry.get("heat") == "attention"
        scale = format_number((entry.get("scale") or [0.0])[0 if attention else c] or 0.0)
        if attention:
            shows, span = entry["legend_label"], f"0 to {scale}"
        else:
            toward = "predicted value minus the training mean" if regression else f"toward {cls}"
            shows, span = toward, f"±{scale}"
        parts.append(
            f"<h4>Tokens: {_e(entry['name'])}, {_e(shows)} "
            f'<span class="lpw-muted">({_e(span)})</span></h4>'
            '<div class="lpw-snap-pg-tokens">'
        )
        values, colours = token_values(entry, c)
        heads = entry.get("token_weights") or []
        for i, (t, v, colour) in enumerate(zip(tokens, values, colours, strict=True)):
            tip = f"{t['raw']}: {'attention weight ' if attention else ''}{_num(v)}"
            if attention and len(heads[i]) > 1:
                tip += " (heads: " + ", ".join(_num(w) for w in heads[i]) + ")"
            parts.append(
                f'<span class="lpw-snap-pg-token" title="{_e(tip)}" '
                f'style="background: {_e(colour)}">{_e(t["text"])}</span>'
            )
        parts.append("</div>")
        if result.get("truncated"):
            parts.append(f'<div class="lpw-snap-pg-note">{_e(TRUNCATED_NOTE)}</div>')
        if regression:
            parts.append(f'<div class="lpw-snap-pg-note">{_e(REGRESSION_NOTE)}</div>')
        note = ATTENTION_NOTE if attention else TOKEN_NOTE
        parts.append(f'<div class="lpw-snap-pg-note">{_e(note)}</div>')
    return _wrap(widget.summary(), "".join(parts), "playground")
