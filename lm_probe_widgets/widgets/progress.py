"""Progress of one `fit_probes` call: a row per phase, a bar per probe, one headline.

`ProgressState` turns runner events into plain data and the words shown (no widget,
easy to test); `ProbeProgress` is the anywidget view of it. Events can arrive thousands
of times a second; the widget's traits change only when `flush()` is called, which the
dashboard does at most ~10 times a second (and always at the end of a fit).

What it promises:

* the headline says "fitting" until the single `fit_finished` event, then that event's
  reason (completed / stopped / interrupted / error) with one coherent message;
* every phase the runner reports (`batch` events, any `phase` string) gets a row with a
  readable name and its own unit (the final fit counts probes, not examples);
* the headline's time left is the whole call's (`CallClock`: every planned phase, a
  lower bound naming what is not timed yet); each phase row has its own, remaining
  units over a smoothed throughput (`RateMeter`), so it does not swing with every batch;
* a call other than a fit (`core.engine.progress.track`: a steering sweep, stability
  refits) shows the same way, headed by its task name;
* a reason shared by several probes ("completed 10 epoch(s)") is said once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ..core.engine import events as ev
from ..core.engine.progress import (
    SUB_FIT_STAGES,
    TRAINING_PHASES,
    CallClock,
    RateMeter,
    format_seconds,
)
from ..core.engine.reducer import FitTracker, PhaseTrack, ProbeTrack
from ..core.engine.states import FitOutcome, LiveState, ProbeState
from ..display import states as st
from ..display.columns import format_number
from ._assets import css_text, esm_source
from .snapshot import SnapshotDisplay, with_snapshot


def _rate_text(rate: float | None, unit: str | None) -> str:
    if rate is None:
        return ""
    value = f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}"
    return f"{value} {unit or 'units'}/s"


class ProgressState:
    """What the progress view shows, updated from events (no widget involved).

    The facts come from the shared reducer (`core.engine.reducer.FitTracker`); this
    adds throughput, time left and the words. `clock` gives the seconds used for
    elapsed time and throughput (the events' own `seconds` restart in control and
    baseline fits); tests pass a fake one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.tracker = FitTracker()
        self._probes: dict[str, dict[str, Any]] = {}
        self._phases: dict[str, dict[str, Any]] = {}
        self._fit: dict[str, Any] = {"state": LiveState.WAITING.value, "phase": "", "message": ""}
        self.stop_requested = False
        self._t0 = 0.0
        self._elapsed = 0.0
        self._meters: dict[str, RateMeter] = {}
        self._rates: dict[str, tuple[float | None, float | None]] = {}  # key: (rate, eta)
        self._fractions: dict[str, float] = {}  # a phase bar never goes back
        self._stale = True  # the words are recomputed when next read, not per event
        self.call = CallClock()
        self._units: dict[str, str] = {}

    # The state as read from outside: words brought up to date first (cheap, but done per
    # read rather than per event: a fit publishes thousands of events a second).
    @property
    def fit(self) -> dict[str, Any]:
        self._fresh()
        return self._fit

    @property
    def probes(self) -> dict[str, dict[str, Any]]:
        self._fresh()
        return self._probes

    @property
    def phases(self) -> dict[str, dict[str, Any]]:
        self._fresh()
        return self._phases

    def _fresh(self) -> None:
        if self._stale:
            self._stale = False
            self._refresh()

    @property
    def running(self) -> bool:
        return self.tracker.fit.state == LiveState.RUNNING

    # -- events ---------------------------------------------------------------------
    def handle(self, event: ev.Event) -> None:
        self.tracker.apply(event)
        if isinstance(event, ev.FitStarted):
            self._start(event)
        elif isinstance(event, ev.Batch):
            self._batch(event)
        elif isinstance(event, ev.FitFinished):
            self._elapsed = self.clock() - self._t0
            self._rates = {k: (r, None) for k, (r, _) in self._rates.items()}
            self.call.finish()
        if self.running:
            self._elapsed = self.clock() - self._t0
        self._stale = True

    def request_stop(self) -> None:
        """The Stop button was clicked (the runner decides whether it still applies)."""
        if self.running:
            self.stop_requested = True
            self._stale = True

    def _start(self, e: ev.FitStarted) -> None:
        self._meters, self._rates, self._fractions = {}, {}, {}
        self.stop_requested = False
        self._t0 = self.clock()
        self._elapsed = 0.0
        self.call.start(list(e.phases), int(e.num_epoch or 0), self._t0)
        self._units = {str(p["phase"]): str(p["unit"]) for p in e.phases if p.get("unit")}

    def _batch(self, e: ev.Batch) -> None:
        ph = self.tracker.phases[str(e.phase)]
        now = self.clock()
        self.call.batch(e.data, now)
        rate = self._meters.setdefault(ph.key, RateMeter()).add(now, ph.units)
        self._rates[ph.key] = (rate, self._eta(ph, rate))

    def _eta(self, ph: PhaseTrack, rate: float | None) -> float | None:
        if ph.detail:  # a nested fit: all its stages, not only the one running
            return self.call.phase_left(ph.key, self.clock())
        if not rate:
            return None
        left = max(ph.total - ph.done, 0)
        stage = ph.detail or ph.key
        num_epoch = self.tracker.fit.num_epoch
        if stage in TRAINING_PHASES and num_epoch:
            left += max(num_epoch - ph.epoch, 0) * ph.total
        return left / rate

    def _fit_dict(self) -> dict[str, Any]:
        t = self.tracker.fit
        if t.state == LiveState.WAITING:
            return {"state": t.state, "phase": "", "message": ""}
        rate, eta = self._rates.get(t.phase, (None, None))
        return {
            "state": t.state,
            "phase": t.phase,
            "epoch": t.epoch,
            "num_epoch": t.num_epoch,
            "n_train": t.n_train,
            "n_val": t.n_val,
            "n_eval": t.n_eval,
            "elapsed": self._elapsed,
            "rate": rate,
            "eta": eta,
            "task": t.task,
        }

    def _probe_dict(self, p: ProbeTrack) -> dict[str, Any]:
        return {
            "name": p.name,
            "submodule": p.submodule,
            "state": p.state,
            "step": p.step,
            "max_steps": p.max_steps,
            "epoch": p.epoch,
            "train_loss": p.train_loss,
            "val_loss": p.val_loss,
            "best_val_loss": p.best_val_loss,
            "best_step": p.best_step,
            "kept_val_loss": p.refined_val_loss,
            "refined": p.refined,
            "reason": p.reason,
        }

    def _phase_dict(self, ph: PhaseTrack) -> dict[str, Any]:
        rate, eta = self._rates.get(ph.key, (None, None))
        return {
            "key": ph.key,
            "label": st.phase_label(ph.key),
            "state": ph.state,
            "detail": ph.detail,
            "epoch": ph.epoch,
            "done": ph.done,
            "total": ph.total,
            "units": ph.units,
            "rate": rate,
            "eta": eta if ph.state == LiveState.RUNNING else None,
        }

    # -- words ----------------------------------------------------------------------
    def _stop_message(self) -> str:
        """What a Stop does from the phase running now (the engine's rules: a stop
        ends training at the next batch, the final fit after its current probe, and
        never cuts the test-set pass, which gives the held-out numbers)."""
        key = str(self._fit.get("phase", ""))
        ph = self._phases.get(key) or {}
        stage = ph.get("detail") or key
        if stage in ("extract-eval", "bootstrap"):
            text = "Stop requested: the test-set pass runs to its end (it gives the held-out "
            text += "numbers), then the fit stops."
        elif stage == "refine":
            text = "Stop requested: the final fit stops after the current probe, then the "
            text += "probes are evaluated."
        else:
            text = "Stop requested: training ends after the current batch, then the probes "
            text += "are evaluated."
        if key.startswith(("control", "baseline-")):
            text += " What did not finish stays blank; fit_probes(..., resume=True) finishes it."
        return text

    def _final_message(self, state: str) -> str:
        messages = self.tracker.fit.messages
        if state == FitOutcome.COMPLETED:
            if self.stop_requested:
                return "The Stop came after training had ended: nothing was cut short."
            return ""
        if state == FitOutcome.STOPPED:
            if not any(p["state"] == ProbeState.STOPPED for p in self._probes.values()):
                ph = self._phases.get(self._fit.get("phase", ""))
                where = f" during {ph['label']}" if ph else ""
                return (
                    f"Stopped{where}: the probes had already finished training; the columns "
                    "of this and later steps are blank. fit_probes(..., resume=True) "
                    "finishes them."
                )
            tail = "; the test-set metrics are computed" if self._fit.get("n_eval") else ""
            return (
                "The probes keep their best weights so far"
                + tail
                + ". fit_probes(..., resume=True) continues."
            )
        if state == FitOutcome.INTERRUPTED:
            return messages.get(ev.INTERRUPTED) or (
                "The probes keep their best weights so far; fit_probes(..., resume=True) continues."
            )
        return messages.get(ev.ERROR, "")

    def _headline(self) -> str:
        f = self._fit
        state = f.get("state", LiveState.WAITING)
        task = f.get("task") or ""
        if state != LiveState.RUNNING:
            label = st.fit_state(state)["label"]
            return label.replace("fit", task, 1) if task else label
        ph = self._phases.get(f.get("phase", ""))
        if task:
            return task if ph is None or ph["label"] == task else f"{task}: {ph['label']}"
        if ph is None:
            return "fitting: starting"
        return f"fitting: {ph['label']}"

    def _stats(self) -> str:
        f = self._fit
        bits = []
        if f.get("elapsed") is not None and f.get("state") != LiveState.WAITING:
            bits.append(f"{format_seconds(f['elapsed'])} elapsed")
        if f.get("state") == LiveState.RUNNING:
            bits.append(self.call.words(self.clock(), st.phase_label))
        return " · ".join(bits)

    def _phase_text(self, ph: dict[str, Any]) -> str:
        unit = self._units.get(ph["key"]) if not ph["detail"] else None
        unit = unit or st.phase_unit(ph["key"], ph["detail"])
        bits = []
        stage = ph["detail"]
        if stage:
            bits.append(st.phase_label(stage))
        num_epoch = self._fit.get("num_epoch", 0)
        if (stage or ph["key"]) in TRAINING_PHASES and num_epoch:
            bits.append(f"epoch {ph['epoch']}/{num_epoch}")
        bits.append(f"{ph['done']}/{ph['total']}" + (f" {unit}" if unit else ""))
        if ph["state"] == LiveState.RUNNING:
            rate = _rate_text(ph["rate"], unit)
            if rate:
                bits.append(rate)
            if ph["eta"]:  # None before a rate is known; 0 when the phase is through
                bound = "≤" if ph["key"] in TRAINING_PHASES else "≈"
                bits.append(f"{bound} {format_seconds(max(ph['eta'], 1.0))} left in this phase")
        return " · ".join(bits)

    def _probe_detail(self, p: dict[str, Any]) -> str:
        bits = [f"step {p['step']}/{p['max_steps'] or '?'}"]
        num_epoch = self._fit.get("num_epoch", 0)
        if p["state"] == ProbeState.TRAINING:
            if p["epoch"]:
                bits.append(
                    f"epoch {p['epoch']}/{num_epoch}" if num_epoch else f"epoch {p['epoch']}"
                )
            if p["val_loss"] is not None:
                bits.append(f"val loss {format_number(p['val_loss'])}")
        elif p["state"] != LiveState.WAITING:
            kept = self.kept_val_loss(p)
            if kept is not None:
                words = st.kept_loss_words(p.get("kept_val_loss") is not None)
                bits.append(f"{words} {format_number(kept)}")
        return " · ".join(bits)

    @staticmethod
    def kept_val_loss(p: dict[str, Any]) -> float | None:
        """Validation loss of the weights the probe keeps: the final fit's when there
        was one, else the best step's (the weights a stopped probe goes back to)."""
        if p.get("kept_val_loss") is not None:
            return p["kept_val_loss"]
        return p.get("best_val_loss")

    def _refresh(self) -> None:
        """Rebuild the plain data and the words from the tracker (run when read after
        events arrived, not per event)."""
        t = self.tracker
        self._fit = f = self._fit_dict()
        self._probes = {n: self._probe_dict(p) for n, p in t.probes.items()}
        self._phases = {k: self._phase_dict(ph) for k, ph in t.phases.items()}
        state = f["state"]
        if state == LiveState.RUNNING:
            f["message"] = self._stop_message() if self.stop_requested else ""
        elif state != LiveState.WAITING:
            f["message"] = self._final_message(state)
        else:
            f["message"] = ""
        f["headline"] = self._headline()
        f["stats"] = self._stats()
        counts = Counter(
            p["reason"]
            for p in self._probes.values()
            if p["reason"] and st.probe_state(p["state"])["final"]
        )
        shared = {r for r, n in counts.items() if n > 1}
        f["reasons"] = [f"{counts[r]} probes: {r}" for r in counts if r in shared]
        for p in self._probes.values():
            final = st.probe_state(p["state"])["final"]
            p["note"] = p["reason"] if final and p["reason"] not in shared else ""
            p["detail"] = self._probe_detail(p)
            p["fraction"] = (
                1.0
                if final and not p["max_steps"]
                else min(1.0, p["step"] / p["max_steps"])
                if p["max_steps"]
                else 0.0
            )
        for ph in self._phases.values():
            ph["text"] = self._phase_text(ph)
            ph["fraction"] = 1.0 if ph["state"] == LiveState.DONE else self._phase_fraction(ph)

    def _phase_fraction(self, ph: dict[str, Any]) -> float:
        """How far a phase is, never going back: across the epochs of training, and for
        a control or baseline fit (whose stages each count from 0 again) across its
        stages in their order, each an equal share of the bar."""
        total = ph["total"]
        part = min(1.0, ph["done"] / total) if total else 0.0
        stage = ph["detail"] or ph["key"]
        num_epoch = int(self._fit.get("num_epoch", 0) or 0)
        if stage in TRAINING_PHASES and num_epoch > 1:  # later epochs: 2 .. num_epoch
            part = min(1.0, (max(ph["epoch"] - 2, 0) + part) / (num_epoch - 1))
        if ph["detail"] in SUB_FIT_STAGES:
            part = (SUB_FIT_STAGES.index(ph["detail"]) + part) / len(SUB_FIT_STAGES)
        most = self._fractions[ph["key"]] = max(self._fractions.get(ph["key"], 0.0), part)
        return float(most)

    # -- views ----------------------------------------------------------------------
    def probe_list(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.probes.values()]

    def phase_list(self) -> list[dict[str, Any]]:
        return [dict(ph) for ph in self.phases.values()]

    def summary(self) -> str:
        """Readable plain text, for consoles and for notebooks without a widget view."""
        f = self.fit
        if not self._probes:
            return "probe progress: waiting for fit_probes to start"
        head = f["headline"] + (f" · {f['stats']}" if f["stats"] else "")
        lines = [head]
        for ph in self._phases.values():
            lines.append(f"  [{ph['state']}] {ph['label']}: {ph['text']}")
        width = min(max(len(n) for n in self._probes), 40)
        for p in self._probes.values():
            label = st.probe_state(p["state"])["label"]
            line = f"  {p['name'][:width]:<{width}}  {label:<14} {p['detail']}"
            if p["note"]:
                line += f"  ({p['note']})"
            lines.append(line)
        lines += [f"  {r}" for r in f["reasons"]]
        if f.get("message"):
            lines.append(f"  {f['message']}")
        return "\n".join(lines)


class ProbeProgress(SnapshotDisplay, anywidget.AnyWidget):
    """A row per phase and a bar per probe, each with its state; a headline on top.

    Usually created by the dashboard; on its own: ``w = ProbeProgress();
    runner.events.subscribe(w.handle)`` and call ``w.flush()`` when you want a redraw.
    """

    # One output carries the live view and its snapshot (its fit refreshes both).
    static_copy_beside = False
    _esm = esm_source("progress")
    _css = css_text("progress")

    probes = traitlets.List(traitlets.Dict()).tag(sync=True)
    phases = traitlets.List(traitlets.Dict()).tag(sync=True)
    fit = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    styles = traitlets.Dict().tag(sync=True)  # display.states: words and colours

    def __init__(
        self, title: str = "", *, clock: Callable[[], float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(title=title, styles=st.styles(), **kwargs)
        self.state = ProgressState(clock) if clock is not None else ProgressState()
        self.fit = dict(self.state.fit)
        self._dirty = False

    def handle(self, event: ev.Event) -> None:
        """Record an event; the view changes on the next `flush()` (at the end of a fit
        at once, and a displayed widget's snapshot follows)."""
        self.state.handle(event)
        self._dirty = True
        if event.kind == ev.FIT_FINISHED and self.displayed:
            self.flush()
            self.refresh_snapshot()

    __call__ = handle

    def request_stop(self) -> None:
        self.state.request_stop()
        self._dirty = True

    def flush(self) -> bool:
        """Push the recorded state to the browser (one message); True if sent."""
        if not self._dirty:
            return False
        self._dirty = False
        with self.hold_sync():
            self.probes = self.state.probe_list()
            self.phases = self.state.phase_list()
            self.fit = dict(self.state.fit)
        return True

    def summary(self) -> str:
        return self.state.summary()

    def __repr__(self) -> str:
        return self.summary()

    def snapshot_html(self) -> str:
        from .snapshot import progress_html

        return progress_html(self.state, self.title)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self)
