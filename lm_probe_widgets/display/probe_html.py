"""A probe's static repr (text and HTML): configuration, training summary with its
loss curve, held-out metrics, a weight summary and, with a runner to ask, a compact
card of its validity readings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..core.engine.l2_note import l2_note
from ..core.engine.states import ProbeState
from .columns import finite
from .html import (
    _badge,
    _chips,
    _classes_text,
    _config_table,
    _e,
    _mimebundle,
    _record,
    _wrap,
    describe_state,
    fmt_value,
    state_label,
)
from .sparkline import _probe_sparkline, _series
from .states import VERDICTS, reading_verdict


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


def probe_title(probe: Any) -> str:
    """ "LinearProbe", or the family's name for a family probe ("MLP probe")."""
    kind = getattr(probe.config, "kind", "linear")
    return "LinearProbe" if kind == "linear" else FAMILY_TITLES.get(kind, f"{kind} probe")


FAMILY_TITLES = {"mlp": "MLP probe", "sparse": "k-sparse probe", "attention": "attention probe"}


def pooling_cell(cfg: Any) -> str:
    """How a probe reads its site, for a table's pooling column: the pooling, with the
    family of a family probe ("mean · mlp"; an attention probe's pooling is learned)."""
    kind = getattr(cfg, "kind", "linear")
    if kind == "linear":
        return str(cfg.pooling)
    return "attention (learned)" if kind == "attention" else f"{cfg.pooling} · {kind}"


def _family_facts(cfg: Any) -> list[tuple[str, str]]:
    """A family probe's kind and options, escaped; none for a linear probe."""
    kind = getattr(cfg, "kind", "linear")
    if kind == "linear":
        return []
    keys = {"mlp": ("hidden", "weight_decay"), "sparse": ("k", "rank_by")}
    options = ", ".join(f"{k}={getattr(cfg, k)}" for k in keys.get(kind, ("heads", "weight_decay")))
    return [("kind", _e(f"{kind} ({options})"))]


def probe_text(probe: Any) -> str:
    cfg = probe.config
    rec = _record(probe)
    lines = [
        f"{probe_title(probe)} {probe.name}",
        f"  submodule: {cfg.submodule}   pooling: {cfg.pooling}   dim: {probe.dim}",
        f"  classes: {_classes_text(cfg.classes)}",
        f"  state: {describe_state(probe)}",
    ]
    if rec is not None and rec.state != ProbeState.NOT_FITTED:
        lines.append(
            f"  steps: {rec.steps}   epochs: {rec.epochs_done}   examples: {rec.examples_seen}"
        )
        lines.append(f"  history: {_history_summary(rec)}")
        if getattr(rec, "refined", False):
            lines.append(f"  chosen L2: {_chosen_l2(probe)}")
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


def _chosen_l2(probe: Any) -> str:
    """The strength in use, with what searching it chose it from (metrics' l2_note)."""
    rec = probe.record
    note = l2_note(probe.config, rec)
    return fmt_value(rec.best_l2) + (f" ({note})" if note else "")


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
        f'<div class="lpw-head"><span class="lpw-title">{_e(probe_title(probe))}</span>'
        f'<span class="lpw-mono lpw-name">{_e(probe.name)}</span>{_badge(label)}</div>'
        f'<div class="lpw-muted lpw-state">{_e(describe_state(probe))}</div>'
    )
    facts = [
        ("submodule", f'<span class="lpw-mono lpw-submodule">{_e(cfg.submodule)}</span>'),
        ("pooling", _e(cfg.pooling)),
        *_family_facts(cfg),
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
            ("chosen L2", _e(_chosen_l2(probe))),
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
