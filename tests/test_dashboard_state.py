"""The dashboard's state, fed by real events from real fits on the tiny model."""

from __future__ import annotations

import math
import time

import pytest

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core import events as ev
from lm_probe_widgets.widgets.dashboard import Dashboard, KernelPoller
from lm_probe_widgets.widgets.progress import ProgressState

FINAL = {"early-stopped", "finished", "stopped"}


@pytest.fixture(scope="module")
def data(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=32)
    train, test = ds.tt_split(test_size=0.25, seed=0)
    return model, train, test


def _configs(**kw):
    return [
        ProbeConfig("transformer.h.0.output", [0, 1], **kw),
        ProbeConfig("transformer.h.2.mlp.output", [0, 1], pooling="last", **kw),
    ]


class Recorder:
    """Wraps a Dashboard to count events and custom messages (the real objects run)."""

    def __init__(self, runner, **kw):
        self.dash = Dashboard(runner, **kw)
        self.events: list[ev.Event] = []
        self.messages: list[dict] = []
        send = self.dash.monitor.send

        def record(content, buffers=None):
            self.messages.append(content)
            send(content, buffers)

        self.dash.monitor.send = record

    def factory(self, runner):
        return self

    def __call__(self, event):
        self.events.append(event)
        self.dash(event)

    def poll(self):
        self.dash.poll()

    def close(self):
        self.dash.close()


def test_dashboard_reaches_end_state_from_a_real_fit(data):
    model, train, test = data
    runner = ProbeRunner(model, _configs(patience=2, warmup_steps=2))
    rec = Recorder(runner)
    runner.fit_probes(train, test, num_epoch=6, batch_size=16, progress=rec.factory)
    dash = rec.dash

    probes = {p["name"]: p for p in dash.progress.probes}
    assert set(probes) == {c.name for c in runner.configs}
    for name, p in probes.items():
        rec_ = runner[name].record
        assert p["state"] == rec_.state and p["state"] in FINAL
        assert p["step"] == rec_.steps and p["max_steps"] > 0
        assert p["best_step"] == rec_.best_step
        assert math.isclose(p["best_val_loss"], rec_.best_val_loss, rel_tol=1e-9)
    assert dash.progress.fit["state"] == "completed"
    assert dash.progress.fit["rate"] and dash.progress.fit["rate"] > 0

    # Monitor: full curves stored at the end equal the evaluations the runner made.
    evaluated = [e for e in rec.events if e.kind == ev.EVALUATED]
    meta = {m["name"]: m for m in dash.monitor.meta}
    for name in probes:
        steps, losses, count = dash.monitor.curves[name]
        assert count == len(steps)
        mine = [e for e in evaluated if e.probe == name]
        assert steps == [e.data["step"] for e in mine]
        assert losses == pytest.approx([e.data["val_loss"] for e in mine])
        assert meta[name]["stop_step"] == runner[name].record.steps
        assert "then fitted to convergence" in meta[name]["stop_reason"]
        assert meta[name]["warmup_steps"] == 2 and meta[name]["patience"] == 2
        assert meta[name]["state"] == probes[name]["state"]
    assert dash.monitor.running is False

    # Only new points crossed the wire while fitting: every point exactly once, in order.
    got: dict[str, list[int]] = {}
    for msg in rec.messages:
        if msg["type"] == "points":
            for name, (start, steps, _losses) in msg["points"].items():
                assert start == len(got.setdefault(name, []))
                got[name].extend(steps)
    assert got == {n: dash.monitor.curves[n][0] for n in probes}

    text = repr(dash)
    assert "fit completed" in text
    for name in probes:
        assert name in text
    bundle = dash._repr_mimebundle_()
    assert bundle["text/plain"] == text
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_trait_updates_are_throttled_whatever_the_event_rate(data):
    model, train, test = data
    # Many events: eval every step, no early stop, several epochs.
    runner = ProbeRunner(model, _configs(early_stopping=False, max_steps=10_000))
    rec = Recorder(runner)
    runner.fit_probes(train, None, num_epoch=12, batch_size=8, progress=rec.factory)
    seconds = rec.events[-1].data["seconds"]
    assert len(rec.events) > 400
    # ~10 Hz: at most one flush per 0.1 s, plus the first (fit_started) and the final one.
    assert rec.dash.flushes <= seconds / 0.1 + 3, (rec.dash.flushes, seconds)
    points = [m for m in rec.messages if m["type"] == "points"]
    assert len(points) <= seconds / 0.1 + 3
    assert rec.dash.progress.fit["state"] == "completed"


def test_stop_trait_from_the_browser_ends_the_fit_cleanly(data):
    """The Stop button sets `stop_requested` on the monitor; that must stop the runner."""
    model, train, _test = data
    runner = ProbeRunner(model, _configs(early_stopping=False, max_steps=10_000))
    rec = Recorder(runner)

    def click_after_some_steps(event):
        if event.kind == ev.STEP and event.data["step"] == 20:
            rec.dash.monitor.stop_requested = True  # what the widget's click does

    runner.events.subscribe(click_after_some_steps)
    runner.fit_probes(train, None, num_epoch=50, batch_size=8, progress=rec.factory)
    assert runner.state == "stopped"
    for p in rec.dash.progress.probes:
        assert p["state"] == "stopped"
        assert 20 <= p["step"] < p["max_steps"]
        assert "stopped by user" in p["reason"]
        assert runner[p["name"]].record.steps == p["step"]  # probes kept
    assert rec.dash.progress.fit["state"] == "stopped"
    assert {m["state"] for m in rec.dash.monitor.meta} == {"stopped"}
    assert "fit stopped" in repr(rec.dash)


def test_kernel_interrupt_leaves_the_dashboard_in_its_interrupted_end_state(data):
    model, train, _test = data
    runner = ProbeRunner(model, _configs(early_stopping=False, max_steps=10_000))
    rec = Recorder(runner)

    def interrupt(event):  # what a kernel interrupt (SIGINT) raises mid-fit
        if event.kind == ev.STEP and event.data["step"] == 12:
            raise KeyboardInterrupt

    runner.events.subscribe(interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.fit_probes(train, None, num_epoch=50, batch_size=8, progress=rec.factory)
    assert {p["state"] for p in rec.dash.progress.probes} == {"interrupted"}
    assert rec.dash.progress.fit["state"] == "interrupted"
    assert {m["state"] for m in rec.dash.monitor.meta} == {"interrupted"}
    assert rec.dash.monitor.running is False  # the Stop button is off again
    assert "fit interrupted" in repr(rec.dash) and "resume=True" in repr(rec.dash)


def test_long_curves_are_stored_reduced_keeping_shape_and_best():
    from lm_probe_widgets.widgets.monitor import MonitorState

    s = MonitorState()
    s.handle(ev.Event(ev.FIT_STARTED, None, {"probes": ["p"], "configs": [],
                                           "max_steps": {"p": 10**6}}))
    n, best = 10_000, 7_321
    for i in range(1, n + 1):
        loss = 0.1 if i == best else 2.0 + math.sin(i / 50)
        s.handle(ev.Event(ev.EVALUATED, "p", {"step": i, "val_loss": loss, "best_val_loss": 0.1,
                                              "best_step": best, "improved": i == best}))
    steps, losses, count = s.curves()["p"]
    assert count == n and 1000 < len(steps) <= 2000
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == n and best in steps
    assert min(losses) == 0.1 and max(losses) == pytest.approx(3.0, abs=1e-3)
    assert s.curves(max_points=10**6)["p"][0] == list(range(1, n + 1))


def test_poller_outside_a_kernel_is_a_harmless_no_op():
    poller = KernelPoller()
    assert not poller.supported and "kernel" in poller.reason
    assert poller.poll(force=True) == 0
    dash = Dashboard(None, poller=poller)
    assert dash.monitor.stop_supported is False and dash.monitor.stop_hint


def test_progress_state_errors_and_text_summary():
    s = ProgressState()
    assert "waiting" in s.summary()
    s.handle(ev.Event(ev.FIT_STARTED, None, {"probes": ["a<b>"], "configs": [],
                                           "max_steps": {"a<b>": 10}, "num_epoch": 1}))
    s.handle(ev.Event(ev.STEP, "a<b>", {"step": 3, "epoch": 1, "train_loss": float("nan")}))
    assert s.probes["a<b>"]["state"] == "training" and s.probes["a<b>"]["train_loss"] is None
    s.handle(ev.Event(ev.ERROR, None, {"message": "boom"}))
    s.handle(ev.Event(ev.FIT_FINISHED, None, {"reason": "error", "seconds": 1.0}))
    assert s.probes["a<b>"]["state"] == "error"
    assert "fit error" in s.summary() and "boom" in s.summary()


FIT_IN_KERNEL = """\
import numpy as np
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.tiny import tiny_model
model, tok = tiny_model("gpt2")
texts = [("good " if i % 2 else "bad ") + "movie " * (i % 5) for i in range(120)]
ds = ProbeDataset.from_texts(texts, [i % 2 for i in range(120)], tok, max_length=16)
train, test = ds.tt_split(test_size=0.25, seed=0)
runner = ProbeRunner(model, [ProbeConfig("transformer.h.1.output", patience=10**6,
                                         max_steps=10**7)])
get_ipython().run_line_magic("load_ext", "lm_probe_widgets")
"""


def test_stop_reaches_a_real_kernel_while_the_cell_runs():
    """The Stop click as the frontend sends it (a comm_msg updating `stop_requested`),
    sent to a real ipykernel while `fit_probes` blocks the cell. The next cell's
    execute_request, queued during the fit, must still run afterwards, in order."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive(FIT_IN_KERNEL, timeout=180)
        fit_id = kc.execute("runner.fit_probes(train, test, num_epoch=20000, batch_size=16)")
        comm_id = None
        points = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and points < 3:
            msg = kc.get_iopub_msg(timeout=60)
            content = msg["content"]
            if msg["msg_type"] == "comm_open":
                if "stop_requested" in content["data"].get("state", {}):
                    comm_id = content["comm_id"]
            elif msg["msg_type"] == "comm_msg" and content["comm_id"] == comm_id:
                if content["data"].get("content", {}).get("type") == "points":
                    points += 1  # the fit is visibly running
        assert comm_id is not None and points >= 3
        # Queued behind the running cell: handed back to the kernel, runs afterwards.
        after_id = kc.execute("print('AFTER', runner.state, int(runner.metrics['steps'].iloc[0]))")
        update = {"method": "update", "state": {"stop_requested": True}, "buffer_paths": []}
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": update}))
        replies = {}
        while len(replies) < 2:
            reply = kc.get_shell_msg(timeout=120)
            replies[reply["parent_header"]["msg_id"]] = reply["content"]["status"]
        assert replies == {fit_id: "ok", after_id: "ok"}
        out = ""
        while "AFTER" not in out or "\n" not in out.split("AFTER", 1)[1]:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
        state, steps = out.split("AFTER", 1)[1].split()
        assert state == "stopped"
        assert 0 < int(steps) < 20000  # ended early, the probe kept
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
