"""Progress displays are event subscribers. The console meter lives here; a
notebook extension may register a richer factory without core knowing of it."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from . import events as ev
from .reducer import FitTracker
from .states import FitOutcome

ProgressFactory = Callable[[Any], Any]
_factory: ProgressFactory | None = None


def set_progress_factory(factory: ProgressFactory | None) -> ProgressFactory | None:
    """Make `factory(runner)` the display for `progress="auto"`; returns the previous one."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def get_progress_factory() -> ProgressFactory | None:
    return _factory


def make_progress(progress: Any, runner: Any) -> Any:
    """Resolve fit_probes' `progress` argument to a subscriber (or None)."""
    if progress is None or progress is False:
        return None
    if progress == "auto":
        return _factory(runner) if _factory is not None else ConsoleProgress()
    if progress == "console" or progress is True:
        return ConsoleProgress()
    if callable(progress):
        return progress(runner) if isinstance(progress, type) or _is_factory(progress) else progress
    raise ValueError("progress must be 'auto', 'console', None, or a factory(runner)")


def _is_factory(fn: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return len(params) == 1 and next(iter(params)) == "runner"


# Phases that run the model over their examples (same cost per example whichever split).
MODEL_PASS_PHASES = ("extract-val", "extract-train", "extract-eval")
TRAINING_PHASES = ("train",)  # phases whose remaining work spans the remaining epochs
# The stages of a control or baseline fit, in the order they run (core.engine.fit).
SUB_FIT_STAGES = ("extract-val", "extract-train", "train", "refine", "extract-eval")


def format_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class RateMeter:
    """Throughput of one phase (units per second), smoothed.

    The first estimate is the mean over at least `min_span` seconds; from then on an
    exponential moving average with time constant `tau` (weighted by elapsed time)
    follows real changes, such as probes stopping early, without following the jitter
    of single batches.
    """

    def __init__(self, tau: float = 6.0, min_span: float = 1.0) -> None:
        self.tau, self.min_span = tau, min_span
        self.t0: float | None = None
        self.u0 = 0.0
        self.t = 0.0
        self.u = 0.0
        self.rate: float | None = None

    def add(self, t: float, units: float) -> float | None:
        if self.t0 is None:
            self.t0, self.u0, self.t, self.u = t, units, t, units
            return None
        dt = t - self.t
        if dt <= 0:
            return self.rate  # no time has passed: the units count with the next sample
        if self.rate is None:
            span = t - self.t0
            if span >= self.min_span:
                self.rate = max(units - self.u0, 0.0) / span
                self.t, self.u = t, units
            return self.rate
        inst = max(units - self.u, 0.0) / dt
        self.rate += (1.0 - math.exp(-dt / self.tau)) * (inst - self.rate)
        self.t, self.u = t, units
        return self.rate


# What a control or baseline fit costs, in the call's own measured stages (see
# core.runner._fit_methods). The control task fits the same probes for the same epochs
# on the features the call cached: its passes are cache reads, its training costs what
# the call's did. The random-init baseline runs a new model over the same texts and then
# fits the same probes, so it costs about what the whole main fit did; the embeddings
# baseline reads a site the call did not cache, so it is costed the same way (an upper
# estimate: one layer, an early stop in the model). Any other baseline (majority,
# length, bag of words, tfidf) is a small fit with no model and no batches.
CACHED_SUB_FITS = ("control",)
MODEL_SUB_FITS = ("baseline-random_init", "baseline-embeddings")


def _sub_fit_kind(key: str) -> str | None:
    """ "cached", "model" or "cheap" for a control or baseline phase; None otherwise."""
    if key in CACHED_SUB_FITS:
        return "cached"
    if key in MODEL_SUB_FITS:
        return "model"
    return "cheap" if key.startswith("baseline-") else None


class CallClock:
    """Time left in a whole call (every planned phase, not only the one running).

    Each phase left is timed from what was measured: the running one from its own
    throughput, a later model pass from the model passes seen so far, a phase planned
    `like` another (a stability refit like the first) from that one's duration. A
    control or baseline fit is costed before it runs from the call's own stages (see
    `MODEL_SUB_FITS`) and, as it runs, its current stage from that stage's throughput.
    What cannot be timed yet is named rather than counted as zero, so the words are a
    lower bound ("at least") until everything left has been timed; nothing is ever
    said to be "0s" away while work remains.
    """

    def __init__(self) -> None:
        self.plan: list[dict[str, Any]] = []
        self.num_epoch = 0
        self.running = False
        self._seen: dict[str, dict[str, Any]] = {}
        self._current: str | None = None

    def start(self, phases: list[dict[str, Any]], num_epoch: int, now: float) -> None:
        self.plan = [dict(p) for p in phases]
        self.num_epoch = int(num_epoch or 0)
        self.running = True
        self._seen = {}
        self._current = None
        self._started = now
        self._last = now

    def batch(self, d: dict[str, Any], now: float) -> None:
        key = str(d.get("phase", ""))
        if key != self._current and self._current in self._seen:
            prev = self._seen[self._current]
            prev["ended"] = now
        ph = self._seen.get(key)
        if ph is None:
            ph = self._seen[key] = {
                "started": self._last,
                "ended": None,
                "meter": RateMeter(),
                "offset": 0.0,
                "segment": None,
                "stages": {},
            }
        self._current = key
        detail = d.get("detail") or None
        epoch = int(d.get("epoch", 0) or 0)
        done, total = int(d.get("examples_done", 0)), int(d.get("examples_total", 0))
        if ph["segment"] != (detail, epoch) or done < ph.get("done", 0):
            if ph["segment"] is not None:
                ph["offset"] += ph.get("done", 0)
            ph["segment"] = (detail, epoch)
        ph.update(ended=None, detail=detail, epoch=epoch, done=done, total=total)
        ph["meter"].add(now, ph["offset"] + done)
        if detail is not None:  # a stage of a nested fit: timed on its own too
            stage = ph["stages"].get(detail)
            if stage is None:
                stage = ph["stages"][detail] = {"started": self._last, "meter": RateMeter()}
                stage.update(offset=0.0, epoch=epoch, done=0)
            if epoch != stage["epoch"] or done < stage["done"]:
                stage["offset"] += stage["done"]
            stage.update(epoch=epoch, done=done, total=total)
            stage["meter"].add(now, stage["offset"] + done)
        self._last = now

    def finish(self) -> None:
        self.running = False

    # -- estimates --------------------------------------------------------------------
    def _model_rate(self) -> float | None:
        """Examples per second of the latest model pass of the call itself."""
        for key in reversed(list(self._seen)):
            ph = self._seen[key]
            if key in MODEL_PASS_PHASES and ph["detail"] is None and ph["meter"].rate:
                return ph["meter"].rate
        return None

    def _duration(self, key: str | None) -> float | None:
        ph = self._seen.get(key) if key else None
        if ph is None or ph["ended"] is None:
            return None
        return ph["ended"] - ph["started"]

    def _units_left(self, stage: str, done: int, total: int, epoch: int) -> int:
        left = max(total - done, 0)
        if stage in TRAINING_PHASES and self.num_epoch:
            left += max(self.num_epoch - epoch, 0) * total
        return left

    def _main_cost(self, stage: str, now: float) -> float | None:
        """Seconds the call's own `stage` took or will take in all (0: not in the call);
        None while that is not known, or when it was passed by without running (a
        resumed fit, probes that all stopped early): then there is nothing to go by."""
        order = [p["phase"] for p in self.plan]
        if stage not in order:
            return 0.0
        ph = self._seen.get(stage)
        if ph is None:
            later = order[order.index(stage) + 1 :]
            if any(k in self._seen for k in later):
                return None
            return self._future_left(self.plan[order.index(stage)], now)
        if ph["ended"] is not None:
            return ph["ended"] - ph["started"]
        left, known = self._running_left(stage, self.plan[order.index(stage)], now)
        return (now - ph["started"]) + left if known else None

    def _stage_prior(self, kind: str, stage: str, now: float) -> float | None:
        """What `stage` of a control or baseline fit of `kind` should cost."""
        if kind == "cheap":
            return 0.0
        if kind == "cached" and stage in ("extract-val", "extract-eval"):
            return 0.0  # cache reads
        if kind == "cached" and stage == "extract-train":  # reads + the first epoch
            if self.num_epoch < 2:
                return None  # the call's first epoch ran inside its model pass
            train = self._main_cost("train", now)
            return None if train is None else train / (self.num_epoch - 1)
        return self._main_cost(stage, now)

    def _sub_fit_stages(self) -> list[str]:
        planned = {p["phase"] for p in self.plan}
        return [s for s in SUB_FIT_STAGES if s in planned]

    def _sub_fit_cost(self, kind: str, stages: list[str], now: float) -> float | None:
        total = 0.0
        for stage in stages:
            cost = self._stage_prior(kind, stage, now)
            if cost is None:
                return None
            total += cost
        return total

    def _sub_fit_left(self, key: str, now: float) -> tuple[float, bool] | None:
        """A running control or baseline fit: its current stage from that stage's own
        throughput (else its prior less the time spent), the stages after it from their
        priors. None when this is not such a fit."""
        kind = _sub_fit_kind(key)
        ph = self._seen[key]
        stages = self._sub_fit_stages()
        if kind is None or ph["detail"] not in stages:
            return None
        later = self._sub_fit_cost(kind, stages[stages.index(ph["detail"]) + 1 :], now)
        st = ph["stages"][ph["detail"]]
        rate = st["meter"].rate
        if rate:
            here: float | None = (
                self._units_left(ph["detail"], st["done"], st["total"], st["epoch"]) / rate
            )
        else:  # its first second: the prior less the time spent, till the meter has a rate
            prior = self._stage_prior(kind, ph["detail"], now)
            here = None if prior is None else max(prior - (now - st["started"]), 0.0)
        if here is None or later is None:
            return (here or 0.0) + (later or 0.0), False
        return here + later, True

    def _running_left(self, key: str, plan: dict[str, Any], now: float) -> tuple[float, bool]:
        """Seconds left in the running phase, and whether that is an estimate of all of
        it (False: a lower bound, the phase is not timed yet)."""
        ph = self._seen[key]
        sub = self._sub_fit_left(key, now)
        if sub is not None:
            return sub
        if plan.get("total", 0) is None or ph["detail"] in SUB_FIT_STAGES:  # a whole sub-fit
            like = self._duration(plan.get("like"))
            if like is None:
                return 0.0, False
            left = like - (now - ph["started"])
            return (left, True) if left > 0 else (0.0, False)  # overrunning: not known
        rate = ph["meter"].rate
        if not rate and key in MODEL_PASS_PHASES:  # its first second: the last pass's speed
            rate = self._model_rate()
        left = self._units_left(key, ph["done"], ph["total"], ph["epoch"])
        if not left:
            return 0.0, bool(ph["total"])  # through (a phase with no total: not known)
        return (left / rate, True) if rate else (0.0, False)

    def _future_left(self, plan: dict[str, Any], now: float) -> float | None:
        key, total = plan["phase"], plan.get("total")
        if key in MODEL_PASS_PHASES and total:
            rate = self._model_rate()
            return total / rate if rate else None
        kind = _sub_fit_kind(key)
        if kind is not None:
            return self._sub_fit_cost(kind, self._sub_fit_stages(), now)
        return self._duration(plan.get("like"))

    def phase_left(self, key: str, now: float) -> float | None:
        """Seconds left in the running phase `key`, all its stages (a control or
        baseline fit's too); None when it is not running or not timed."""
        if not self.running or key != self._current:
            return None
        plan = next((p for p in self.plan if p["phase"] == key), {"phase": key, "total": 0})
        est, known = self._running_left(key, plan, now)
        return est if known else None

    def left(self, now: float) -> tuple[float, list[str]]:
        """Seconds that the timed phases left will take, and the phases left untimed."""
        if not self.running:
            return 0.0, []
        plan = list(self.plan)
        if self._current is not None and all(p["phase"] != self._current for p in plan):
            plan.insert(0, {"phase": self._current, "total": 0})  # unplanned: time it anyway
        seconds, untimed = 0.0, []
        reached = self._current is None
        for p in plan:
            key = p["phase"]
            if key == self._current:
                reached = True
                est, known = self._running_left(key, p, now)
                if not known:
                    untimed.append(key)
                seconds += max(est, 0.0)
            elif not reached or key in self._seen:
                continue  # done already
            else:
                est = self._future_left(p, now)
                if est is None:
                    untimed.append(key)
                else:
                    seconds += est
        if self._current is None and not untimed:
            untimed = [p["phase"] for p in plan] or ["start"]
        return seconds, untimed

    def words(self, now: float, label: Callable[[str], str] | None = None) -> str:
        """ "≈ 2m10s left in all", "≥ 40s left in all (not timed yet: …)", "time left:
        not known yet (… to come)", or "finishing" (under a second of timed work left and
        nothing untimed); "" once the call is over. Every figure is an estimate ("≈":
        about) from the call's own measured phases."""
        if not self.running:
            return ""
        seconds, untimed = self.left(now)
        if not untimed:
            return f"≈ {format_seconds(seconds)} left in all" if seconds >= 1 else "finishing"
        name = label or (lambda k: k.replace("-", " ").replace("_", " "))
        # the baselines are named once, together (each is a whole fit of its own)
        named = list(
            dict.fromkeys("baselines" if k.startswith("baseline-") else name(k) for k in untimed)
        )
        names = ", ".join(named)
        if seconds < 1:  # nothing timed yet: say what is still to come, if more than one
            return "time left: not known yet" + (f" ({names} to come)" if len(named) > 1 else "")
        return f"≥ {format_seconds(seconds)} left in all (not timed yet: {names})"


class ConsoleProgress:
    """A one-line meter on stderr (redrawn at most 10 times a second), and a line
    per probe when it stops — like the original lm_probe's log, but honest. The line
    ends with the time left in the whole call (`CallClock`)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self.clock = clock
        self.call = CallClock()
        self.tracker = FitTracker()
        self._last = -math.inf
        self._tty = getattr(self.stream, "isatty", lambda: False)()

    def line(self) -> str:
        """The meter as it reads now (without the carriage return)."""
        eta = self.call.words(self.clock())
        phase = self.tracker.fit.phase
        ph = self.tracker.phases.get(phase)
        done, total = (ph.done, ph.total) if ph is not None else (0, 0)
        return f"{phase:<14} {done:>6}/{total:<6}" + (f" · {eta}" if eta else "")

    def __call__(self, event: ev.Event) -> None:
        self.tracker.apply(event)
        cr = "\r" if self._tty else ""
        fit = self.tracker.fit
        if isinstance(event, ev.FitStarted):
            self.call.start(event.phases, event.num_epoch, self.clock())
            if fit.task:
                self._write(f"{fit.task}: {fit.what or 'started'}\n")
            else:
                self._write(
                    f"fitting {fit.probes} probe(s) on {fit.n_train} training examples "
                    f"({fit.n_val} for validation), {fit.num_epoch} epoch(s), "
                    f"batch {fit.batch_size}\n"
                )
        elif isinstance(event, ev.Batch):
            self.call.batch(event.data, self.clock())
            now = self.clock()
            if self._tty and now - self._last >= self.min_interval:
                self._last = now
                self._write("\r" + self.line() + "\x1b[K", flush=True)
        elif isinstance(event, ev.Stopped):
            self._write(f"{cr}probe {event.probe!r} stopped at step {event.step}: {event.reason}\n")
        elif isinstance(event, ev.Error):
            self._write(f"\nerror in {event.probe or 'fit'}: {event.message}\n")
        elif isinstance(event, ev.Interrupted):
            self._write(f"\n{event.message}\n")
        elif isinstance(event, ev.FitFinished):
            self.call.finish()
            clear = "\x1b[K" if self._tty else ""  # wipe the rest of the meter line
            what = fit.task or "fit"
            self._write(f"{cr}{what} {fit.state} in {event.seconds:.1f}s{clear}\n")

    def _write(self, text: str, flush: bool = True) -> None:
        self.stream.write(text)
        if flush:
            self.stream.flush()

    def close(self) -> None:
        pass


class Tracker:
    """What `track` yields: `advance()` after each unit of work, `relay(key)` for a
    subscriber that shows a nested fit's progress as the phase `key`."""

    def __init__(self, bus: Any, phase: str, total: int, started: float) -> None:
        self.bus, self.phase, self.total, self.done = bus, phase, total, 0
        self.started = started

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.bus.emit(
            ev.Batch(
                phase=self.phase,
                examples_done=self.done,
                examples_total=self.total,
                seconds=time.monotonic() - self.started,
            )
        )

    def relay(self, key: str) -> Callable[[ev.Event], None]:
        def forward(event: ev.Event) -> None:
            if isinstance(event, ev.Batch):
                self.bus.emit(event.relayed(key))

        return forward


@contextlib.contextmanager
def track(
    runner: Any,
    task: str,
    total: int,
    *,
    unit: str = "steps",
    phases: list[dict[str, Any]] | None = None,
    progress: Any = "auto",
) -> Iterator[Tracker]:
    """Report a long call other than a fit (a steering sweep, stability refits, an
    evaluation) through the runner's events and the display fits use: the console
    meter outside notebooks, the progress widget in them. Use::

        with track(runner, "steering sweep", total=54) as t:
            for ...:
                ...
                t.advance()

    `phases`: the phases the call goes through when there are several (each
    ``{"phase", "total", "unit"}``, a nested fit's with ``"total": None`` and
    optionally ``"like"``: the phase whose duration it will resemble); the default is
    one phase named `task` of `total` `unit`. A failed or interrupted call ends the
    display as such and re-raises."""
    if not isinstance(task, str) or not task:
        raise ValueError("track needs a task name, e.g. track(runner, 'steering sweep', 54)")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"total must be a whole number of steps >= 0, got {total!r}")
    planned = phases if phases is not None else [{"phase": task, "total": total, "unit": unit}]
    bus = runner.events
    display = make_progress(progress, runner)
    unsubscribe = bus.subscribe(display) if display is not None else None
    started = time.monotonic()
    bus.emit(ev.FitStarted(task=task, what=f"{total} {unit}", phases=planned))
    outcome = FitOutcome.ERROR
    try:
        yield Tracker(bus, task if phases is None else planned[0]["phase"], total, started)
        outcome = FitOutcome.COMPLETED
    except KeyboardInterrupt:
        outcome = FitOutcome.INTERRUPTED
        bus.emit(ev.Interrupted(message=f"{task} interrupted: nothing was kept"))
        raise
    except BaseException as e:
        bus.emit(ev.Error(message=f"{type(e).__name__}: {e}"))
        raise
    finally:
        bus.emit(ev.FitFinished(reason=outcome.value, seconds=time.monotonic() - started))
        if unsubscribe is not None:
            unsubscribe()
        close = getattr(display, "close", None)
        if close is not None:
            close()
