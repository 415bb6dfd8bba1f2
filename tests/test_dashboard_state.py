"""The dashboard's state, fed by real events from real fits on the tiny model."""

from __future__ import annotations

import math
import time

import pytest
from patience import PATIENCE_S

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import events as ev
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
    # a row per phase, in the order the fit went through them, all done at the end
    phases = [ph["key"] for ph in dash.progress.phases]
    assert phases[:3] == ["extract-val", "extract-train", "train"] and "extract-eval" in phases
    assert {ph["state"] for ph in dash.progress.phases} == {"done"}
    assert dash.progress.fit["headline"] == "fit completed"

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
        # the final fit's weights are kept: their validation loss is the curve's end point
        assert meta[name]["refined"] and meta[name]["kept_val_loss"] == pytest.approx(
            runner[name].record.refined_val_loss
        )
        assert meta[name]["kept_label"].startswith("after the final fit")
        assert meta[name]["x_max"] == probes[name]["max_steps"]  # the planned run
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
    text = repr(rec.dash)
    assert text.startswith("fit stopped by you") and "best weights" in text


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
    s.handle(
        ev.make_event(
            ev.FIT_STARTED, None, {"probes": ["p"], "configs": [], "max_steps": {"p": 10**6}}
        )
    )
    n, best = 10_000, 7_321
    for i in range(1, n + 1):
        loss = 0.1 if i == best else 2.0 + math.sin(i / 50)
        s.handle(
            ev.make_event(
                ev.EVALUATED,
                "p",
                {
                    "step": i,
                    "val_loss": loss,
                    "best_val_loss": 0.1,
                    "best_step": best,
                    "improved": i == best,
                },
            )
        )
    steps, losses, count = s.curves()["p"]
    assert count == n and 1000 < len(steps) <= 2000
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == n and best in steps
    assert min(losses) == 0.1 and max(losses) == pytest.approx(3.0, abs=1e-3)
    assert s.curves(max_points=10**6)["p"][0] == list(range(1, n + 1))


def test_the_live_chart_and_its_snapshot_lay_out_one_view_model():
    """Python decides a loss chart's frame, axes and labels once (MonitorState.chart);
    the static snapshot draws exactly those, the live view keeps no axis rule of its
    own, and a point outside the axes marks the card for a redraw."""
    import re
    from pathlib import Path

    from lm_probe_widgets.widgets.monitor import MonitorState
    from lm_probe_widgets.widgets.snapshot import chart_svg

    s = MonitorState()
    s.handle(ev.FitStarted(probes=["p"], max_steps={"p": 400}))
    losses = [0.9, 0.5, 0.6]
    for i, v in enumerate(losses, 1):
        s.handle(ev.Evaluated("p", step=2 * i, val_loss=v, best_val_loss=0.5, best_step=4))
    assert s.handle(ev.Evaluated("p", step=8, val_loss=1.4, best_val_loss=0.5, best_step=4))
    assert not s.handle(ev.Evaluated("p", step=10, val_loss=0.7, best_val_loss=0.5, best_step=4))
    s.handle(ev.Refined("p", val_loss=0.3, l2=0.1))
    losses += [1.4, 0.7]
    (row,) = s.meta_list()
    assert 0 <= row["y_lo"] < 0.3 and row["y_hi"] > 1.4  # every loss and the kept one
    steps, drawn, _ = s.curves()["p"]
    svg = chart_svg(row, steps, drawn)
    f = row["frame"]
    assert f'viewBox="0 0 {f["w"]} {f["h"]}"' in svg
    labels = re.findall(r'class="lpw-snap-axis[^"]*"[^>]*>([^<]*)<', svg)
    assert labels == [*row["y_labels"], "0", row["x_label"]] and row["x_label"] == "400"
    js = (Path(__file__).resolve().parents[1] / "js" / "monitor.js").read_text()
    assert not re.search(r"const (W|H|PAD) = [\d{]", js) and "lossRange" not in js


def test_poller_outside_a_kernel_is_a_harmless_no_op():
    poller = KernelPoller()
    assert not poller.supported and "kernel" in poller.reason
    assert poller.poll(force=True) == 0
    dash = Dashboard(None, poller=poller)
    assert dash.monitor.stop_supported is False and dash.monitor.stop_hint


def test_progress_state_errors_and_text_summary():
    s = ProgressState()
    assert "waiting" in s.summary()
    s.handle(
        ev.make_event(
            ev.FIT_STARTED,
            None,
            {"probes": ["a<b>"], "configs": [], "max_steps": {"a<b>": 10}, "num_epoch": 1},
        )
    )
    s.handle(ev.make_event(ev.STEP, "a<b>", {"step": 3, "epoch": 1, "train_loss": float("nan")}))
    assert s.probes["a<b>"]["state"] == "training" and s.probes["a<b>"]["train_loss"] is None
    s.handle(ev.make_event(ev.ERROR, None, {"message": "boom"}))
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "error", "seconds": 1.0}))
    assert s.probes["a<b>"]["state"] == "error"
    assert s.summary().startswith("fit failed") and "boom" in s.summary()


FIT_IN_KERNEL = """\
import numpy as np
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.io.tiny import tiny_model
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
        kc.execute_interactive(FIT_IN_KERNEL, timeout=PATIENCE_S)
        fit_id = kc.execute("runner.fit_probes(train, test, num_epoch=20000, batch_size=16)")
        comm_id = None
        points = 0
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline and points < 3:
            msg = kc.get_iopub_msg(timeout=PATIENCE_S)
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
            reply = kc.get_shell_msg(timeout=PATIENCE_S)
            replies[reply["parent_header"]["msg_id"]] = reply["content"]["status"]
        assert replies == {fit_id: "ok", after_id: "ok"}
        out = ""
        while "AFTER" not in out or "\n" not in out.split("AFTER", 1)[1]:
            msg = kc.get_iopub_msg(timeout=PATIENCE_S)
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
        state, steps = out.split("AFTER", 1)[1].split()
        assert state == "stopped"
        assert 0 < int(steps) < 20000  # ended early, the probe kept
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --------------------------------------------------------------------------- synthetic streams


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _fit_started(names, num_epoch=10, planned=190, n_eval=200, **cfg):
    configs = [
        {
            "name": n,
            "submodule": n,
            "warmup_steps": 5,
            "patience": 5,
            "eval_every": 1,
            "early_stopping": True,
            "max_steps": 10**6,
            **cfg,
        }
        for n in names
    ]
    return ev.make_event(
        ev.FIT_STARTED,
        None,
        {
            "probes": names,
            "configs": configs,
            "num_epoch": num_epoch,
            "n_train": 600,
            "n_val": 60,
            "n_eval": n_eval,
            "max_steps": dict.fromkeys(names, planned),
        },
    )


def _batch(phase, epoch, done, total, **extra):
    return ev.make_event(
        ev.BATCH,
        None,
        {"phase": phase, "epoch": epoch, "examples_done": done, "examples_total": total, **extra},
    )


def test_eta_follows_the_phase_and_does_not_swing():
    """Training batches whose times jitter (0.05-0.15 s, and a 0.6 s pause every 25th):
    after two seconds the time left stays within 25% of the truth and the predicted end
    within 20% of the real end, however the batches fall."""
    import numpy as np

    clock = FakeClock()
    s = ProgressState(clock)
    s.handle(_fit_started(["a", "b"]))
    rng = np.random.default_rng(0)
    n, bs, epochs = 600, 32, range(2, 11)
    per_epoch = -(-n // bs)
    durations = rng.uniform(0.05, 0.15, per_epoch * len(epochs))
    durations[::25] = 0.6
    mean = durations.mean()
    total_batches = len(durations)
    start = clock.t
    k = 0
    samples = []
    for epoch in epochs:
        for b in range(per_epoch):
            clock.t += durations[k]
            k += 1
            s.handle(_batch("train", epoch, min((b + 1) * bs, n), n))
            eta = s.fit["eta"]
            elapsed = clock.t - start
            if eta is not None:
                samples.append((elapsed, eta, (total_batches - k) * mean))
            if k == total_batches // 2:
                middle = (s.fit["stats"], s.phases["train"]["text"])
    assert samples and samples[0][0] < 2.5  # an estimate within the first seconds
    late = [x for x in samples if x[0] >= 2.0 and x[2] >= 2.0]
    errors = [abs(eta - truth) / truth for _, eta, truth in late]
    assert max(errors) < 0.25, max(errors)
    # the predicted end of the phase stays within 20% of the real one throughout (an
    # estimate from the last batch alone would jump 6x at every pause)
    true_end = float(durations.sum())
    ends = [elapsed + eta for elapsed, eta, _ in samples if elapsed >= 2.0]
    assert 0.8 * true_end < min(ends) and max(ends) < 1.2 * true_end, (min(ends), max(ends))
    # mid-way: the headline times the whole call, the phase row its own part (a bound:
    # probes may stop early)
    stats, text = middle
    assert "left in all" in stats and "not timed" not in stats, stats
    assert "≤" in text and "left in this phase" in text, text


def test_the_headline_is_final_only_at_fit_finished():
    """Baselines, control probes and bootstrap run after every probe finished: the fit
    is still running until the one fit_finished event."""
    clock = FakeClock()
    s = ProgressState(clock)
    s.handle(_fit_started(["a"]))
    s.handle(_batch("extract-train", 1, 600, 600))
    s.handle(
        ev.make_event(
            ev.PROBE_FINISHED,
            "a",
            {"state": "finished", "steps": 190, "reason": "completed 10 epoch(s)"},
        )
    )
    s.handle(ev.make_event(ev.REFINED, "a", {"val_loss": 0.41, "l2": 0.1}))
    s.handle(_batch("refine", 10, 1, 1))
    for phase in ("extract-eval", "control", "baseline-random_init", "bootstrap"):
        for done in (50, 100):
            clock.t += 1
            s.handle(_batch(phase, 0, done, 100, detail="extract-train"))
            assert s.fit["state"] == "running" and "fit completed" not in s.summary()
            assert s.fit["headline"].startswith("fitting: ")
    assert [ph["state"] for ph in s.phase_list()] == ["done"] * 5 + ["running"]
    refine = s.phases["refine"]
    assert refine["text"] == "1/1 probes"  # the final fit counts probes
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed", "seconds": 0.0}))
    assert s.fit["headline"] == "fit completed" and s.fit["message"] == ""
    assert [ph["state"] for ph in s.phase_list()] == ["done"] * 6
    assert s.summary().count("fit completed") == 1
    assert s.probes["a"]["detail"].endswith("CV loss (final fit) 0.410")


def test_a_stop_gives_one_coherent_final_message():
    for reason, expect in [
        ("completed", "The Stop came after training had ended: nothing was cut short."),
        (
            "stopped",
            "The probes keep their best weights so far; the test-set metrics are "
            "computed. fit_probes(..., resume=True) continues.",
        ),
    ]:
        s = ProgressState(FakeClock())
        s.handle(_fit_started(["a", "b"]))
        s.handle(_batch("train", 2, 32, 600))
        s.request_stop()
        assert s.fit["message"].startswith("Stop requested")
        s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": reason, "seconds": 0.0}))
        assert s.fit["message"] == expect
        text = s.summary()
        assert "Stop requested" not in text
        assert text.count("completed") + text.count("stopped by you") <= 3, text
        assert ("fit completed" in text) == (reason == "completed")


def test_phase_bars_never_go_back():
    """The random-init bar filled in its first pass, then fell back to 30% when its
    later epochs started counting from 0: a bar may only grow."""
    s = ProgressState(FakeClock())
    s.handle(_fit_started(["a"], num_epoch=3))
    seen = []
    stages = [("extract-val", 1, 64), ("extract-train", 1, 600)]
    stages += [("train", e, 600) for e in (2, 3)] + [("refine", 3, 1), ("extract-eval", 0, 200)]
    for stage, epoch, total in stages:
        for done in (total // 3, total):
            s.handle(_batch("baseline-random_init", epoch, done, total, detail=stage))
            seen.append(s.phases["baseline-random_init"]["fraction"])
    assert seen == sorted(seen) and seen[-1] == 1.0 and seen[0] < 0.2, seen
    main = ProgressState(FakeClock())
    main.handle(_fit_started(["a"], num_epoch=3))
    fractions = []
    for epoch, done in ((2, 300), (2, 600), (3, 100), (3, 600)):
        main.handle(_batch("train", epoch, done, 600))
        fractions.append(main.phases["train"]["fraction"])
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, fractions


def test_a_probe_row_names_its_loss_for_what_it_is():
    """Training over, the final fit not yet reported: the best step's validation loss,
    so named; then the final fit's cross-validated loss, so named (never one label for
    both, which read as "the final fit made it worse")."""
    s = ProgressState(FakeClock())
    s.handle(_fit_started(["a"]))
    s.handle(
        ev.make_event(ev.EVALUATED, "a", {"val_loss": 0.7, "best_val_loss": 0.662, "best_step": 5})
    )
    s.handle(ev.make_event(ev.PROBE_FINISHED, "a", {"state": "finished", "steps": 10}))
    assert s.probes["a"]["detail"].endswith("best-step val loss 0.662")
    s.handle(ev.make_event(ev.REFINED, "a", {"val_loss": 0.695, "l2": 0.1}))
    assert s.probes["a"]["detail"].endswith("CV loss (final fit) 0.695")


def test_the_stop_message_says_what_happens_in_the_phase_running_now():
    """A stop during the test-set pass must not promise "training ends after the
    current batch": that pass runs to its end (the engine never cuts it)."""
    cases = [
        (("train", 2, 32, 600), {}, "training ends after the current batch"),
        (("refine", 1, 1, 4), {}, "final fit stops after the current probe"),
        (("extract-eval", 1, 32, 200), {}, "test-set pass runs to its end"),
        (("baseline-random_init", 1, 32, 600), {"detail": "extract-eval"}, "test-set pass"),
    ]
    for args, kw, expect in cases:
        s = ProgressState(FakeClock())
        s.handle(_fit_started(["a"]))
        s.handle(_batch(*args, **kw))
        s.request_stop()
        assert expect in s.fit["message"], (args, s.fit["message"])
        assert ("resume=True" in s.fit["message"]) == args[0].startswith("baseline-")
        if "test-set" in expect:
            assert "training ends" not in s.fit["message"]


def test_a_stop_after_training_says_what_it_cut():
    s = ProgressState(FakeClock())
    s.handle(_fit_started(["a"]))
    s.handle(ev.make_event(ev.PROBE_FINISHED, "a", {"state": "finished", "steps": 190}))
    s.handle(_batch("baseline-random_init", 1, 64, 600, detail="extract-train"))
    s.request_stop()
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "stopped"}))
    assert s.fit["headline"] == "fit stopped by you"
    assert s.fit["message"].startswith("Stopped during baseline: random-init model: the probes")
    assert "blank" in s.fit["message"] and "resume=True" in s.fit["message"]
    assert s.probes["a"]["state"] == "finished"


def test_shared_reasons_are_summarised_not_repeated():
    s = ProgressState(FakeClock())
    names = [f"h[{i}]" for i in range(22)]
    s.handle(_fit_started(names))
    for n in names[:-1]:
        s.handle(
            ev.make_event(
                ev.PROBE_FINISHED,
                n,
                {"state": "finished", "steps": 190, "reason": "completed 10 epoch(s)"},
            )
        )
    s.handle(
        ev.make_event(
            ev.PROBE_FINISHED,
            names[-1],
            {"state": "early-stopped", "steps": 50, "reason": "no validation improvement"},
        )
    )
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed"}))
    assert s.fit["reasons"] == ["21 probes: completed 10 epoch(s)"]
    assert s.summary().count("completed 10 epoch(s)") == 1
    assert [p["note"] for p in s.probe_list()][-2:] == ["", "no validation improvement"]


def test_monitor_chart_facts():
    from lm_probe_widgets.widgets.monitor import MonitorState

    def run(**cfg):
        m = MonitorState()
        m.handle(_fit_started(["a"], planned=35, **cfg))
        for step in range(1, 11):
            m.handle(
                ev.make_event(
                    ev.EVALUATED,
                    "a",
                    {
                        "step": step,
                        "val_loss": 1 / step,
                        "best_val_loss": 1 / step,
                        "best_step": step,
                    },
                )
            )
        return m

    m = run()
    chart = m.chart("a")
    assert chart["x_max"] == 35 and chart["window"] == [10, 15] and chart["warmup"] == 5
    assert chart["kept_val_loss"] is None  # still training
    assert run(patience=300).chart("a")["window"] is None  # cannot end the run
    assert run(early_stopping=False).chart("a")["window"] is None
    m.handle(ev.make_event(ev.PROBE_FINISHED, "a", {"state": "stopped", "steps": 10}))
    assert m.chart("a")["kept_val_loss"] == pytest.approx(0.1)  # the best step's weights
    assert m.chart("a")["kept_foot"] == "best-step val loss 0.100"
    m.handle(ev.make_event(ev.REFINED, "a", {"val_loss": 0.05, "l2": 0.01}))
    chart = m.chart("a")
    assert chart["kept_val_loss"] == 0.05 and chart["kept_step"] == 10
    assert chart["kept_label"].startswith("after the final fit (L2 0.01): cross-validated")
    assert chart["kept_foot"] == "CV loss (final fit) 0.050"
    for step in range(11, 41):  # a resumed run goes past its plan: the axis follows
        m.handle(
            ev.make_event(
                ev.EVALUATED,
                "a",
                {"step": step, "val_loss": 0.1, "best_val_loss": 0.05, "best_step": 10},
            )
        )
    assert m.chart("a")["x_max"] == 40


def test_dashboard_snapshot_and_final_bundle():
    """The output carries a static HTML snapshot beside the live view; at the end of the
    fit it holds only the snapshot (a reopened notebook has no widget models)."""
    dash = Dashboard(None, show=False)
    dash(_fit_started(["a", "<script>x"]))
    dash(_batch("extract-train", 1, 600, 600))
    for n in ("a", "<script>x"):
        dash(
            ev.make_event(
                ev.EVALUATED, n, {"step": 3, "val_loss": 0.5, "best_val_loss": 0.5, "best_step": 3}
            )
        )
        dash(
            ev.make_event(
                ev.PROBE_FINISHED,
                n,
                {"state": "finished", "steps": 3, "reason": "completed 10 epoch(s)"},
            )
        )
    live = dash._repr_mimebundle_()
    assert {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"} <= set(live)
    assert 'data-fit-state="running"' in live["text/html"]
    dash(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed"}))
    dash.close()
    final = dash.final_bundle()
    assert set(final) == {"text/plain", "text/html"}
    html = final["text/html"]
    assert 'data-fit-state="completed"' in html and "fit completed" in html
    assert (
        html.count('class="lpw-snap-card"') == 2
        and "&lt;script&gt;x" in html
        and "<script" not in html
    )
    assert 'data-phase="extract-train"' in html
    assert final["text/plain"].startswith("fit completed")


def test_progress_and_monitor_alone_carry_their_snapshot():
    from lm_probe_widgets.widgets.monitor import EarlyStoppingMonitor
    from lm_probe_widgets.widgets.progress import ProbeProgress

    for widget in (ProbeProgress(clock=FakeClock()), EarlyStoppingMonitor()):
        widget.handle(_fit_started(["a"]))
        widget.handle(
            ev.make_event(
                ev.EVALUATED,
                "a",
                {"step": 1, "val_loss": 0.5, "best_val_loss": 0.5, "best_step": 1},
            )
        )
        widget.handle(ev.make_event(ev.PROBE_FINISHED, "a", {"state": "early-stopped", "steps": 1}))
        widget.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed"}))
        data, _meta = widget._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data
        assert "stopped early" in data["text/html"] and "stopped early" in data["text/plain"]


def test_one_eta_for_the_whole_call_is_a_bound_until_every_phase_is_timed():
    """A fit whose phases each run at a constant speed: the headline's time left is
    for the whole call, never more than the truth while a phase is untimed (and then
    names it), within 15% of the truth once all are timed, and never "0s" while work
    remains."""
    clock = FakeClock()
    s = ProgressState(clock)
    plan = [
        {"phase": "extract-val", "total": 64, "unit": "examples"},
        {"phase": "extract-train", "total": 600, "unit": "examples"},
        {"phase": "train", "total": 600, "unit": "examples", "epochs": 2},
        {"phase": "refine", "total": 6, "unit": "probes"},
        {"phase": "extract-eval", "total": 400, "unit": "examples"},
    ]
    start = _fit_started(["a", "b"], num_epoch=3)
    s.handle(ev.make_event(ev.FIT_STARTED, None, {**start.data, "phases": plan}))
    # (phase, epoch, total, seconds per unit, units per event)
    runs = [("extract-val", 1, 64, 0.05, 8), ("extract-train", 1, 600, 0.05, 20)]
    runs += [("train", e, 600, 0.01, 50) for e in (2, 3)]
    runs += [("refine", 3, 6, 2.0, 1), ("extract-eval", 0, 400, 0.05, 20)]
    events = []
    for phase, epoch, total, per_unit, step in runs:
        for done in range(step, total + 1, step):
            events.append((phase, epoch, done, total, per_unit * step))
    truth_total = sum(e[-1] for e in events)
    spent, lower, timed = 0.0, 0, 0
    for phase, epoch, done, total, dt in events:
        clock.t += dt
        spent += dt
        s.handle(_batch(phase, epoch, done, total))
        truth = truth_total - spent
        seconds, untimed = s.call.left(clock.t)
        stats = s.fit["stats"]
        assert " 0s left" not in stats, stats
        if untimed:
            lower += 1
            assert seconds <= truth * 1.05 + 1e-9, (phase, done, seconds, truth)
            assert "not timed yet" in stats or "not known yet" in stats, stats
        elif truth > 10:
            timed += 1
            assert abs(seconds - truth) <= 0.15 * truth, (phase, done, seconds, truth)
            assert stats.endswith("left in all"), stats
    assert lower and timed  # both regimes were seen
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed", "seconds": spent}))
    assert "left" not in s.fit["stats"]


def test_a_call_tracked_outside_fits_shows_in_the_same_displays(tiny):
    """`track` (a steering sweep, stability refits) publishes on the runner's events:
    the progress state heads it with the task and counts its own unit, the console
    meter says the whole call's time left, and a failure ends both as such."""
    import io

    from lm_probe_widgets.core.engine.progress import ConsoleProgress, track

    model, _ = tiny
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1])])
    clock = FakeClock()
    state = ProgressState(clock)
    stream = io.StringIO()
    stream.isatty = lambda: True
    console = ConsoleProgress(stream, min_interval=0.0, clock=clock)
    seen = []
    runner.events.subscribe(lambda e: (state.handle(e), console(e), seen.append(e.kind)))
    with track(runner, "steering sweep", total=4, unit="runs", progress=None) as t:
        assert state.fit["headline"] == "steering sweep"
        assert state.fit["stats"].endswith("time left: not known yet")
        for _ in range(3):
            clock.t += 2.0
            t.advance()
        assert state.phases["steering sweep"]["text"].startswith("3/4 runs")
        assert "≈ 2s left in all" in state.fit["stats"], state.fit["stats"]
        assert "≈ 2s left in all" in console.line()
        clock.t += 2.0
        t.advance()
    assert state.fit["headline"] == "steering sweep completed"
    assert stream.getvalue().rstrip().split("\r")[-1].startswith("steering sweep completed")
    with pytest.raises(RuntimeError), track(runner, "stability", total=3, progress=None):
        raise RuntimeError("boom")
    assert state.fit["state"] == "error" and "boom" in state.fit["message"]
    assert seen.count(ev.FIT_STARTED) == seen.count(ev.FIT_FINISHED) == 2
    with pytest.raises(ValueError, match="whole number"):
        with track(runner, "x", total=-1, progress=None):
            pass
    assert seen.count(ev.FIT_STARTED) == 2  # refused before anything was published


def test_stability_shows_its_refits_as_phases_of_one_display(data):
    """`stability` (refits of sibling runners) reports through the runner's display:
    one tracked call whose phases are the refits, each filled from its fit's stages;
    the dashboard shows no loss charts for it."""
    model, train, test = data
    runner = ProbeRunner(model, _configs(max_steps=4))
    runner.fit_probes(train, test, num_epoch=1, batch_size=32, bootstrap=0, progress=None)
    rec = Recorder(runner, show=False)
    runner.stability(seeds=[1, 2], progress=rec.factory)
    state = rec.dash.progress.state
    assert state.fit["headline"] == "stability completed"
    keys = [ph["key"] for ph in state.phase_list()]
    assert keys == ["refit 1/2 (seed 1)", "refit 2/2 (seed 2)"], keys
    assert all(ph["fraction"] == 1.0 for ph in state.phase_list())
    assert rec.dash.monitor.layout.display == "none"
    assert "lpw-snap-phases" in rec.dash.snapshot_html()
    assert [e.kind for e in rec.events].count(ev.FIT_STARTED) == 1


def test_baselines_are_named_once_and_timed_from_the_call_s_own_pass():
    from lm_probe_widgets.core.engine.progress import CallClock

    plan = [{"phase": "extract-train", "total": 100, "unit": "examples"}]
    plan += [{"phase": f"baseline-{b}", "total": None} for b in ("majority", "random_init")]
    call = CallClock()
    call.start(plan, 1, 0.0)
    assert call.words(0.0) == "time left: not known yet (extract train, baselines to come)"
    for t in range(1, 6):
        call.batch({"phase": "extract-train", "examples_done": 10 * t, "examples_total": 100}, t)
    # 5 s of this pass, then the random-init model's own pass over the same texts (10 s);
    # the majority class costs nothing
    assert call.words(5.0) == "≈ 15s left in all"
    call.batch({"phase": "extract-train", "examples_done": 100, "examples_total": 100}, 10.0)
    assert call.words(10.0) == "≈ 10s left in all"
    call.finish()
    assert call.words(11.0) == ""
