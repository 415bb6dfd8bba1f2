"""Per-probe progress bars: one bar per probe, its state in colour, throughput and ETA.

`ProgressState` turns runner events into plain data (no widget, easy to test);
`ProbeProgress` is the anywidget view of it. Events can arrive thousands of times a
second; the widget's traits only change when `flush()` is called, which the
dashboard does at most ~10 times a second (and always at the end of a fit).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import anywidget
import traitlets

from ..core import events as ev
from ._assets import css_text, esm_path

# Probe states shown by the bars (the runner's probe_finished states plus two of ours).
STATES = ("waiting", "training", "early-stopped", "finished", "stopped", "interrupted", "error")
RATE_WINDOW_S = 3.0


def _num(x: Any) -> float | None:
    """A float for the wire, or None for NaN/inf/missing (JSON has no NaN)."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class ProgressState:
    """What the progress bars show, updated from events (no widget involved)."""

    def __init__(self) -> None:
        self.probes: dict[str, dict[str, Any]] = {}
        self.fit: dict[str, Any] = {"state": "waiting", "phase": "", "message": ""}
        self._examples = 0  # cumulative examples processed across batches and phases
        self._last_batch: tuple[str, int, int] | None = None
        self._samples: deque[tuple[float, int, int]] = deque()  # (seconds, examples, steps)
        self._steps_total = 0
        self._extract_rate: float | None = None

    # -- events ---------------------------------------------------------------------
    def handle(self, event: ev.Event) -> None:
        kind, d, name = event.kind, event.data, event.probe
        if kind == ev.FIT_STARTED:
            self._start(d)
        elif kind == ev.BATCH:
            self._batch(d)
        elif kind == ev.STEP and name in self.probes:
            p = self.probes[name]
            if p["state"] == "waiting":
                p["state"] = "training"
            self._steps_total += max(0, int(d["step"]) - p["step"])
            p["step"] = int(d["step"])
            p["epoch"] = int(d["epoch"])
            p["train_loss"] = _num(d.get("train_loss"))
        elif kind == ev.EVALUATED and name in self.probes:
            p = self.probes[name]
            p["val_loss"] = _num(d.get("val_loss"))
            p["best_val_loss"] = _num(d.get("best_val_loss"))
            p["best_step"] = d.get("best_step")
        elif kind == ev.STOPPED and name in self.probes:
            self.probes[name]["reason"] = str(d.get("reason", ""))
        elif kind == ev.PROBE_FINISHED and name in self.probes:
            p = self.probes[name]
            state = str(d.get("state", "finished"))
            p["state"] = state if state in STATES else "finished"
            p["reason"] = str(d.get("reason") or p.get("reason") or "")
            p["best_step"] = d.get("best_step", p.get("best_step"))
            p["step"] = int(d.get("steps", p["step"]))
        elif kind == ev.ERROR:
            if name in self.probes:
                self.probes[name]["state"] = "error"
                self.probes[name]["reason"] = str(d.get("message", ""))
            else:
                self.fit["message"] = str(d.get("message", ""))
        elif kind == ev.INTERRUPTED:
            self.fit["message"] = str(d.get("message", ""))
        elif kind == ev.FIT_FINISHED:
            reason = str(d.get("reason", "completed"))
            self.fit["state"] = reason
            self.fit["elapsed"] = _num(d.get("seconds"))
            self.fit["eta"] = 0.0 if reason == "completed" else None
            self.fit["phase"] = "done"
            for p in self.probes.values():
                if p["state"] in ("waiting", "training"):  # never reached a finish event
                    p["state"] = "error" if reason == "error" else "stopped"

    def _start(self, d: dict[str, Any]) -> None:
        configs = {c["name"]: c for c in d.get("configs", [])}
        max_steps = d.get("max_steps", {})
        self.probes = {}
        for name in d["probes"]:
            cfg = configs.get(name, {})
            self.probes[name] = {
                "name": str(name),
                "submodule": str(cfg.get("submodule", name)),
                "state": "waiting",
                "step": 0,
                "max_steps": int(max_steps.get(name, cfg.get("max_steps", 0)) or 0),
                "epoch": 0,
                "train_loss": None,
                "val_loss": None,
                "best_val_loss": None,
                "best_step": None,
                "reason": "",
            }
        self.fit = {
            "state": "running",
            "phase": "starting",
            "epoch": 0,
            "num_epoch": int(d.get("num_epoch", 0)),
            "n_train": int(d.get("n_train", 0)),
            "n_val": int(d.get("n_val", 0)),
            "n_eval": int(d.get("n_eval", 0)),
            "done": 0,
            "total": 0,
            "elapsed": 0.0,
            "rate": None,
            "eta": None,
            "message": "",
        }
        self._examples = 0
        self._last_batch = None
        self._samples.clear()
        self._steps_total = 0
        self._extract_rate = None

    def _batch(self, d: dict[str, Any]) -> None:
        phase, epoch, done = str(d["phase"]), int(d["epoch"]), int(d["examples_done"])
        last = self._last_batch
        if last is not None and last[0] == phase and last[1] == epoch and done >= last[2]:
            self._examples += done - last[2]
        else:
            self._examples += done
        self._last_batch = (phase, epoch, done)
        seconds = float(d.get("seconds", 0.0))
        f = self.fit
        f.update(phase=phase, epoch=epoch, done=done, total=int(d["examples_total"]))
        f["elapsed"] = seconds
        self._samples.append((seconds, self._examples, self._steps_total))
        while len(self._samples) > 2 and seconds - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        t0, e0, s0 = self._samples[0]
        dt = seconds - t0
        rate = (self._examples - e0) / dt if dt > 0 else None
        f["rate"] = rate
        if phase.startswith("extract") and rate:
            self._extract_rate = rate
        step_rate = (self._steps_total - s0) / dt if dt > 0 else None
        f["eta"] = self._eta(phase, done, int(d["examples_total"]), rate, step_rate)

    def _eta(self, phase, done, total, rate, step_rate) -> float | None:
        """An upper bound: early stopping can only make the fit shorter."""
        n_eval = self.fit.get("n_eval", 0)
        eval_left = n_eval / self._extract_rate if self._extract_rate and n_eval else 0.0
        if phase == "extract-eval":
            return (total - done) / rate if rate else None
        if phase == "extract-val":
            return None  # no training speed known yet
        active = [p for p in self.probes.values() if p["state"] in ("waiting", "training")]
        if not active:
            return eval_left
        per_probe = step_rate / len(active) if step_rate else None
        if not per_probe:
            return None
        left = max(max(p["max_steps"] - p["step"], 0) for p in active)
        return left / per_probe + eval_left

    # -- views ----------------------------------------------------------------------
    def probe_list(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.probes.values()]

    def summary(self) -> str:
        """Readable plain text, for consoles and for notebooks without a widget view."""
        f = self.fit
        if not self.probes:
            return "probe progress: waiting for fit_probes to start"
        state = f.get("state", "running")
        head = (
            f"fit {state}"
            if state != "running"
            else f"fitting: {f.get('phase', '')} {f.get('done', 0)}/{f.get('total', 0)}"
        )
        head += f" · {format_seconds(f.get('elapsed'))}"
        if f.get("rate"):
            head += f" · {f['rate']:.0f} examples/s"
        if state == "running" and f.get("eta") is not None:
            head += f" · ETA ≤ {format_seconds(f['eta'])}"
        lines = [head]
        width = min(max(len(n) for n in self.probes), 40)
        for p in self.probes.values():
            line = f"  {p['name'][:width]:<{width}}  {p['state']:<13} "
            line += f"step {p['step']}/{p['max_steps']}"
            if p["best_val_loss"] is not None:
                line += f"  best val {p['best_val_loss']:.4f} @ {p['best_step']}"
            if p["reason"] and p["state"] not in ("waiting", "training"):
                line += f"  ({p['reason']})"
            lines.append(line)
        if f.get("message"):
            lines.append(f"  {f['message']}")
        return "\n".join(lines)


class ProbeProgress(anywidget.AnyWidget):
    """One bar per probe with its state; overall throughput and ETA on top.

    Usually created by the dashboard; on its own: ``w = ProbeProgress();
    runner.events.subscribe(w.handle)`` and call ``w.flush()`` when you want a redraw.
    """

    _esm = esm_path("progress")
    _css = css_text("progress")

    probes = traitlets.List(traitlets.Dict()).tag(sync=True)
    fit = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, title: str = "", **kwargs: Any) -> None:
        super().__init__(title=title, **kwargs)
        self.state = ProgressState()
        self.fit = dict(self.state.fit)
        self._dirty = False

    def handle(self, event: ev.Event) -> None:
        """Record an event; the view changes on the next `flush()`."""
        self.state.handle(event)
        self._dirty = True

    __call__ = handle

    def flush(self) -> bool:
        """Push the recorded state to the browser (one message per trait); True if sent."""
        if not self._dirty:
            return False
        self._dirty = False
        with self.hold_sync():
            self.probes = self.state.probe_list()
            self.fit = dict(self.state.fit)
        return True

    def summary(self) -> str:
        return self.state.summary()

    def __repr__(self) -> str:
        return self.summary()
