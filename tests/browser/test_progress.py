"""progress.js in headless chromium against the fake anywidget model.

States are produced by the Python `ProgressState` from events (with a fake clock), so
the test also checks the Python -> browser contract (keys, JSON-safe values), and that
every word and colour the view shows comes from Python (display/states.py)."""

from __future__ import annotations

import re

from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.display import states
from lm_probe_widgets.widgets.progress import ProgressState

NAMES = ["layer.0", "layer.1", "<img src=x onerror=window.pwned=1>", "layer.3"]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _started(names=NAMES) -> tuple[ProgressState, Clock]:
    clock = Clock()
    s = ProgressState(clock)
    s.handle(
        ev.make_event(
            ev.FIT_STARTED,
            None,
            {
                "probes": names,
                "num_epoch": 4,
                "n_train": 100,
                "n_val": 10,
                "n_eval": 20,
                "configs": [{"name": n, "submodule": n, "max_steps": 1000} for n in names],
                "max_steps": dict.fromkeys(names, 40),
            },
        )
    )
    return s, clock


def _state(s: ProgressState) -> dict:
    return {
        "probes": s.probe_list(),
        "phases": s.phase_list(),
        "fit": dict(s.fit),
        "title": "Probes",
        "styles": states.styles(),
    }


def _push(w, s: ProgressState) -> None:
    for key, value in _state(s).items():
        w.kernel_set(key, value)


def _train(s: ProgressState, clock: Clock, steps: int, names=NAMES) -> None:
    for step in range(1, steps + 1):
        clock.t += 0.1
        s.handle(
            ev.make_event(
                ev.BATCH,
                None,
                {
                    "phase": "train",
                    "epoch": 2,
                    "examples_done": step * 5,
                    "examples_total": 100,
                    "tokens": 0,
                    "real_tokens": 0,
                    "seconds": step * 0.1,
                },
            )
        )
        for n in names:
            s.handle(
                ev.make_event(
                    ev.STEP,
                    n,
                    {"step": step, "epoch": 2, "examples_seen": step * 5, "train_loss": 0.5},
                )
            )
            s.handle(
                ev.make_event(
                    ev.EVALUATED,
                    n,
                    {
                        "step": step,
                        "val_loss": 0.4,
                        "improved": True,
                        "best_val_loss": 0.35,
                        "best_step": step,
                    },
                )
            )


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def _hex(h: str) -> tuple[int, ...]:
    return tuple(int(h[i : i + 2], 16) for i in (1, 3, 5))


def test_bars_move_and_reach_end_states_with_their_own_colours(widget_page):
    s, clock = _started()
    w = widget_page.mount("progress", _state(s))
    rows = w.root.locator(".lpw-progress-probe")
    assert rows.count() == 4
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["waiting"] * 4
    assert w.root.locator(".lpw-progress-phases").is_hidden()  # no phase reported yet

    _train(s, clock, 20)
    _push(w, s)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["training"] * 4
    assert rows.first.locator(".lpw-progress-fill").evaluate("e => e.style.width") == "50%"
    stats = w.root.locator(".lpw-progress-stats").inner_text()
    assert "elapsed" in stats and "left in all" in stats  # the whole call's time left
    phase = w.root.locator(".lpw-progress-phase")
    assert phase.count() == 1 and phase.get_attribute("data-phase") == "train"
    assert phase.locator(".lpw-progress-name").inner_text() == "training, later epochs"
    assert "epoch 2/4" in phase.inner_text() and "examples/s" in phase.inner_text()
    assert "left in this phase" in phase.inner_text()  # and the phase's own
    detail = rows.first.locator(".lpw-progress-detail").inner_text()
    assert detail == "step 20/40 · epoch 2/4 · val loss 0.400"  # one val loss, labelled
    assert w.root.locator(".lpw-progress-status").inner_text() == "fitting: training, later epochs"
    training = rows.first.locator(".lpw-progress-fill").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )

    s.handle(
        ev.make_event(
            ev.PROBE_FINISHED,
            NAMES[0],
            {
                "state": "early-stopped",
                "steps": 20,
                "reason": "no validation improvement",
                "best_step": 18,
            },
        )
    )
    s.handle(
        ev.make_event(
            ev.PROBE_FINISHED,
            NAMES[1],
            {"state": "finished", "steps": 40, "reason": "completed 4 epoch(s)", "best_step": 40},
        )
    )
    s.handle(ev.make_event(ev.REFINED, NAMES[1], {"val_loss": 0.3125, "l2": 0.1}))
    s.handle(ev.make_event(ev.ERROR, NAMES[2], {"message": "boom <b>"}))
    s.handle(
        ev.make_event(
            ev.PROBE_FINISHED,
            NAMES[3],
            {"state": "stopped", "steps": 21, "reason": "stopped by user at step 21"},
        )
    )
    _push(w, s)
    # every probe is done, but the fit is not: the headline still says so
    assert w.root.locator(".lpw-progress").get_attribute("data-fit-state") == "running"
    assert "completed" not in w.root.locator(".lpw-progress-status").inner_text()

    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed", "seconds": 0.0}))
    _push(w, s)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == [
        "early-stopped",
        "finished",
        "error",
        "stopped",
    ]
    words = rows.locator(".lpw-progress-state").all_inner_texts()
    assert words == ["stopped early", "finished", "error", "stopped by you"]
    colours = rows.locator(".lpw-progress-fill").evaluate_all(
        "fs => fs.map(f => getComputedStyle(f).backgroundColor)"
    )
    assert len(set(colours + [training])) == 5, colours  # each state its own colour
    # no theme variables in the harness: the fallbacks of display/states.py apply,
    # and red is the error's alone
    expected = {
        "finished": "#388e3c",
        "early-stopped": "#0097a7",
        "stopped": "#f57c00",
        "error": "#d32f2f",
    }
    got = dict(
        zip(["early-stopped", "finished", "error", "stopped"], map(_rgb, colours), strict=True)
    )
    assert got == {k: _hex(v) for k, v in expected.items()}
    assert rows.nth(1).locator(".lpw-progress-fill").evaluate("e => e.style.width") == "100%"
    assert "CV loss (final fit) 0.312" in rows.nth(1).locator(".lpw-progress-detail").inner_text()
    assert "no validation improvement" in rows.first.locator(".lpw-progress-reason").inner_text()
    assert rows.nth(2).locator(".lpw-progress-reason").inner_text() == "boom <b>"
    root = w.root.locator(".lpw-progress")
    assert root.get_attribute("data-fit-state") == "completed"
    assert w.root.locator(".lpw-progress-status").inner_text() == "fit completed"
    assert "left" not in w.root.locator(".lpw-progress-stats").inner_text()
    assert w.root.locator(".lpw-progress-phase").get_attribute("data-state") == "done"


def test_every_phase_gets_a_row_with_its_own_unit(widget_page):
    s, clock = _started(NAMES[:1])
    w = widget_page.mount("progress", _state(s))
    for phase, detail, done, total in [
        ("extract-val", None, 10, 10),
        ("refine", None, 3, 11),
        ("control", "train", 50, 100),
        ("baseline-random_init", "extract-train", 20, 100),
        ("baseline-majority", None, 20, 20),
        ("bootstrap", None, 4, 11),
        ("some-new_phase", None, 1, 2),
    ]:
        clock.t += 1
        data = {"phase": phase, "epoch": 2, "examples_done": done, "examples_total": total}
        if detail:
            data["detail"] = detail
        s.handle(ev.make_event(ev.BATCH, None, data))
    _push(w, s)
    phases = w.root.locator(".lpw-progress-phase")
    labels = phases.locator(".lpw-progress-name").all_inner_texts()
    assert labels == [
        "validation activations",
        "final fit",
        "control probes",
        "baseline: random-init model",
        "baseline: majority class",
        "bootstrap intervals",
        "some new phase",
    ]
    texts = phases.locator(".lpw-progress-detail").all_inner_texts()
    assert texts[1] == "3/11 probes"  # the final fit counts probes
    assert texts[2].startswith("training, later epochs · epoch 2/4 · 50/100 examples")
    assert texts[3].startswith("first epoch (model pass) · 20/100 examples")
    states_ = phases.evaluate_all("ps => ps.map(p => p.dataset.state)")
    assert states_ == ["done"] * 6 + ["running"]


def test_shared_reasons_are_said_once_and_a_late_stop_reads_coherently(widget_page):
    s, clock = _started()
    _train(s, clock, 5)
    s.request_stop()  # clicked while the last batches ran
    for n in NAMES:
        s.handle(
            ev.make_event(
                ev.PROBE_FINISHED,
                n,
                {"state": "finished", "steps": 40, "reason": "completed 4 epoch(s)"},
            )
        )
    assert "Stop requested" in s.fit["message"]
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed", "seconds": 0.0}))
    w = widget_page.mount("progress", _state(s))
    assert w.root.locator(".lpw-progress-status").inner_text() == "fit completed"
    reasons = w.root.locator(".lpw-progress-reasons li").all_inner_texts()
    assert reasons == ["4 probes: completed 4 epoch(s)"]
    assert w.root.locator(".lpw-progress-reason:visible").count() == 0  # not per row
    message = w.root.locator(".lpw-progress-message").inner_text()
    assert message == "The Stop came after training had ended: nothing was cut short."
    assert "Stopped" not in w.root.inner_text()


def test_names_and_reasons_are_text_never_html(widget_page):
    s, _ = _started()
    w = widget_page.mount("progress", _state(s))
    name = w.root.locator(".lpw-progress-probe .lpw-progress-name").nth(2)
    assert name.inner_text() == NAMES[2]
    assert w.root.locator("img").count() == 0
    assert widget_page.page.evaluate("window.pwned") is None


def test_readable_in_light_and_dark_themes(widget_page):
    s, _ = _started()
    w = widget_page.mount("progress", _state(s))
    name = w.root.locator(".lpw-progress-name").first

    def lum() -> float:
        r, g, b = _rgb(name.evaluate("e => getComputedStyle(e).color"))
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    assert lum() < 0.4
    widget_page.set_theme("dark")
    assert lum() > 0.6


def test_unmount_removes_listeners(widget_page):
    s, _ = _started()
    w = widget_page.mount("progress", _state(s))
    assert w.unmount() == 0
