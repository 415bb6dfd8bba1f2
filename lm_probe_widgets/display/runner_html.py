"""The runner's static repr (text and HTML): model, probes and their state with loss
sparklines, held-out metrics (compact, every column folded away) with the best value
per column marked, full configurations folded away."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.engine.states import ProbeState
from .columns import NEUTRAL, compact_columns, finite
from .html import (
    _badge,
    _chips,
    _config_table,
    _e,
    _is_missing,
    _mimebundle,
    _record,
    _text_table,
    _wrap,
    describe_state,
    fmt_value,
    state_label,
)
from .metrics_table import best_rows, column_spec, metrics_table_html
from .probe_html import pooling_cell
from .sparkline import _probe_sparkline

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
            pooling_cell(cfg),
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


def _metrics_table(cols: Sequence[str], rows: Sequence[dict[str, Any]], cls: str) -> str:
    """The metrics table of `cols` (intervals under their values), probe names first."""
    names = list(rows[0]) if rows else ["probe", *cols]
    specs = [column_spec("probe", names, "string")] + [column_spec(c, names) for c in cols]
    return metrics_table_html(specs, rows, cls, key="probe")


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
            f"<td>{_e(pooling_cell(cfg))}</td>"
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
