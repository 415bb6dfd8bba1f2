"""Live early-stopping monitor: validation-loss curves per probe, and a Stop button.

Curves grow by a point per evaluation, for every probe, possibly hundreds of times a
second. Sending whole histories at every redraw would grow without bound, so the
browser gets only new points (a custom message ``{"type": "points"}`` carrying,
per probe, the index of the first new point and the new steps/losses). A view that
opens late, or misses a message, sees a gap and asks for a ``resync``; the full
arrays then come once as a ``snapshot``. At the end of a fit the ``curves`` trait
holds the compact arrays, so saved widget state and re-opened views show the
complete picture. Curves longer than 2000 points are stored reduced (each bucket's
min and max, plus the best point) so saved notebooks stay small; ``n`` in
``[steps, losses, n]`` counts every point, so live appends stay aligned.

The Stop button sets the ``stop_requested`` trait from the browser; the dashboard
processes that message between batches and calls ``runner.request_stop()``.
"""

from __future__ import annotations

import math
from typing import Any

import anywidget
import traitlets

from ..core.engine import events as ev
from ..core.engine.reducer import FitTracker, ProbeTrack
from ..core.engine.states import LiveState
from ..display import states as st
from ..display.columns import format_number
from ._assets import css_text, esm_source
from .snapshot import SnapshotDisplay, with_snapshot

MAX_STORED_POINTS = 2000  # per curve, in saved widget state and snapshots
# A chart's frame: size and margins in pixels (the top margin holds the end label). The
# live view (js/monitor.js) and the static snapshot (widgets/snapshot.py) both lay a
# chart out in it, on the axes `MonitorState.chart` decides.
FRAME = {"w": 300, "h": 130, "l": 44, "r": 8, "t": 16, "b": 18}


def loss_bounds(lo: float | None, hi: float | None) -> tuple[float, float]:
    """The y axis for losses from `lo` to `hi` (None: none yet): padded by 6%, a
    loss axis stops at 0, a flat curve gets a unit-high band."""
    if lo is None or hi is None:
        return 0.0, 1.0
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.06
    return (lo - pad if lo - pad >= 0 or lo < 0 else 0.0), hi + pad


# The reducer's facts a probe's card shows (js/monitor.js reads them from `meta`).
META_FIELDS = (
    "name",
    "warmup_steps",
    "patience",
    "eval_every",
    "early_stopping",
    "max_steps",
    "best_step",
    "best_val_loss",
    "stop_step",
    "stop_reason",
    "stop_kind",
    "state",
    "refined",
    "refined_val_loss",
    "l2",
)


def _reduce(losses: list[float | None], max_points: int) -> list[int]:
    """Indices to keep so a long curve stays at most ~max_points long."""
    n = len(losses)
    if n <= max_points:
        return list(range(n))
    keep = {0, n - 1}
    finite = [i for i in range(n) if losses[i] is not None]
    if finite:
        keep.add(min(finite, key=lambda i: losses[i]))
    buckets = max(1, (max_points - 3) // 2)
    size = n / buckets
    for b in range(buckets):
        lo, hi = int(b * size), min(n, int((b + 1) * size))
        idx = [i for i in range(lo, hi) if losses[i] is not None]
        if idx:
            keep.add(min(idx, key=lambda i: losses[i]))
            keep.add(max(idx, key=lambda i: losses[i]))
    return sorted(keep)


class MonitorState:
    """Validation-loss history per probe, beside the shared reducer's early-stopping
    facts (`core.engine.reducer.FitTracker`; no widget)."""

    def __init__(self) -> None:
        self.tracker = FitTracker()
        self.steps: dict[str, list[int]] = {}
        self.losses: dict[str, list[float | None]] = {}
        self.sent: dict[str, int] = {}
        self.span: dict[str, tuple[float, float]] = {}  # each curve's (min, max) loss

    @property
    def outcome(self) -> str:
        """The fit's end state once fit_finished arrived, else ""."""
        state = self.tracker.fit.state
        return "" if state in (LiveState.WAITING, LiveState.RUNNING) else state

    def handle(self, event: ev.Event) -> bool:
        """Record one event; True if the per-probe facts (not just points) changed."""
        probe = self.tracker.probes.get(event.probe) if event.probe is not None else None
        before = self._facts(probe) if probe is not None else None
        self.tracker.apply(event)
        if isinstance(event, ev.FitStarted):
            names = list(self.tracker.probes)
            self.steps = {n: [] for n in names}
            self.losses = {n: [] for n in names}
            self.sent = dict.fromkeys(names, 0)
            self.span = {}
            return True
        if isinstance(event, ev.FitFinished):
            return True
        if probe is None:
            return False
        if isinstance(event, ev.Evaluated):
            self.steps[probe.name].append(int(event.step))
            self.losses[probe.name].append(probe.val_loss)
            v = probe.val_loss
            if v is not None:
                lo, hi = self.span.get(probe.name, (v, v))
                self.span[probe.name] = (min(lo, v), max(hi, v))
        if isinstance(event, ev.Evaluated | ev.Step):
            return before != self._facts(probe)  # a new point may move the axes
        return isinstance(event, ev.Stopped | ev.ProbeFinished | ev.Refined | ev.Error)

    def _facts(self, p: ProbeTrack) -> tuple[Any, ...]:
        """What a new point can change on a card: its state, best step and axes."""
        return (p.state, p.best_step, self.span.get(p.name), self._x_max(p))

    def _x_max(self, m: ProbeTrack) -> int:
        """The planned number of steps from the first update on, extended only when
        the run goes past it (never best step + patience)."""
        steps = self.steps.get(m.name) or [0]
        return max(m.max_steps, steps[-1], m.stop_step or 0) or max(10, m.warmup_steps)

    def new_points(self) -> dict[str, list[Any]]:
        """Points not sent yet: {name: [start_index, steps, losses]}; marks them sent."""
        out: dict[str, list[Any]] = {}
        for n, steps in self.steps.items():
            start = self.sent[n]
            if len(steps) > start:
                out[n] = [start, steps[start:], self.losses[n][start:]]
                self.sent[n] = len(steps)
        return out

    def curves(self, max_points: int = MAX_STORED_POINTS) -> dict[str, list[Any]]:
        """History so far, compact: {name: [steps, losses, n]} where n counts every
        point; curves longer than `max_points` keep each bucket's min and max loss
        (the shape a chart can show) plus the first, last and best points."""
        out: dict[str, list[Any]] = {}
        for n, steps in self.steps.items():
            keep = _reduce(self.losses[n], max_points)
            out[n] = [[steps[i] for i in keep], [self.losses[n][i] for i in keep], len(steps)]
        return out

    def chart(self, name: str) -> dict[str, Any]:
        """The facts a chart of probe `name` draws, decided here once for the live
        view and the static snapshot alike.

        frame: the chart's size and margins; x_max: `_x_max`; y_lo, y_hi: the loss
        axis (`loss_bounds` of every loss and the kept one), with its labels
        formatted (y_labels: top, bottom; x_label: the axis end); window: the patience
        window after the best step, only with early stopping on and when it ends
        inside the axis; kept: the validation loss of the weights the probe keeps
        (the final fit's, else the best step's), drawn as the curve's end point.
        """
        m = self.tracker.probes[name]
        steps = self.steps[name]
        last = steps[-1] if steps else 0
        x_max = self._x_max(m)
        window = None
        if m.early_stopping and m.best_step is not None and m.patience > 0:
            end = int(m.best_step) + m.patience * m.eval_every
            if end <= x_max:
                window = [int(m.best_step), end]
        final = st.probe_state(m.state)["final"]
        kept, kept_label, refined = None, "", False
        if m.refined and m.refined_val_loss is not None:
            kept, refined = m.refined_val_loss, True
            kept_label = "after the final fit" + (f" (L2 {m.l2:g})" if m.l2 else "")
            kept_label += ": cross-validated on the training data, not the validation slice"
        elif final and m.best_val_loss is not None:
            kept, kept_label = m.best_val_loss, f"the best step's weights (step {m.best_step})"
        foot = f"{st.kept_loss_words(refined)} {format_number(kept)}" if kept is not None else ""
        lo, hi = self.span.get(name, (None, None))
        if kept is not None:
            lo, hi = (
                min(lo, kept) if lo is not None else kept,
                max(hi, kept) if hi is not None else kept,
            )
        y_lo, y_hi = loss_bounds(lo, hi)
        return {
            "frame": FRAME,
            "y_lo": y_lo,
            "y_hi": y_hi,
            "y_labels": [format_number(y_hi), format_number(y_lo)],
            "x_label": str(int(round(x_max))),
            "kept_foot": foot,
            "x_max": x_max,
            "window": window,
            "warmup": m.warmup_steps if 0 < m.warmup_steps < x_max else 0,
            "kept_val_loss": kept,
            "kept_label": kept_label,
            "kept_step": m.stop_step if m.stop_step is not None else last,
        }

    def meta_list(self) -> list[dict[str, Any]]:
        out = []
        for n, m in self.tracker.probes.items():
            row = {k: getattr(m, k) for k in META_FIELDS}
            row["points"] = len(self.steps[n])
            row.update(self.chart(n))
            out.append(row)
        return out


class EarlyStoppingMonitor(SnapshotDisplay, anywidget.AnyWidget):
    """Validation-loss curves (SVG, one small chart per probe) on an axis as long as
    the planned run, with the warm-up, the patience window after the best step (when
    it can still end the run), the best point, the end state and the kept weights'
    validation loss as the curve's end point; and a Stop button."""

    # One output carries the live view and its snapshot (its fit refreshes both).
    static_copy_beside = False
    _esm = esm_source("monitor")
    _css = css_text("monitor")

    meta = traitlets.List(traitlets.Dict()).tag(sync=True)
    # {name: [steps, losses, n]} (at most MAX_STORED_POINTS each): set at the end
    curves = traitlets.Dict().tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    outcome = traitlets.Unicode("").tag(sync=True)  # the fit's end state, "" while running
    stop_requested = traitlets.Bool(False).tag(sync=True)
    stop_supported = traitlets.Bool(True).tag(sync=True)
    stop_hint = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    styles = traitlets.Dict().tag(sync=True)  # display.states: words and colours

    def __init__(self, runner: Any = None, **kwargs: Any) -> None:
        super().__init__(styles=st.styles(), **kwargs)
        self.state = MonitorState()
        self.runner = runner
        self._meta_dirty = False
        self._points_dirty = False
        self.on_msg(self._on_custom_msg)

    # -- browser -> kernel ----------------------------------------------------------
    @traitlets.observe("stop_requested")
    def _on_stop(self, change: dict[str, Any]) -> None:
        if change["new"] and self.runner is not None and self.running:
            self.runner.request_stop()

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "resync":
            self.send_snapshot()

    def send_snapshot(self) -> None:
        """Every point so far, in one message (for a view that opened late)."""
        self.send({"type": "snapshot", "curves": _clean(self.state.curves())})

    # -- events ---------------------------------------------------------------------
    def handle(self, event: ev.Event) -> None:
        """Record an event; the view changes on the next `flush()`."""
        if self.state.handle(event):
            self._meta_dirty = True
        if event.kind == ev.EVALUATED:
            self._points_dirty = True
        elif event.kind == ev.FIT_STARTED:
            self.stop_requested = False
            self.running = True
            self.outcome = ""
            self.curves = {}
            self.send({"type": "reset"})
        elif event.kind == ev.FIT_FINISHED and self.displayed:
            self.flush(final=True)  # shown on its own: the snapshot follows at once
            self.refresh_snapshot()

    __call__ = handle

    def flush(self, final: bool = False) -> bool:
        """Send changed facts, then new points (so the axes that bound a new point
        arrive before it); `final` also stores the curves, after the last points."""
        sent = False
        if self._meta_dirty and not final:
            sent = self._send_meta(final)
        if self._points_dirty:
            self._points_dirty = False
            points = self.state.new_points()
            if points:
                self.send({"type": "points", "points": _clean(points)})
                sent = True
        if final:
            sent = self._send_meta(final)
        return sent

    def _send_meta(self, final: bool) -> bool:
        self._meta_dirty = False
        with self.hold_sync():
            self.meta = _clean(self.state.meta_list())
            if final:
                self.curves = _clean(self.state.curves())
                self.outcome = self.state.outcome
                self.running = False
        return True

    def summary(self) -> str:
        from .snapshot import monitor_text

        return monitor_text(self.state)

    def snapshot_html(self) -> str:
        from .snapshot import monitor_html

        return monitor_html(self.state, self.title)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self)


def _clean(obj: Any) -> Any:
    """NaN/inf -> None throughout (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
