"""Static HTML snapshots of the widgets, for places where no widget can render.

A saved notebook reopened without a kernel, an nbconvert export, GitHub: there the
widget model is gone and JupyterLab would say "Error displaying widget: model not
found". So every widget's display output also carries ``text/html``: this module's
rendering of its current state, built from the same state objects and the same words
and colours (``display.states``) as the live view. Each snapshot uses the envelope of
the runner's HTML repr (``display.html``): a plain-text fallback for untrusted
notebooks, the styled body (light and dark) where the HTML is trusted.

Display: `SnapshotDisplay` gives a widget display ids, so the snapshot can be
refreshed in place (``update_display``) when its state changes.

Why two outputs: a snapshot in the same output as the live view is not enough in
JupyterLab. For a trusted notebook (one you saved yourself) its widget renderer outranks
``text/html``, and when the widget model is gone (reopened with no kernel, "Save Widget
State Automatically" off, the default) it shows "Error displaying widget: model not
found" and never falls back to another type (jupyter-widgets/ipywidgets#849). The kernel
cannot tell when the notebook is saved, so the picker, the table and the playground are
shown as two outputs, side by side in the cell: the live view (widget only) and its
static copy (``text/html``, kept up to date). A stylesheet in the static copy shows one
of the two: the live view while it is rendered (its root has ``lpw-live``), else the
copy ("static copy -- run this cell again to interact"); so the widgets stay live under
Run All for as long as the kernel lives, and a reopened notebook shows the copy and no
error. The dashboard, which nobody interacts with after its fit, keeps one output that
becomes its snapshot when the fit ends (`Dashboard.close`).
"""

from __future__ import annotations

import html
import math
import uuid
from collections.abc import Sequence
from typing import Any

import traitlets

from ..core.engine.states import LiveState
from ..display import states as st
from ..display.columns import format_number
from ..display.html import _wrap
from ..display.metrics_table import metrics_table_html

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _colour(color: str) -> str:
    return f' style="--lpw-state: {_e(color)}"'


# -- bundles and display ------------------------------------------------------------------
def split_bundle(bundle: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, metadata) from either form a `_repr_mimebundle_` may return."""
    if bundle is None:
        return {}, {}
    if isinstance(bundle, tuple):
        data, meta = bundle
        return dict(data or {}), dict(meta or {})
    return dict(bundle), {}


def with_snapshot(bundle: Any, obj: Any) -> Any:
    """A widget's bundle plus its snapshot as ``text/html`` (and a readable
    ``text/plain``), in the form it came in."""
    data, meta = split_bundle(bundle)
    if not data:
        return bundle
    data["text/html"] = obj.snapshot_html()
    summary = getattr(obj, "summary", None)
    if callable(summary):
        data["text/plain"] = summary()
    return (data, meta) if isinstance(bundle, tuple) else data


def snapshot_bundle(obj: Any) -> dict[str, str]:
    """A frozen output: the snapshot (and the readable text), no live view."""
    data = {"text/html": obj.snapshot_html()}
    summary = getattr(obj, "summary", None)
    data["text/plain"] = summary() if callable(summary) else repr(obj)
    return data


# The static copy's stylesheet: show the live view while it is rendered, else the copy.
# Outputs are JupyterLab's (and nbconvert's lab template's) ``.jp-OutputArea-child``; the
# live output comes right before its copy.
STATIC_COPY_CSS = (
    ".jp-OutputArea-child:has(.lpw-live) + .jp-OutputArea-child:has(.lpw-static-copy)"
    "{display:none}"
    ".jp-OutputArea-child:not(:has(.lpw-live)):has(+ .jp-OutputArea-child .lpw-static-copy)"
    "{display:none}"
)
STATIC_COPY_NOTE = "Static copy: run this cell again to interact."


def static_copy_html(obj: Any, copy_id: str = "") -> str:
    """The snapshot shown beside a live view: the note, the stylesheet, the snapshot.
    `copy_id` marks it for the live view's script, which hides it where the stylesheet's
    :has() rules cannot (VS Code)."""
    return (
        f'<div class="lpw-static-copy" data-lpw-copy="{_e(copy_id)}">'
        f"<style>{STATIC_COPY_CSS}</style>"
        f'<div class="lpw-static-note" style="font-size: 12px; opacity: 0.7">'
        f"{_e(STATIC_COPY_NOTE)}</div>{obj.snapshot_html()}</div>"
    )


def static_copy_bundle(obj: Any, copy_id: str = "") -> dict[str, str]:
    data = snapshot_bundle(obj)
    data["text/html"] = static_copy_html(obj, copy_id)
    return data


def live_only(bundle: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The widget's view with an empty text fallback (what shows where widgets cannot
    render, e.g. nbconvert: nothing, the static copy beside it says it all)."""
    data, meta = split_bundle(bundle)
    return {WIDGET_MIME: data[WIDGET_MIME], "text/plain": ""}, meta


class SnapshotDisplay(traitlets.HasTraits):
    """Mixin for widgets: shown with display ids, so `refresh_snapshot()` can put the
    current state into every output showing this widget, and `freeze()` can leave only
    the snapshot there. With ``static_copy_beside`` (the picker, the table, the
    playground) each display is two outputs, the live view and its static copy (see the
    module docstring); without it (a progress bar or monitor shown on its own) one output
    carries both, and a refresh re-renders the live view."""

    _live_ids: tuple[str, ...] = ()  # outputs that carry the live view
    _static_ids: tuple[str, ...] = ()  # outputs that show the snapshot only
    _from_browser = False  # inside a state change sent by the browser
    _snapshot_stale = False  # the displayed snapshot is behind the widget's state
    static_copy_beside = True
    # the static copies beside the live views: the browser hides these while a live view
    # shows (the stylesheet does in JupyterLab; the script also where :has() is missing)
    copy_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        live_id = uuid.uuid4().hex
        self._live_ids = (*self._live_ids, live_id)
        bundle = self._repr_mimebundle_()
        if not self.static_copy_beside:
            data, meta = split_bundle(bundle)
            display(data, metadata=meta, raw=True, display_id=live_id)
            return
        copy_id = uuid.uuid4().hex
        self.copy_ids = [*self.copy_ids, copy_id]  # in the state the live view starts with
        data, meta = live_only(bundle)
        display(data, metadata=meta, raw=True, display_id=live_id)
        self._static_ids = (*self._static_ids, copy_id)
        display(static_copy_bundle(self, copy_id), raw=True, display_id=copy_id)

    @property
    def displayed(self) -> bool:
        """Whether some output shows this widget (live or static)."""
        return bool(self._live_ids or self._static_ids)

    def refresh_snapshot(self) -> bool:
        """Update the displayed outputs' snapshot; False if this was never displayed."""
        if not self.displayed:
            return False
        from IPython.display import update_display

        self._snapshot_stale = False
        try:
            if not self.static_copy_beside:
                for display_id in self._live_ids:
                    data, meta = split_bundle(self._repr_mimebundle_())
                    update_display(data, metadata=meta, raw=True, display_id=display_id)
            for display_id in self._static_ids:
                static = (
                    static_copy_bundle(self, display_id)
                    if self.static_copy_beside
                    else snapshot_bundle(self)
                )
                update_display(static, raw=True, display_id=display_id)
        except Exception:  # no frontend left (kernel shutting down)
            return False
        return True

    def freeze(self) -> bool:
        """Leave only the current snapshot in this widget's outputs (no live view).
        Later changes still refresh that snapshot; display the widget again for a new
        live view. False if there was no live output to freeze."""
        if not self._live_ids:
            return False
        live, self._live_ids = self._live_ids, ()
        from IPython.display import update_display

        try:
            if self.static_copy_beside:  # the copy beside each shows; the live one goes
                for display_id in live:
                    update_display({"text/plain": ""}, raw=True, display_id=display_id)
                self.refresh_snapshot()
            else:
                self._static_ids = (*self._static_ids, *live)
                self._snapshot_stale = False
                for display_id in live:
                    update_display(snapshot_bundle(self), raw=True, display_id=display_id)
        except Exception:  # no frontend left (kernel shutting down)
            return False
        return True

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """A change from the browser (a click, typing) is remembered as such."""
        self._from_browser = True
        try:
            super().set_state(sync_data)  # type: ignore[misc]
        finally:
            self._from_browser = False

    def snapshot_changed(self) -> None:
        """The state changed: refresh the snapshot now, unless the browser made the
        change and the snapshot shares the live view's output (re-rendering the view
        would interrupt a click or typing); then it catches up in `catch_up_snapshot`."""
        if self._from_browser and not self.static_copy_beside:
            self._snapshot_stale = True
        else:
            self.refresh_snapshot()

    def catch_up_snapshot(self) -> None:
        if self._snapshot_stale:
            self._snapshot_stale = False
            self.refresh_snapshot()


# -- progress -----------------------------------------------------------------------------
def _row(
    name: str,
    fraction: float,
    state_label: str,
    color: str,
    detail: str,
    note: str = "",
    attrs: str = "",
) -> str:
    width = f"{100 * max(0.0, min(1.0, fraction)):.1f}%"
    out = (
        f'<div class="lpw-snap-row"{attrs}{_colour(color)}>'
        f'<span class="lpw-snap-name lpw-mono" title="{_e(name)}">{_e(name)}</span>'
        '<span class="lpw-snap-bar">'
        f'<span class="lpw-snap-fill" style="width: {width}"></span></span>'
        f'<span class="lpw-snap-state">{_e(state_label)}</span>'
        f'<span class="lpw-snap-detail lpw-muted">{_e(detail)}</span>'
    )
    if note:
        out += f'<span class="lpw-snap-note lpw-muted">{_e(note)}</span>'
    return out + "</div>"


def progress_body(state: Any, title: str = "") -> str:
    f = state.fit
    fit_state = str(f.get("state", LiveState.WAITING.value))
    style = st.fit_state(fit_state)
    parts = [
        f'<div class="lpw-snap-progress" data-fit-state="{_e(fit_state)}">',
        '<div class="lpw-snap-head">',
        f'<span class="lpw-title">{_e(title or "Probes")}</span>',
        f'<span class="lpw-snap-status"{_colour(style["color"])}>'
        f"{_e(f.get('headline', ''))}</span>",
        f'<span class="lpw-muted">{_e(f.get("stats", ""))}</span></div>',
    ]
    if f.get("message"):
        parts.append(f'<div class="lpw-snap-message">{_e(f["message"])}</div>')
    if state.phases:
        parts.append('<div class="lpw-snap-rows lpw-snap-phases">')
        for ph in state.phase_list():
            ps = st.PHASE_STATES.get(ph["state"], st.PHASE_STATES[LiveState.DONE.value])
            attrs = f' data-phase="{_e(ph["key"])}" data-state="{_e(ph["state"])}"'
            parts.append(
                _row(ph["label"], ph["fraction"], ps["label"], ps["color"], ph["text"], attrs=attrs)
            )
        parts.append("</div>")
    parts.append('<div class="lpw-snap-rows lpw-snap-probes">')
    for p in state.probe_list():
        ps = st.probe_state(p["state"])
        attrs = f' data-probe="{_e(p["name"])}" data-state="{_e(p["state"])}"'
        parts.append(
            _row(p["name"], p["fraction"], ps["label"], ps["color"], p["detail"], p["note"], attrs)
        )
    parts.append("</div>")
    if f.get("reasons"):
        items = "".join(f"<li>{_e(r)}</li>" for r in f["reasons"])
        parts.append(f'<ul class="lpw-snap-reasons lpw-muted">{items}</ul>')
    parts.append("</div>")
    return "".join(parts)


def progress_html(state: Any, title: str = "") -> str:
    return _wrap(state.summary(), progress_body(state, title), "progress")


# -- monitor ------------------------------------------------------------------------------
def chart_svg(row: dict[str, Any], steps: Sequence[int], losses: Sequence[float | None]) -> str:
    """One probe's chart, laid out like the live view (js/monitor.js) on the frame and
    axes its row carries (`MonitorState.chart` decides them once, for both)."""
    name = str(row["name"])
    f = row["frame"]
    fw, fh = f["w"], f["h"]
    pl, pr, pt, pb = f["l"], f["r"], f["t"], f["b"]
    x_max = float(row["x_max"])
    kept = row.get("kept_val_loss")
    lo, hi = float(row["y_lo"]), float(row["y_hi"])
    pw, ph = fw - pl - pr, fh - pt - pb

    def x(v: float) -> float:
        return pl + (v / x_max) * pw

    def y(v: float) -> float:
        return pt + (1 - (v - lo) / (hi - lo)) * ph

    parts = [
        f'<svg class="lpw-snap-chart" viewBox="0 0 {fw} {fh}" width="{fw}" height="{fh}" '
        f'role="img" aria-label="validation loss of {_e(name)}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect class="lpw-snap-plot" x="{pl}" y="{pt}" width="{pw}" height="{ph}"/>',
    ]
    if row.get("warmup"):
        parts.append(
            f'<rect class="lpw-snap-warmup" x="{pl}" y="{pt}" '
            f'width="{x(row["warmup"]) - pl:.1f}" height="{ph}"/>'
        )
    if row.get("window"):
        a, b = row["window"]
        parts.append(
            f'<rect class="lpw-snap-window" x="{x(a):.1f}" y="{pt}" '
            f'width="{max(0.0, x(b) - x(a)):.1f}" height="{ph}"/>'
        )
    d, pen = [], False
    for s, v in zip(steps, losses, strict=True):
        if v is None or not math.isfinite(v):
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{x(s):.1f} {y(v):.1f}")
        pen = True
    parts.append(f'<path class="lpw-snap-curve" d="{"".join(d)}" data-points="{len(steps)}"/>')
    best, best_loss = row.get("best_step"), row.get("best_val_loss")
    if best is not None and best in steps and losses[list(steps).index(best)] is not None:
        best_loss = losses[list(steps).index(best)]
    if best is not None and best_loss is not None:
        parts.append(
            f'<circle class="lpw-snap-best" cx="{x(best):.1f}" cy="{y(best_loss):.1f}" r="3.5">'
            f"<title>best: {_e(format_number(best_loss))} at step {_e(best)}</title>"
            "</circle>"
        )
    state = str(row.get("state", ""))
    ps = st.probe_state(state)
    stop = row.get("stop_step")
    if stop is not None and ps["final"]:
        sx = x(stop)
        anchor = "end" if sx > pl + pw / 2 else "start"
        lx = sx - 3 if anchor == "end" else sx + 3
        parts.append(
            f"<g{_colour(ps['color'])}>"
            f'<line class="lpw-snap-end" x1="{sx:.1f}" x2="{sx:.1f}" y1="{pt}" '
            f'y2="{fh - pb}"/>'
            f'<text class="lpw-snap-end-label" x="{lx:.1f}" y="{pt - 4}" '
            f'text-anchor="{anchor}">{_e(ps["label"])} @ {_e(stop)}</text></g>'
        )
    if kept is not None:
        kx, ky = x(row.get("kept_step") or (steps[-1] if steps else 0)), y(kept)
        last = [(s, v) for s, v in zip(steps, losses, strict=True) if v is not None]
        if last:
            parts.append(
                f'<line class="lpw-snap-kept-link" x1="{x(last[-1][0]):.1f}" '
                f'y1="{y(last[-1][1]):.1f}" x2="{kx:.1f}" y2="{ky:.1f}"/>'
            )
        r = 4.0
        parts.append(
            f'<path class="lpw-snap-kept" d="M{kx:.1f} {ky - r:.1f}L{kx + r:.1f} {ky:.1f}'
            f'L{kx:.1f} {ky + r:.1f}L{kx - r:.1f} {ky:.1f}Z"><title>kept weights: '
            f"{_e(row.get('kept_foot', ''))} ({_e(row.get('kept_label', ''))})</title></path>"
        )
    parts += [
        f'<text class="lpw-snap-axis" x="{pl - 4}" y="{pt + 8}" text-anchor="end">'
        f"{_e(row['y_labels'][0])}</text>",
        f'<text class="lpw-snap-axis" x="{pl - 4}" y="{fh - pb}" text-anchor="end">'
        f"{_e(row['y_labels'][1])}</text>",
        f'<text class="lpw-snap-axis" x="{pl}" y="{fh - 4}" text-anchor="start">0</text>',
        f'<text class="lpw-snap-axis lpw-snap-xmax" x="{fw - pr}" y="{fh - 4}" text-anchor="end">'
        f"{_e(row['x_label'])}</text>",
        "</svg>",
    ]
    return "".join(parts)


def card_foot(row: dict[str, Any], losses: Sequence[float | None]) -> str:
    """The one validation-loss number a card shows, with its label."""
    if row.get("kept_val_loss") is not None:
        return str(row.get("kept_foot", ""))
    last = next((v for v in reversed(losses) if v is not None), None)
    return f"val loss {format_number(last)} (latest)" if last is not None else "no evaluation yet"


def monitor_body(state: Any, title: str = "") -> str:
    rows = state.meta_list()
    curves = state.curves()
    legend = [("best", "var(--lpw-good)", "50%")]
    if any(r.get("warmup") for r in rows):
        legend.insert(0, ("warm-up", "color-mix(in srgb, var(--lpw-fg) 10%, transparent)", "2px"))
    if any(r.get("window") for r in rows):
        legend.append(("patience window", "color-mix(in srgb, #f57c00 22%, transparent)", "2px"))
    if any(r.get("kept_val_loss") is not None for r in rows):
        legend.append(("kept weights (end point)", "var(--lpw-fg)", "1px"))
    keys = "".join(
        f'<span class="lpw-snap-key" style="background: {c}; border-radius: {rad}"></span>'
        f" {_e(t)}  "
        for t, c, rad in legend
    )
    parts = [
        '<div class="lpw-snap-monitor">',
        '<div class="lpw-snap-head">'
        f'<span class="lpw-title">{_e(title or "Validation loss")}</span>'
        f'<span class="lpw-snap-legend lpw-muted">{keys}</span></div>',
        '<div class="lpw-snap-cards">',
    ]
    for row in rows:
        name = str(row["name"])
        steps, losses, _n = curves.get(name, [[], [], 0])
        ps = st.probe_state(str(row["state"]))
        parts.append(
            f'<div class="lpw-snap-card" data-probe="{_e(name)}" data-state="{_e(row["state"])}" '
            f'title="{_e(row.get("stop_reason", ""))}">'
            '<div class="lpw-snap-card-head">'
            f'<span class="lpw-mono lpw-snap-name">{_e(name)}</span>'
            f'<span class="lpw-snap-state"{_colour(ps["color"])}>{_e(ps["label"])}</span></div>'
            f"{chart_svg(row, steps, losses)}"
            f'<div class="lpw-snap-card-foot lpw-muted">{_e(card_foot(row, losses))}</div></div>'
        )
    parts.append("</div></div>")
    return "".join(parts)


def monitor_text(state: Any) -> str:
    lines = ["validation loss per probe"]
    curves = state.curves()
    for row in state.meta_list():
        losses = curves.get(row["name"], [[], [], 0])[1]
        label = st.probe_state(str(row["state"]))["label"]
        lines.append(f"  {row['name']}: {label}; {card_foot(row, losses)}")
    return "\n".join(lines)


def monitor_html(state: Any, title: str = "") -> str:
    return _wrap(monitor_text(state), monitor_body(state, title), "monitor")


def dashboard_html(progress: Any, monitor: Any, title: str = "") -> str:
    """The dashboard's final (or current) state: progress above the loss charts (none
    for a call that trains no probes, such as a steering sweep)."""
    body = progress_body(progress, title)
    if progress.probes:
        body += monitor_body(monitor)
    return _wrap(progress.summary(), body, "dashboard")


# -- metrics table ------------------------------------------------------------------------
def table_grid(
    columns: list[dict[str, Any]],
    rows: list[list[Any]],
    order: list[int],
    names: list[str],
    cls: str,
    sort: dict[str, Any] | None = None,
) -> str:
    """The columns `names` of the table's rows in `order`, by the runner repr's builder
    (`display.metrics_table`): same headings, numbers, best marks; the sort marked."""
    index = {c["name"]: j for j, c in enumerate(columns)}
    all_names = [c["name"] for c in columns]
    records = [dict(zip(all_names, r, strict=True)) for r in rows]
    specs = [columns[index[n]] for n in names]
    key = "probe" if "probe" in index else None
    return metrics_table_html(specs, records, cls, order=order, sort=sort, key=key)


def table_html(table: Any) -> str:
    """The table as shown: compact columns (intervals beside their metric), the sort
    chosen in the browser, every column one click away under "All columns"."""
    columns, rows, order = list(table.columns), list(table.rows), table.order()
    all_names = [c["name"] for c in columns]
    compact = table.visible_columns()
    title = table.title or "Metrics"
    body = (
        f'<div class="lpw-snap-head"><span class="lpw-title">{_e(title)}</span>'
        f'<span class="lpw-muted">{len(rows)} row(s)</span></div>'
        + table_grid(
            columns, rows, order, compact, "lpw-metrics lpw-snap-compact", dict(table.sort)
        )
    )
    if len(compact) < len(all_names):
        body += (
            f'<details class="lpw-details"><summary>All columns ({len(all_names)})</summary>'
            + table_grid(
                [{**c, "ci": None} for c in columns],
                rows,
                order,
                all_names,
                "lpw-metrics lpw-snap-all",
            )
            + "</details>"
        )
    return _wrap(table.summary(), body, "table")


# -- picker -------------------------------------------------------------------------------
def picker_html(picker: Any) -> str:
    selected = list(picker.selected)
    chips = "".join(f'<span class="lpw-chip lpw-mono">{_e(s)}</span>' for s in selected)
    body = (
        '<div class="lpw-snap-head"><span class="lpw-title">Submodule picker</span>'
        f'<span class="lpw-muted">{len(picker.tree)} modules · {len(selected)} selected</span>'
        "</div>"
        f'<div class="lpw-snap-chips lpw-snap-selected">{chips or "<i>nothing selected</i>"}</div>'
        '<div class="lpw-muted">The selection when this output was last updated; in a '
        "running notebook <code>picker.selected</code> holds the current one.</div>"
    )
    return _wrap(picker.summary(), body, "picker")
