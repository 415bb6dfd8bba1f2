"""Rich static reprs for ProbeRunner and LinearProbe (text/plain + text/html).

Modelled on scikit-learn's estimator repr: the HTML carries a visible ``<pre>`` text
fallback that CSS hides once the HTML is trusted and styled (untrusted notebooks and
GitHub strip ``<style>``, so the fallback shows and the styled block stays
``hidden``); every output gets a unique id; every CSS rule is scoped under the
``lpw-repr`` class (styles: js/theme.css, shared with the widgets, and js/repr.css);
colours are CSS variables that follow JupyterLab's and VS Code's themes, then
``prefers-color-scheme``. Every string that reaches the HTML goes
through ``html.escape``. Only the standard library is imported: a repr must be cheap,
offline, and must never pull in matplotlib (the sparkline is hand-built SVG).
"""

from __future__ import annotations

import html
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.engine.states import ProbeState, RunnerState
from .assets import REPR, THEME, read_asset
from .columns import (
    NEUTRAL,
    UNRANKED_PREFIXES,
    best_positions,
    better_direction,
    better_hint,
    column_label,
    compact_columns,
    finite,
    format_number,
)
from .states import ENDED_EARLY, PROBE_STATES, STATE_KIND, VERDICTS, probe_state, reading_verdict

ROOT_CLASS = "lpw lpw-repr"  # the theme's root class, and the one of static outputs
REPR_CLASS = "lpw-repr"

# Columns of runner.metrics shown in the metrics table, in this order when present;
# any other float column (other engineers may add some) follows them.
METRIC_ORDER = (
    "loss",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "matthews",
    "roc_auc",
    "val_loss",
    "compression",
    "mdl_bits",
)
# Bookkeeping columns (counts, settings, text): not metrics, never ranked
# (display.columns decides which value of a column is best).
NOT_METRICS = NEUTRAL
TEXT_METRICS = ("accuracy", "f1", "matthews", "loss")  # the compact view (display.columns)

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


# -- sparkline ------------------------------------------------------------------------
def _series(history: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[float, float]], str]:
    """(step, loss) points to draw: validation loss, else training loss."""
    for key in ("val_loss", "train_loss"):
        pts = []
        for h in history:
            s, v = finite(h.get("step")), finite(h.get(key))
            if s is not None and v is not None:
                pts.append((s, v))
        if pts:
            return pts, ("validation loss" if key == "val_loss" else "training loss")
    return [], "validation loss"


def sparkline_svg(
    history: Sequence[Mapping[str, Any]],
    best_step: int | None = None,
    stop_step: int | None = None,
    *,
    stop_state: str = ProbeState.STOPPED.value,
    width: int = 120,
    height: int = 26,
) -> str:
    """A tiny inline SVG of the loss curve (no matplotlib): the best point as a dot,
    an early/forced stop as a tick at the end in the colour of `stop_state`
    (display.states: red only for an error). Empty history -> a dash."""
    pts, what = _series(list(history))
    if not pts:
        return '<span class="lpw-muted">–</span>'
    pad = 3.0
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    sx = (width - 2 * pad) / (x1 - x0) if x1 > x0 else 0.0
    sy = (height - 2 * pad) / (y1 - y0) if y1 > y0 else 0.0

    def xy(s: float, v: float) -> tuple[float, float]:
        x = pad + (s - x0) * sx if sx else width / 2
        y = height - pad - (v - y0) * sy if sy else height / 2
        return round(x, 1), round(y, 1)

    coords = [xy(s, v) for s, v in pts]
    poly = " ".join(f"{x},{y}" for x, y in coords)
    label = (
        f"{what}: {fmt_value(ys[0])} at step {fmt_value(xs[0])} to {fmt_value(ys[-1])} "
        f"at step {fmt_value(xs[-1])}"
    )
    parts = [f'<polyline class="lpw-spark-line" points="{poly}"/>']
    if best_step is not None:
        near = min(range(len(pts)), key=lambda i: abs(pts[i][0] - best_step))
        bx, by = coords[near]
        parts.append(
            f'<circle class="lpw-spark-best" cx="{bx}" cy="{by}" r="2.5" '
            f'data-step="{_e(best_step)}"/>'
        )
        label += f"; best {fmt_value(pts[near][1])} at step {best_step}"
    if stop_step is not None:
        ex = coords[-1][0]
        colour = probe_state(stop_state)["color"]
        parts.append(
            f'<line class="lpw-spark-stop" x1="{ex}" y1="1" x2="{ex}" y2="{height - 1}" '
            f'style="stroke: {_e(colour)}" data-step="{_e(stop_step)}"/>'
        )
        label += f"; stopped at step {stop_step}"
    return (
        f'<svg class="lpw-spark" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
        f"<title>{_e(label)}</title>{''.join(parts)}</svg>"
    )


def _probe_sparkline(probe: Any, **kw: Any) -> str:
    rec = _record(probe)
    if rec is None:
        return '<span class="lpw-muted">–</span>'
    stop = rec.steps if rec.state in ENDED_EARLY else None
    return sparkline_svg(list(rec.history), rec.best_step, stop, stop_state=rec.state, **kw)


# -- runner ---------------------------------------------------------------------------
def _model_label(runner: Any) -> str:
    model = getattr(runner, "model", None)
    if model is None:
        return "?"
    from ..core.engine.modeling import torch_module  # a model exists: torch is loaded

    module = torch_module(model)
    name = type(module).__name__
    cfg = getattr(module, "config", None)
    path = getattr(cfg, "name_or_path", "") or ""
    return f"{name} ({path})" if path and isinstance(path, str) else name


def _metrics_rows(runner: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """(metric columns worth showing, one dict per probe) from runner.metrics."""
    try:
        df = runner.metrics
    except Exception:  # a repr must render even mid-fit or half-built
        return [], []
    rows = []
    for name, row in zip(df.index, df.to_dict("records"), strict=True):
        rows.append({"probe": name, **row})
    cols = [str(c) for c in df.columns]
    ci = {c for c in cols if c.endswith("_low") or c.endswith("_high")}
    extra = [c for c in cols if c not in METRIC_ORDER and c not in NOT_METRICS and c not in ci]
    shown = []
    for c in [c for c in METRIC_ORDER if c in cols] + extra:
        values = [finite(r.get(c)) for r in rows]
        if any(v is not None for v in values) and all(
            v is not None or _is_missing(r.get(c)) for v, r in zip(values, rows, strict=True)
        ):
            shown.append(c)
    return shown, rows


def best_rows(rows: Sequence[Mapping[str, Any]], column: str) -> set[int]:
    """Indices of the rows holding the best value of `column` (ties all marked), by
    the rule of `display.columns.better_direction`."""
    return set(best_positions([r.get(column) for r in rows], better_direction(column)))


def runner_text(runner: Any) -> str:
    """A readable plain-text view: probes, states, key metrics (best marked with *)."""
    configs = list(getattr(runner, "configs", []))
    probes = getattr(runner, "probes", {}) or {}
    cols, rows = _metrics_rows(runner)
    by_name = {r["probe"]: r for r in rows}
    tcols = [c for c in TEXT_METRICS if c in cols]
    best = {c: best_rows(rows, c) for c in tcols}
    index = {r["probe"]: i for i, r in enumerate(rows)}
    head = (
        f"ProbeRunner: {_model_label(runner)}, {len(configs)} probe(s), "
        f"state: {getattr(runner, 'state', '?')}"
    )
    table_rows = []
    notes = []
    for cfg in configs:
        probe = probes.get(cfg.name)
        rec = _record(probe)
        r = by_name.get(cfg.name, {})
        cells = [
            str(cfg.name),
            str(cfg.submodule),
            str(cfg.pooling),
            state_label(probe),
            str(rec.steps) if rec else "0",
            fmt_value(rec.best_step, "-") if rec else "-",
        ]
        for c in tcols:
            v = fmt_value(r.get(c), "-")
            if index.get(cfg.name) in best[c]:
                v += "*"
            cells.append(v)
        table_rows.append(cells)
        if rec is not None and rec.state != ProbeState.TRAINING:
            notes.append(f"  {cfg.name}: {describe_state(probe)}")
    headers = ["probe", "submodule", "pooling", "state", "steps", "best"] + tcols
    if not probes:  # the head says "not fitted" once: no column of it, nor of 0 steps
        headers, table_rows = headers[:3], [cells[:3] for cells in table_rows]
    out = [head, _text_table(headers, table_rows)]
    if any(best.values()):
        out.append("* best in column (lowest loss, highest otherwise); loss = test log-loss")
    if notes:
        out.append("status:\n" + "\n".join(notes))
    return "\n".join(out)


def _metric_cell(row: Mapping[str, Any], col: str, is_best: bool) -> str:
    v = row.get(col)
    cls = "lpw-num lpw-best" if is_best else "lpw-num"
    lo, hi = finite(row.get(f"{col}_low")), finite(row.get(f"{col}_high"))
    ci = ""
    if lo is not None and hi is not None:
        ci = f'<span class="lpw-ci">[{_e(fmt_value(lo))}, {_e(fmt_value(hi))}]</span>'
    title = ' title="best in column"' if is_best else ""
    return f'<td class="{cls}" data-col="{_e(col)}"{title}>{_e(fmt_value(v))}{ci}</td>'


def _metric_header(col: str) -> str:
    label = column_label(col)
    direction = better_direction(col)
    if direction is None:
        why = "a reference, not ranked" if col.startswith(UNRANKED_PREFIXES) else "not ranked"
        return f'<th class="lpw-num" title="{_e(col)}: {why}">{_e(label)}</th>'
    arrow = "↓" if direction == "min" else "↑"
    hint = better_hint(direction)
    return f'<th class="lpw-num" title="{_e(col)}: {hint}">{_e(label)} {arrow}</th>'


def _metrics_table(cols: Sequence[str], rows: Sequence[Mapping[str, Any]], cls: str) -> str:
    best = {c: best_rows(rows, c) for c in cols}
    hdr = "".join(_metric_header(c) for c in cols)
    body = []
    for i, r in enumerate(rows):
        cells = "".join(_metric_cell(r, c, i in best[c]) for c in cols)
        body.append(
            f'<tr data-probe="{_e(r["probe"])}"><td class="lpw-mono">{_e(r["probe"])}</td>'
            f"{cells}</tr>"
        )
    return f'<table class="{cls}"><tr><th>probe</th>{hdr}</tr>{"".join(body)}</table>'


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


def runner_html(runner: Any) -> str:
    """The runner as static HTML: model, probes and their state, metrics with the best
    value per column marked, loss sparklines, full configurations folded away."""
    configs = list(getattr(runner, "configs", []))
    probes = getattr(runner, "probes", {}) or {}
    state = str(getattr(runner, "state", "?"))
    cols, rows = _metrics_rows(runner)
    by_name = {r["probe"]: r for r in rows}
    head = (
        '<div class="lpw-head">'
        '<span class="lpw-title">ProbeRunner</span>'
        f'<span class="lpw-mono lpw-model">{_e(_model_label(runner))}</span>'
        f'<span class="lpw-muted">{len(configs)} probe(s)</span>'
        f"{_badge(state)}</div>"
    )
    prow = []
    for cfg in configs:
        probe = probes.get(cfg.name)
        label = state_label(probe)
        rec = _record(probe)
        settings = (
            f"patience {cfg.patience} · warmup {cfg.warmup_steps} · ≤{cfg.max_steps} steps"
            if getattr(cfg, "early_stopping", True)
            else f"no early stopping · ≤{cfg.max_steps} steps"
        )
        said = describe_state(probe)  # under the badge only when it says more than it
        said = "" if said == label else f'<br><span class="lpw-muted lpw-small">{_e(said)}</span>'
        prow.append(
            f'<tr data-probe="{_e(cfg.name)}">'
            f'<td class="lpw-mono lpw-name">{_e(cfg.name)}</td>'
            f'<td class="lpw-wrap lpw-state">{_badge(label)}{said}</td>'
            f"<td>{_probe_sparkline(probe)}</td>"
            f'<td class="lpw-num">{rec.steps if rec else 0}</td>'
            f'<td class="lpw-mono lpw-submodule">{_e(cfg.submodule)}</td>'
            f"<td>{_e(cfg.pooling)}</td>"
            f'<td class="lpw-classes">{_chips(cfg.classes or ["(from the training data)"])}</td>'
            f'<td class="lpw-muted lpw-small">{_e(settings)}</td>'
            "</tr>"
        )
    probes_table = (
        '<table class="lpw-probes"><tr><th>probe</th><th>state</th><th>loss curve</th>'
        '<th class="lpw-num">steps</th><th>submodule</th><th>pooling</th><th>classes</th>'
        "<th>settings</th></tr>" + "".join(prow) + "</table>"
    )
    parts = [head, "<h4>Probes</h4>", probes_table]
    if cols:
        compact = [c for c in compact_columns(cols) if c in cols] or cols
        parts += [
            "<h4>Metrics</h4>",
            _metrics_table(compact, rows, "lpw-metrics"),
            '<div class="lpw-muted">Held-out (test-set) metrics; the interval under a value '
            "is its 95% bootstrap interval. Best value per column highlighted (lowest for "
            "losses, highest otherwise).</div>",
        ]
        if len(compact) < len(cols):
            parts.append(
                f'<details class="lpw-details lpw-all-metrics"><summary>All metric columns '
                f"({len(cols)})</summary>{_metrics_table(cols, rows, 'lpw-metrics-all')}"
                "</details>"
            )
    elif any(n in probes for n in by_name):
        parts.append(
            '<div class="lpw-muted">No held-out metrics yet: pass an eval_set to fit_probes '
            "or call runner.compute_metrics(dataset).</div>"
        )
    if configs:
        parts.append(
            f'<details class="lpw-details"><summary>Configurations ({len(configs)})</summary>'
            f"{_config_table(configs)}</details>"
        )
    return _wrap(runner_text(runner), "".join(parts), "runner")


def runner_mimebundle(runner: Any, include: Any = None, exclude: Any = None) -> dict[str, str]:
    return _mimebundle(runner_text(runner), lambda: runner_html(runner), include, exclude)


# -- probe ----------------------------------------------------------------------------
def weight_summary(probe: Any, top: int = 8) -> dict[str, Any] | None:
    """Norms and the dimensions with the largest |weight| (raw feature space);
    None while the probe has no weights yet."""
    import numpy as np  # already loaded by the core whenever a probe exists

    try:
        coef = np.asarray(probe.coef_, dtype=np.float64)  # [classes, dim]
    except Exception:  # not fitted yet (the core raises ProbeError): nothing to summarise
        return None
    score = np.abs(coef).max(0)
    order = np.argsort(-score, kind="stable")[:top]
    return {
        "norm": float(np.linalg.norm(coef)),
        "class_norms": [float(np.linalg.norm(r)) for r in coef],
        "top": [(int(j), [float(coef[c, j]) for c in range(coef.shape[0])]) for j in order],
        "max_abs": float(score.max()) if score.size else 0.0,
    }


def _probe_metrics(probe: Any) -> dict[str, Any]:
    """Held-out metrics when the probe carries them (``probe.metrics``), else {}."""
    m = getattr(probe, "metrics", None)
    if m is None:
        return {}
    try:
        return dict(m)
    except (TypeError, ValueError):
        return {}


def _history_summary(rec: Any) -> str:
    pts, what = _series(list(rec.history))
    if not pts:
        return "no evaluations yet"
    first, last = pts[0][1], pts[-1][1]
    s = f"{len(pts)} evaluations; {what} {fmt_value(first)} → {fmt_value(last)}"
    if math.isfinite(rec.best_val_loss):
        s += f"; best {fmt_value(rec.best_val_loss)} at step {rec.best_step}"
    return s


def probe_text(probe: Any) -> str:
    cfg = probe.config
    rec = _record(probe)
    lines = [
        f"LinearProbe {probe.name}",
        f"  submodule: {cfg.submodule}   pooling: {cfg.pooling}   dim: {probe.dim}",
        f"  classes: {_classes_text(cfg.classes)}",
        f"  state: {describe_state(probe)}",
    ]
    if rec is not None and rec.state != ProbeState.NOT_FITTED:
        lines.append(
            f"  steps: {rec.steps}   epochs: {rec.epochs_done}   examples: {rec.examples_seen}"
        )
        lines.append(f"  history: {_history_summary(rec)}")
        if rec.code_length_bits > 0:
            lines.append(
                f"  online Adam code (first pass): {rec.code_length_bits:.1f} bits "
                f"({rec.uniform_bits / rec.code_length_bits:.2f}x shorter than uniform)"
            )
    metrics = {k: v for k, v in _probe_metrics(probe).items() if finite(v) is not None}
    if metrics:
        lines.append("  metrics: " + ", ".join(f"{k}={fmt_value(v)}" for k, v in metrics.items()))
    ws = weight_summary(probe, top=5)
    if ws is not None:
        dims = ", ".join(f"{j}" for j, _ in ws["top"])
        lines.append(f"  weights: norm {ws['norm']:.3f}; top dims by |w|: {dims}")
    return "\n".join(lines)


def probe_validity(probe: Any, runner: Any = None) -> list[str]:
    """The probe's one-line validity readings from ``runner.validity()`` (control task,
    random-init and confound gaps, interval width, code length, seed spread; see
    ``core.methods.validity``), or [] when there is no runner to ask (``runner=``, else a
    ``probe.runner`` if the probe carries one), it has no row for this probe, or it
    fails."""
    runner = runner if runner is not None else getattr(probe, "runner", None)
    validity = getattr(runner, "validity", None)
    if not callable(validity):
        return []
    try:
        table = validity()
        if table is None or probe.name not in table.index or "reading" not in table.columns:
            return []
        reading = table.loc[probe.name, "reading"]
    except Exception:  # a repr never raises: no card
        return []
    if not isinstance(reading, str):
        return []
    return [r.strip() for r in reading.split("; ") if r.strip()]


def _validity_card(readings: Sequence[str]) -> str:
    """A compact card of validity readings, each comparison coloured by its verdict
    (beats / ties / loses, from ``display.states.VERDICTS``); a loss also in the
    warning class."""
    items = []
    for r in readings:
        verdict = reading_verdict(r)
        cls = ' class="lpw-validity-fails"' if verdict == "loses" else ""
        style = f' style="color: {VERDICTS[verdict]["color"]}"' if verdict else ""
        items.append(f'<li{cls}{style} data-check="{verdict or "info"}">{_e(r)}</li>')
    return (
        '<h4>Validity</h4><div class="lpw-validity">'
        f'<ul class="lpw-validity-readings">{"".join(items)}</ul>'
        '<div class="lpw-muted">from <code>runner.validity()</code></div></div>'
    )


def probe_html(probe: Any, runner: Any = None) -> str:
    """One probe: configuration, training summary with its loss curve, metrics,
    feature dimension and a weight summary (norms, top dimensions by |weight|); with
    a runner to ask (``runner=``, or ``probe.runner``), a compact validity card."""
    cfg = probe.config
    rec = _record(probe)
    label = state_label(probe)
    head = (
        '<div class="lpw-head"><span class="lpw-title">LinearProbe</span>'
        f'<span class="lpw-mono lpw-name">{_e(probe.name)}</span>{_badge(label)}</div>'
        f'<div class="lpw-muted lpw-state">{_e(describe_state(probe))}</div>'
    )
    facts = [
        ("submodule", f'<span class="lpw-mono lpw-submodule">{_e(cfg.submodule)}</span>'),
        ("pooling", _e(cfg.pooling)),
        ("classes", f'<span class="lpw-classes">{_chips(cfg.classes)}</span>'),
        ("feature dim", _e(probe.dim)),
    ]
    if rec is not None and rec.state != ProbeState.NOT_FITTED:
        facts += [
            (
                "steps",
                _e(f"{rec.steps} ({rec.epochs_done} epoch(s), {rec.examples_seen} examples)"),
            ),
            ("best step", _e(fmt_value(rec.best_step))),
            ("best val loss", _e(fmt_value(rec.best_val_loss))),
            ("chosen L2", _e(fmt_value(rec.best_l2))),
        ]
        if getattr(rec, "refined", False):
            facts.append(
                ("final fit", _e(f"converged (L-BFGS), val loss {fmt_value(rec.refined_val_loss)}"))
            )
        if rec.code_length_bits > 0:
            facts.append(
                (
                    "online Adam code (first pass)",
                    _e(
                        f"{rec.code_length_bits:.1f} bits vs {rec.uniform_bits:.1f} uniform "
                        f"({rec.uniform_bits / rec.code_length_bits:.2f}× shorter)"
                    ),
                )
            )
    parts = [head, "<h4>Summary</h4>", '<dl class="lpw-facts">']
    parts += [f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts]
    parts.append("</dl>")
    if rec is not None and rec.history:
        parts += [
            "<h4>Training history</h4>",
            f"<div>{_probe_sparkline(probe, width=260, height=48)}</div>",
            f'<div class="lpw-muted">{_e(_history_summary(rec))}</div>',
        ]
    metrics = _probe_metrics(probe)
    if metrics:
        cells = "".join(
            f'<tr><td>{_e(k)}</td><td class="lpw-num">{_e(fmt_value(v))}</td></tr>'
            for k, v in metrics.items()
        )
        parts += ["<h4>Metrics</h4>", f'<table class="lpw-metrics">{cells}</table>']
    readings = probe_validity(probe, runner)
    if readings:
        parts.append(_validity_card(readings))
    ws = weight_summary(probe)
    if ws is not None:
        norms = ", ".join(
            f"{_e(c)}: {n:.3f}" for c, n in zip(cfg.classes, ws["class_norms"], strict=True)
        )
        head_cells = "".join(f'<th class="lpw-num">{_e(c)}</th>' for c in cfg.classes)
        rows = []
        for j, ws_row in ws["top"]:
            mag = max(abs(w) for w in ws_row)
            bar = int(round(60 * mag / ws["max_abs"])) if ws["max_abs"] > 0 else 0
            rows.append(
                f'<tr><td class="lpw-num">{j}</td>'
                + "".join(f'<td class="lpw-num">{w:+.4f}</td>' for w in ws_row)
                + f'<td><span class="lpw-bar" style="width:{bar}px"></span></td></tr>'
            )
        parts += [
            "<h4>Weights</h4>",
            f'<div>‖W‖ = {ws["norm"]:.4f} <span class="lpw-muted">(per class: {norms})</span>'
            "</div>",
            '<table class="lpw-weights"><tr><th class="lpw-num">dim</th>'
            f"{head_cells}<th>|w|</th></tr>{''.join(rows)}</table>",
        ]
    parts.append(
        f'<details class="lpw-details"><summary>Configuration</summary>'
        f"{_config_table([cfg])}</details>"
    )
    text = probe_text(probe)
    if readings:
        text += "\nvalidity:\n" + "\n".join(f"  - {r}" for r in readings)
    return _wrap(text, "".join(parts), "probe")


def probe_mimebundle(
    probe: Any, include: Any = None, exclude: Any = None, runner: Any = None
) -> dict[str, str]:
    return _mimebundle(probe_text(probe), lambda: probe_html(probe, runner), include, exclude)


# -- steering -----------------------------------------------------------------------------
def _tokens(top: Sequence[tuple[str, float]], k: int = 3) -> str:
    return ", ".join(f'<span class="lpw-mono">{_e(repr(t))}</span> {p:.3g}' for t, p in top[:k])


def steering_html(result: Any) -> str:
    """A `SteeringResult` as a reader wants it: how hard the push was (against the mean
    activation), the probe's read-out before and after, and per input the likeliest next
    tokens unchanged and steered with the KL between them (and the generated texts)."""
    push = result.scale * result.direction_norm
    rel = (
        f" ({push / result.activation_norm:.2f}× the mean activation norm)"
        if (result.activation_norm)
        else ""
    )
    facts = [
        ("site", f'<span class="lpw-mono">{_e(result.submodule)}</span>'),
        ("push", _e(f"scale {result.scale:g} × |direction| {result.direction_norm:.3g}{rel}")),
    ]
    delta = result.delta
    if delta is not None:
        i = result.classes.index(result.positive)
        before, after = result.proba_before[:, i].mean(), result.proba_after[:, i].mean()
        facts.append(
            (
                f"probe P({result.positive})",
                _e(f"{before:.3f} → {after:.3f} ({after - before:+.3f}, mean of {len(delta)})"),
            )
        )
    if result.kl is not None and len(result.kl):
        facts.append(("next-token KL", _e(f"{float(result.kl.mean()):.4g} nats (mean)")))
    parts = [
        '<div class="lpw-head"><span class="lpw-title">SteeringResult</span></div>',
        '<dl class="lpw-facts">',
        *(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts),
        "</dl>",
    ]
    rows = []
    for k, (b, a) in enumerate(zip(result.top_before, result.top_after, strict=False)):
        kl = f"{result.kl[k]:.4f}" if result.kl is not None else "–"
        rows.append(
            f'<tr><td class="lpw-num">{k}</td><td>{_tokens(b)}</td><td>{_tokens(a)}</td>'
            f'<td class="lpw-num">{_e(kl)}</td></tr>'
        )
    if rows:
        parts.append(
            '<h4>Next token, per input</h4><table class="lpw-metrics"><tr>'
            '<th class="lpw-num">input</th><th>unchanged (top 3)</th><th>steered (top 3)</th>'
            '<th class="lpw-num">KL (nats)</th></tr>' + "".join(rows) + "</table>"
        )
    texts = list(zip(result.text_before or [], result.text_after or [], strict=False))
    if texts:
        cells = "".join(
            f'<tr><td class="lpw-num">{k}</td><td class="lpw-wrap">{_e(b)}</td>'
            f'<td class="lpw-wrap">{_e(a)}</td></tr>'
            for k, (b, a) in enumerate(texts)
        )
        parts.append(
            '<h4>Generated</h4><table class="lpw-metrics"><tr><th class="lpw-num">input</th>'
            f"<th>unchanged</th><th>steered</th></tr>{cells}</table>"
        )
    return _wrap(repr(result), "".join(parts), "steering")
