"""progress.js in headless chromium against the fake anywidget model.

States are produced by the Python `ProgressState` from events, so the test also
checks the Python -> browser contract (keys, JSON-safe values)."""

from __future__ import annotations

import re

from lm_probe_widgets.core import events as ev
from lm_probe_widgets.widgets.progress import ProgressState

NAMES = ["layer.0", "layer.1", "<img src=x onerror=window.pwned=1>"]


def _started() -> ProgressState:
    s = ProgressState()
    s.handle(ev.Event(ev.FIT_STARTED, None, {
        "probes": NAMES, "num_epoch": 4, "n_train": 100, "n_val": 10, "n_eval": 20,
        "configs": [{"name": n, "submodule": n, "max_steps": 1000} for n in NAMES],
        "max_steps": dict.fromkeys(NAMES, 40),
    }))
    return s


def _state(s: ProgressState) -> dict:
    return {"probes": s.probe_list(), "fit": dict(s.fit), "title": "Probes"}


def _train(s: ProgressState, steps: int) -> None:
    for step in range(1, steps + 1):
        s.handle(ev.Event(ev.BATCH, None, {
            "phase": "train", "epoch": 2, "examples_done": step * 5, "examples_total": 100,
            "tokens": 0, "real_tokens": 0, "seconds": step * 0.1,
        }))
        for n in NAMES:
            s.handle(ev.Event(ev.STEP, n, {"step": step, "epoch": 2, "examples_seen": step * 5,
                                          "train_loss": 0.5}))
            s.handle(ev.Event(ev.EVALUATED, n, {"step": step, "val_loss": 0.4, "improved": True,
                                               "best_val_loss": 0.35, "best_step": step}))


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def test_bars_move_and_reach_end_states_with_colours(widget_page):
    s = _started()
    w = widget_page.mount("progress", _state(s))
    rows = w.root.locator(".lpw-progress-row")
    assert rows.count() == 3
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["waiting"] * 3

    _train(s, 20)
    st = _state(s)
    w.kernel_set("fit", st["fit"])
    w.kernel_set("probes", st["probes"])
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["training"] * 3
    width = rows.first.locator(".lpw-progress-fill").evaluate("e => e.style.width")
    assert width == "50%"  # step 20 of 40
    stats = w.root.locator(".lpw-progress-stats").inner_text()
    assert "examples/s" in stats and "ETA ≤" in stats
    assert "best 0.3500 @ 20" in rows.first.locator(".lpw-progress-detail").inner_text()
    training_colour = rows.first.locator(".lpw-progress-fill").evaluate(
        "e => getComputedStyle(e).backgroundColor")

    s.handle(ev.Event(ev.STOPPED, NAMES[0], {"step": 20, "reason": "no validation improvement "
                                             "for 2 evaluations", "kind": "early_stopping",
                                             "best_step": 18}))
    s.handle(ev.Event(ev.PROBE_FINISHED, NAMES[0], {"state": "early-stopped", "steps": 20,
                                                    "reason": "no validation improvement",
                                                    "best_step": 18}))
    s.handle(ev.Event(ev.PROBE_FINISHED, NAMES[1], {"state": "finished", "steps": 40,
                                                    "reason": "completed 4 epoch(s)",
                                                    "best_step": 40}))
    s.handle(ev.Event(ev.ERROR, NAMES[2], {"message": "boom <b>"}))
    s.handle(ev.Event(ev.FIT_FINISHED, None, {"reason": "completed", "seconds": 3.0}))
    st = _state(s)
    w.kernel_set("probes", st["probes"])
    w.kernel_set("fit", st["fit"])

    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == [
        "early-stopped", "finished", "error"]
    classes = rows.evaluate_all("rs => rs.map(r => r.className)")
    assert "lpw-state-early-stopped" in classes[0] and "lpw-state-error" in classes[2]
    colours = rows.locator(".lpw-progress-fill").evaluate_all(
        "fs => fs.map(f => getComputedStyle(f).backgroundColor)")
    assert len(set(colours + [training_colour])) == 4, colours  # each state its own colour
    assert rows.nth(1).locator(".lpw-progress-fill").evaluate("e => e.style.width") == "100%"
    assert "no validation improvement" in rows.first.locator(".lpw-progress-reason").inner_text()
    assert rows.nth(2).locator(".lpw-progress-reason").inner_text() == "boom <b>"
    root = w.root.locator(".lpw-progress")
    assert root.get_attribute("data-fit-state") == "completed"
    assert w.root.locator(".lpw-progress-status").inner_text() == "fit completed"
    assert "ETA" not in w.root.locator(".lpw-progress-stats").inner_text()


def test_names_and_reasons_are_text_never_html(widget_page):
    s = _started()
    w = widget_page.mount("progress", _state(s))
    name = w.root.locator(".lpw-progress-name").nth(2)
    assert name.inner_text() == NAMES[2]
    assert w.root.locator("img").count() == 0
    assert widget_page.page.evaluate("window.pwned") is None


def test_readable_in_light_and_dark_themes(widget_page):
    w = widget_page.mount("progress", _state(_started()))
    name = w.root.locator(".lpw-progress-name").first

    def lum() -> float:
        r, g, b = _rgb(name.evaluate("e => getComputedStyle(e).color"))
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    assert lum() < 0.4
    widget_page.set_theme("dark")
    assert lum() > 0.6


def test_unmount_removes_listeners(widget_page):
    w = widget_page.mount("progress", _state(_started()))
    assert w.unmount() == 0
