"""The envelope and small shared parts of every static HTML output: escaping, number
text, the stylesheet, the sklearn-style wrapper with its text fallback, the state badge
and the configuration table.

Modelled on scikit-learn's estimator repr: the HTML carries a visible ``<pre>`` text
fallback that CSS hides once the HTML is trusted and styled (untrusted notebooks and
GitHub strip ``<style>``, so the fallback shows and the styled block stays
``hidden``); every output gets a unique id; every CSS rule is scoped under the
``lpw-repr`` class (styles: js/theme.css, shared with the widgets, and js/repr.css);
colours are CSS variables that follow JupyterLab's and VS Code's themes, then
``prefers-color-scheme``. Every string that reaches the HTML goes
through ``html.escape``. Only the standard library is imported: a repr must be cheap,
offline, and must never pull in matplotlib.
"""

from __future__ import annotations

import html
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ..core.engine.states import ProbeState, RunnerState
from .assets import REPR, THEME, read_asset
from .columns import finite, format_number
from .states import PROBE_STATES, STATE_KIND

ROOT_CLASS = "lpw lpw-repr"  # the theme's root class, and the one of static outputs
REPR_CLASS = "lpw-repr"


# One stylesheet for every static output: the theme (variables, light/dark/VS Code
# detection; js/theme.css, shared with the widgets) and the repr rules (js/repr.css).
# `:not(#lpw-none)` (matches every element) lifts the repr rules to id specificity, as
# sklearn's id-scoped CSS does, so the host's table styles (JupyterLab's
# `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`, ...) do not override ours.
SCOPE = f".{REPR_CLASS}:not(#lpw-none)"
CSS = read_asset(THEME) + re.sub(r"\.lpw-repr(?![\w-])", SCOPE, read_asset(REPR))

FALLBACK_NOTE = (
    "In a Jupyter environment, rerun this cell or trust the notebook to see the rich "
    "view; on GitHub, try nbviewer.org."
)


# -- small helpers --------------------------------------------------------------------
def _e(value: Any) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _is_missing(v: Any) -> bool:
    return v is None or (not isinstance(v, str) and _nan(v))


def _nan(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return math.isnan(f)


def fmt_value(v: Any, dash: str = "–") -> str:
    """Numbers with 3 decimals (integers whole, tiny values in exponent form), as every
    display of this package writes them; missing values as a dash."""
    if _is_missing(v):
        return dash
    if isinstance(v, (bool, str)):
        return str(v)
    if finite(v) is None and not isinstance(v, int):
        return str(v)
    return format_number(v)


def _new_id(prefix: str = "lpw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _classes_text(classes: Iterable[Any]) -> str:
    return ", ".join(str(c) for c in classes)


def _chips(items: Iterable[Any]) -> str:
    return "".join(f'<span class="lpw-chip lpw-mono">{_e(c)}</span>' for c in items)


def _wrap(text_repr: str, body: str, label: str) -> str:
    """sklearn-style envelope: a text fallback plus the styled body, kept hidden until
    the scoped CSS (only present when the HTML is trusted) reveals it. Hidden twice:
    JupyterLab's sanitizer drops the `hidden` attribute of untrusted output but keeps
    `style`, GitHub's drops `style`; the CSS's `!important` overrides both."""
    uid = _new_id()
    return (
        f'<div id="{uid}" class="{ROOT_CLASS}" data-lpw-kind="{_e(label)}">'
        f"<style>{CSS}</style>"
        f'<div class="lpw-fallback"><pre>{_e(text_repr)}</pre><b>{_e(FALLBACK_NOTE)}</b></div>'
        f'<div class="lpw-body" hidden style="display:none">{body}</div>'
        "</div>"
    )


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], max_width: int = 36) -> str:
    def clip(s: str) -> str:
        s = " ".join(str(s).split())
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[clip(h) for h in headers]] + [[clip(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _mimebundle(
    text: str, html_fn: Any, include: Any = None, exclude: Any = None
) -> dict[str, str]:
    wanted = {"text/plain", "text/html"}
    if include is not None:
        wanted &= set(include)
    if exclude is not None:
        wanted -= set(exclude)
    out: dict[str, str] = {}
    if "text/plain" in wanted:
        out["text/plain"] = text
    if "text/html" in wanted:
        out["text/html"] = html_fn()
    return out


# -- probe state ----------------------------------------------------------------------
def _record(probe: Any) -> Any:
    return getattr(probe, "record", None) if probe is not None else None


def state_label(probe: Any) -> str:
    rec = _record(probe)
    if rec is None:
        return ProbeState.NOT_FITTED.value
    return RunnerState.FITTING.value if rec.state == ProbeState.TRAINING else str(rec.state)


def describe_state(probe: Any) -> str:
    """One sentence a person can read: what happened to this probe and why."""
    rec = _record(probe)
    if rec is None or rec.state == ProbeState.NOT_FITTED:
        return ProbeState.NOT_FITTED.value
    state, steps, reason = rec.state, rec.steps, rec.stop_reason
    best = f"; best at step {rec.best_step}" if rec.best_step is not None else ""
    if state == ProbeState.TRAINING:
        return f"fitting: step {steps}{best}"
    if state == ProbeState.EARLY_STOPPED:
        return f"stopped early at step {steps} because {reason or 'validation loss stalled'}"
    if state == ProbeState.FINISHED:
        why = f" ({reason})" if reason else ""
        return f"finished after {steps} steps{why}{best}"
    if state == ProbeState.STOPPED:
        return f"stopped at step {steps}" + (f": {reason}" if reason else "") + best
    return f"{state} at step {steps}" + (f": {reason}" if reason else "")


def _badge(label: str) -> str:
    """A state badge; probe states in their colour from display.states."""
    kind = STATE_KIND.get(label, "idle")
    style = f' style="color: {_e(PROBE_STATES[label]["color"])}"' if label in PROBE_STATES else ""
    return f'<span class="lpw-badge lpw-{kind}" data-state="{_e(label)}"{style}>{_e(label)}</span>'


def _config_table(configs: Sequence[Any]) -> str:
    """All settings of every probe, one row per probe (for the collapsible section)."""
    dicts = []
    for c in configs:
        d = c.to_dict() if hasattr(c, "to_dict") else dict(vars(c))
        dicts.append(d)
    keys: list[str] = []
    for d in dicts:
        keys += [k for k in d if k not in keys and k not in ("name",)]
    head = "<tr><th>probe</th>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>"
    body = []
    for c, d in zip(configs, dicts, strict=True):
        cells = []
        for k in keys:
            v = d.get(k)
            if isinstance(v, (list, tuple)):
                text = ", ".join(fmt_value(x) if not isinstance(x, str) else x for x in v)
            elif isinstance(v, dict):
                text = ", ".join(f"{a}={b}" for a, b in v.items()) or "–"
            else:
                text = fmt_value(v) if not isinstance(v, str) else v
            cells.append(f'<td class="lpw-mono">{_e(text)}</td>')
        body.append(f'<tr><td class="lpw-mono">{_e(c.name)}</td>{"".join(cells)}</tr>')
    return f'<table class="lpw-configs">{head}{"".join(body)}</table>'
