"""monitor.js in headless chromium against the fake anywidget model: curves from
incremental points, resync on gaps, best/warm-up/patience/stop marks, the Stop
button, and drawing speed with dozens of probes and hundreds of points."""

from __future__ import annotations

import math

from lm_probe_widgets.core import events as ev
from lm_probe_widgets.widgets.monitor import MonitorState, _clean


def _meta(names, **kw):
    s = MonitorState()
    s.handle(ev.Event(ev.FIT_STARTED, None, {
        "probes": names,
        "configs": [{"name": n, "warmup_steps": 10, "patience": 5, "eval_every": 2,
                     "early_stopping": True, "max_steps": 400} for n in names],
        "max_steps": dict.fromkeys(names, 400),
    }))
    rows = s.meta_list()
    for r in rows:
        r.update(kw)
    return rows


def _curve(n, start=0):
    steps = [2 * (i + 1) for i in range(start, start + n)]
    losses = [0.7 * math.exp(-s / 40) + 0.2 + 0.01 * math.sin(s) for s in steps]
    return steps, losses


def test_points_snapshot_resync_and_marks(widget_page):
    names = ["a", "b<script>"]
    w = widget_page.mount("monitor", {"meta": _meta(names, state="training"), "curves": {},
                                      "running": True, "stop_requested": False,
                                      "stop_supported": True, "stop_hint": "", "title": ""})
    assert w.sent() == [{"type": "resync"}]  # opened while running: ask for history
    cards = w.root.locator(".lpw-monitor-card")
    assert cards.count() == 2
    assert cards.nth(1).locator(".lpw-monitor-name").inner_text() == "b<script>"

    s10, l10 = _curve(10)
    w.kernel_send({"type": "snapshot", "curves": {n: [s10, l10] for n in names}})
    pts = w.root.locator(".lpw-curve")
    assert pts.evaluate_all("cs => cs.map(c => +c.dataset.points)") == [10, 10]

    # New points only; an overlap with the snapshot is skipped, not duplicated.
    s5, l5 = _curve(5, start=8)
    w.kernel_send({"type": "points", "points": {"a": [8, s5, l5]}})
    assert pts.evaluate_all("cs => cs.map(c => +c.dataset.points)") == [13, 10]
    # A gap (points this view never saw) triggers one resync request.
    s2, l2 = _curve(2, start=30)
    w.kernel_send({"type": "points", "points": {"b<script>": [30, s2, l2]}})
    assert w.sent() == [{"type": "resync"}, {"type": "resync"}]
    assert pts.evaluate_all("cs => cs.map(c => +c.dataset.points)") == [13, 10]

    # Best step, warm-up, patience window (best_step .. best_step + patience * eval_every).
    meta = _meta(names, state="training", best_step=20, best_val_loss=l10[9])
    w.kernel_set("meta", meta)
    card = cards.first
    assert card.locator(".lpw-best").is_visible()
    assert card.locator(".lpw-best title").text_content() == f"best: {l10[9]:.3g} at step 20"
    warm = float(card.locator(".lpw-warmup").get_attribute("width"))
    patience = float(card.locator(".lpw-patience").get_attribute("width"))
    best_x = float(card.locator(".lpw-best").get_attribute("cx"))
    pat_x = float(card.locator(".lpw-patience").get_attribute("x"))
    assert warm > 0 and patience > 0 and abs(pat_x - best_x) < 0.2
    assert abs(patience - warm) < 0.5  # 10 steps each (5 evaluations x every 2 steps)
    assert not card.locator(".lpw-stop-label").is_visible()

    # Stopped early: the stop point is annotated with the reason.
    meta = _meta(names, state="early-stopped", best_step=20, best_val_loss=l10[9],
                 stop_step=30, stop_reason="no validation improvement for 5 evaluations")
    w.kernel_set("meta", meta)
    w.kernel_set("running", False)
    label = card.locator(".lpw-stop-label")
    assert label.is_visible() and label.text_content() == "early stop @ 30"
    assert "no validation improvement" in card.locator(".lpw-monitor-reason").inner_text()
    assert card.get_attribute("data-state") == "early-stopped"

    # The end of a fit stores full curves in the trait: a fresh view draws them all.
    w2 = widget_page.mount("monitor", {"meta": meta, "curves": {"a": [s10, l10]},
                                       "running": False})
    assert w2.sent() == []
    assert w2.root.locator(".lpw-curve").first.get_attribute("data-points") == "10"
    assert w.unmount() == 0 and w2.unmount() == 0


def test_reduced_snapshot_then_live_points_stay_aligned(widget_page):
    """A long curve arrives reduced ([steps, losses, n]); appends continue from n."""
    w = widget_page.mount("monitor", {"meta": _meta(["a"], state="training"), "curves": {},
                                      "running": False})
    steps, losses = _curve(50)
    w.kernel_send({"type": "snapshot", "curves": {"a": [steps, losses, 5000]}})
    s3, l3 = _curve(3, start=5000)
    w.kernel_send({"type": "points", "points": {"a": [5000, s3, l3]}})
    assert w.sent() == []  # no gap seen: no resync
    assert w.root.locator(".lpw-curve").get_attribute("data-points") == "53"
    w.kernel_send({"type": "points", "points": {"a": [5001, s3[1:], l3[1:]]}})  # overlap
    assert w.root.locator(".lpw-curve").get_attribute("data-points") == "53"


def test_stop_button_sets_the_trait_once(widget_page):
    w = widget_page.mount("monitor", {"meta": _meta(["a"]), "curves": {}, "running": False,
                                      "stop_requested": False, "stop_supported": True})
    stop = w.root.locator("button.lpw-stop")
    assert stop.is_disabled()  # nothing to stop yet
    w.kernel_set("running", True)
    assert stop.is_enabled() and stop.inner_text() == "Stop"
    stop.click()
    assert w.get("stop_requested") is True
    assert w.sets() == [["stop_requested", True]] and w.saves() == 1
    assert stop.is_disabled() and stop.inner_text() == "Stopping…"
    stop.click(force=True)  # a second click does nothing
    assert w.saves() == 1
    w.kernel_set("running", False)
    assert stop.inner_text() == "Stopped"


def test_stop_unsupported_explains_why(widget_page):
    hint = "the Stop button needs ipykernel >= 7 while a cell runs"
    w = widget_page.mount("monitor", {"meta": _meta(["a"]), "curves": {}, "running": True,
                                      "stop_supported": False, "stop_hint": hint})
    assert w.root.locator("button.lpw-stop").is_disabled()
    assert w.root.locator(".lpw-monitor-note").inner_text() == hint


def test_dozens_of_probes_hundreds_of_points_stay_fast(widget_page):
    names = [f"model.layers.{i}.mlp.output" for i in range(40)]
    w = widget_page.mount("monitor", {"meta": _meta(names, state="training", best_step=100),
                                      "curves": {}, "running": False})
    steps, losses = _curve(600)
    snap = _clean({n: [steps, losses] for n in names})
    page = widget_page.page
    ms = page.evaluate(
        """([snap]) => { const m = window.lpw.model(); const t = performance.now();
        m.kernelSend({type: "snapshot", curves: snap}); return performance.now() - t; }""",
        [snap],
    )
    assert ms < 400, f"snapshot of 40 x 600 points took {ms:.0f} ms"
    # Then 10 Hz updates: each adds 3 points to every probe.
    per_update = page.evaluate(
        """([names]) => { const m = window.lpw.model(); const t = performance.now();
        for (let k = 0; k < 20; k++) {
          const pts = {};
          for (const n of names) {
            const s0 = 600 + 3 * k;
            pts[n] = [s0, [1, 2, 3].map(i => 2 * (s0 + i)), [0.3, 0.31, 0.29]];
          }
          m.kernelSend({type: "points", points: pts});
        }
        return (performance.now() - t) / 20; }""",
        [names],
    )
    assert per_update < 50, f"an update of 40 curves took {per_update:.1f} ms"
    counts = w.root.locator(".lpw-curve").evaluate_all("cs => cs.map(c => +c.dataset.points)")
    assert counts == [660] * 40
    # More points than pixels are reduced to min/max per pixel column.
    d = w.root.locator(".lpw-curve").first.get_attribute("d")
    assert d.count("L") + 1 <= 2 * 300
