"""monitor.js in headless chromium against the fake anywidget model: curves from
incremental points, resync on gaps, best/warm-up/patience/stop marks, the Stop
button, and drawing speed with dozens of probes and hundreds of points."""

from __future__ import annotations

import math

from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.display.states import styles
from lm_probe_widgets.widgets.monitor import MonitorState, _clean


def _monitor(names, *, patience=5, early_stopping=True, planned=400, warmup=10):
    s = MonitorState()
    s.handle(
        ev.make_event(
            ev.FIT_STARTED,
            None,
            {
                "probes": names,
                "configs": [
                    {
                        "name": n,
                        "warmup_steps": warmup,
                        "patience": patience,
                        "eval_every": 2,
                        "early_stopping": early_stopping,
                        "max_steps": 10**6,
                    }
                    for n in names
                ],
                "max_steps": dict.fromkeys(names, planned),
            },
        )
    )
    return s


def _meta(names, **kw):
    """Meta rows as Python sends them, with some facts overridden (chart facts kept)."""
    rows = _clean(_monitor(names).meta_list())
    for r in rows:
        r.update(kw)
    return rows


def _curve(n, start=0):
    steps = [2 * (i + 1) for i in range(start, start + n)]
    losses = [0.7 * math.exp(-s / 40) + 0.2 + 0.01 * math.sin(s) for s in steps]
    return steps, losses


def _evaluate(s, name, steps, losses, best_index=None):
    for i, (st, v) in enumerate(zip(steps, losses, strict=True)):
        b = best_index if best_index is not None and i >= best_index else i
        s.handle(
            ev.make_event(
                ev.EVALUATED,
                name,
                {
                    "step": st,
                    "val_loss": v,
                    "improved": b == i,
                    "best_val_loss": losses[b],
                    "best_step": steps[b],
                },
            )
        )


STATE = {
    "curves": {},
    "running": True,
    "stop_requested": False,
    "stop_supported": True,
    "stop_hint": "",
    "title": "",
    "outcome": "",
    "styles": styles(),
}


def test_points_snapshot_resync_and_marks(widget_page):
    names = ["a", "b<script>"]
    w = widget_page.mount("monitor", {**STATE, "meta": _meta(names, state="training")})
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
    s = _monitor(names)
    _evaluate(s, "a", s10, l10)
    w.kernel_set("meta", _clean(s.meta_list()))
    card = cards.first
    assert card.locator(".lpw-best").is_visible()
    assert card.locator(".lpw-best title").text_content() == f"best: {l10[9]:.3f} at step 20"
    warm = float(card.locator(".lpw-warmup").get_attribute("width"))
    patience = float(card.locator(".lpw-patience").get_attribute("width"))
    best_x = float(card.locator(".lpw-best").get_attribute("cx"))
    pat_x = float(card.locator(".lpw-patience").get_attribute("x"))
    assert warm > 0 and patience > 0 and abs(pat_x - best_x) < 0.2
    assert abs(patience - warm) < 0.5  # 10 steps each (5 evaluations x every 2 steps)
    assert not card.locator(".lpw-stop-label").is_visible()
    assert card.locator(".lpw-monitor-reason").inner_text() == f"val loss {l5[-1]:.3f} (latest)"

    # Stopped early, then the final fit: end state above the plot, kept weights' loss
    # drawn as the end point and as the card's one number.
    s.handle(
        ev.make_event(
            ev.STOPPED,
            "a",
            {
                "step": 30,
                "reason": "no validation improvement for 5 evaluations",
                "kind": "early_stopping",
                "best_step": 20,
            },
        )
    )
    s.handle(
        ev.make_event(
            ev.PROBE_FINISHED,
            "a",
            {"state": "early-stopped", "steps": 30, "reason": "no validation improvement"},
        )
    )
    s.handle(ev.make_event(ev.REFINED, "a", {"val_loss": 0.25, "l2": 0.01}))
    w.kernel_set("meta", _clean(s.meta_list()))
    w.kernel_set("running", False)
    label = card.locator(".lpw-stop-label")
    assert label.is_visible() and label.text_content() == "stopped early @ 30"
    box = label.evaluate("e => e.getBBox().y + e.getBBox().height")
    assert box <= 16.5, box  # inside the top margin: never over the curve
    assert "no validation improvement" in card.get_attribute("title")
    assert card.get_attribute("data-state") == "early-stopped"
    kept = card.locator(".lpw-kept")
    assert kept.is_visible() and "0.250" in kept.locator("title").text_content()
    assert card.locator(".lpw-monitor-reason").inner_text() == "CV loss (final fit) 0.250"
    legend = w.root.locator(".lpw-monitor-key:visible").all_inner_texts()
    assert [t.strip() for t in legend] == [
        "warm-up",
        "patience window",
        "best",
        "kept weights (end point)",
    ]

    # The end of a fit stores full curves in the trait: a fresh view draws them all.
    w2 = widget_page.mount(
        "monitor",
        {**STATE, "meta": _clean(s.meta_list()), "curves": {"a": [s10, l10]}, "running": False},
    )
    assert w2.sent() == []
    assert w2.root.locator(".lpw-curve").first.get_attribute("data-points") == "10"
    assert w.unmount() == 0 and w2.unmount() == 0


def test_axis_is_the_planned_run_from_the_first_update(widget_page):
    """400 planned steps: the first 10 points use a sliver of the axis; the patience
    window is drawn only when it can end the run, and only with early stopping on."""
    steps, losses = _curve(10)
    runs = {
        "planned": _monitor(["a"]),
        "long patience": _monitor(["a"], patience=300),
        "no early stopping": _monitor(["a"], early_stopping=False),
    }
    for s in runs.values():
        _evaluate(s, "a", steps, losses)
    for what, s in runs.items():
        w = widget_page.mount(
            "monitor", {**STATE, "meta": _clean(s.meta_list()), "curves": {"a": [steps, losses]}}
        )
        card = w.root.locator(".lpw-monitor-card")
        assert card.locator(".lpw-xmax").text_content() == "400", what
        d = card.locator(".lpw-curve").get_attribute("d")
        last_x = float(d.rsplit("L", 1)[1].split()[0])
        assert last_x < 44 + 0.06 * 248, (what, last_x)  # step 20 of 400
        window = card.locator(".lpw-patience")
        assert window.is_visible() == (what == "planned"), what
        key = w.root.locator('.lpw-monitor-key[data-key="window"]')
        assert key.is_visible() == (what == "planned"), what
    # a run that goes past its plan (resume) extends the axis, no further
    s = _monitor(["a"], planned=12)
    _evaluate(s, "a", steps, losses)
    w = widget_page.mount(
        "monitor", {**STATE, "meta": _clean(s.meta_list()), "curves": {"a": [steps, losses]}}
    )
    assert w.root.locator(".lpw-xmax").last.text_content() == "20"


def test_end_states_have_their_own_colours_and_words(widget_page):
    names = ["fin", "early", "user", "int", "err"]
    s = _monitor(names)
    steps, losses = _curve(10)
    for n in names:
        _evaluate(s, n, steps, losses)
    finishes = {
        "fin": "finished",
        "early": "early-stopped",
        "user": "stopped",
        "int": "interrupted",
        "err": "error",
    }
    for n, state in finishes.items():
        s.handle(
            ev.make_event(ev.PROBE_FINISHED, n, {"state": state, "steps": 20, "reason": state})
        )
    s.handle(ev.make_event(ev.FIT_FINISHED, None, {"reason": "completed"}))
    w = widget_page.mount(
        "monitor",
        {
            **STATE,
            "meta": _clean(s.meta_list()),
            "curves": {n: [steps, losses] for n in names},
            "running": False,
            "outcome": "completed",
            "stop_requested": True,
        },
    )
    cards = w.root.locator(".lpw-monitor-card")
    words = cards.locator(".lpw-monitor-state").all_inner_texts()
    assert words == ["finished", "stopped early", "stopped by you", "interrupted", "error"]
    colours = cards.locator(".lpw-stop-line").evaluate_all(
        "ls => ls.map(l => getComputedStyle(l).stroke)"
    )
    assert len(set(colours)) == 5, colours
    reds = [c for c in colours if c == "rgb(211, 47, 47)"]
    assert reds == [colours[4]]  # red only for the error
    labels = cards.locator(".lpw-stop-label").all_text_contents()
    assert labels[0] == "finished @ 20" and labels[2] == "stopped by you @ 20"
    # a Stop clicked after training had ended did not stop anything: no "Stopped"
    assert w.root.locator("button.lpw-stop").inner_text() == "Stop"


def test_reduced_snapshot_then_live_points_stay_aligned(widget_page):
    """A long curve arrives reduced ([steps, losses, n]); appends continue from n."""
    w = widget_page.mount(
        "monitor", {"meta": _meta(["a"], state="training"), "curves": {}, "running": False}
    )
    steps, losses = _curve(50)
    w.kernel_send({"type": "snapshot", "curves": {"a": [steps, losses, 5000]}})
    s3, l3 = _curve(3, start=5000)
    w.kernel_send({"type": "points", "points": {"a": [5000, s3, l3]}})
    assert w.sent() == []  # no gap seen: no resync
    assert w.root.locator(".lpw-curve").get_attribute("data-points") == "53"
    w.kernel_send({"type": "points", "points": {"a": [5001, s3[1:], l3[1:]]}})  # overlap
    assert w.root.locator(".lpw-curve").get_attribute("data-points") == "53"


def test_stop_button_sets_the_trait_once(widget_page):
    w = widget_page.mount(
        "monitor",
        {
            "meta": _meta(["a"]),
            "curves": {},
            "running": False,
            "stop_requested": False,
            "stop_supported": True,
        },
    )
    stop = w.root.locator("button.lpw-stop")
    assert stop.is_disabled()  # nothing to stop yet
    w.kernel_set("running", True)
    assert stop.is_enabled() and stop.inner_text() == "Stop"
    assert "test-set pass runs to its end" in stop.get_attribute("title")  # true in any phase
    stop.click()
    assert w.get("stop_requested") is True
    assert w.sets() == [["stop_requested", True]] and w.saves() == 1
    assert stop.is_disabled() and stop.inner_text() == "Stopping…"
    stop.click(force=True)  # a second click does nothing
    assert w.saves() == 1
    w.kernel_set("outcome", "stopped")
    w.kernel_set("running", False)
    assert stop.inner_text() == "Stopped"


def test_stop_unsupported_explains_why(widget_page):
    hint = "the Stop button needs ipykernel >= 7 while a cell runs"
    w = widget_page.mount(
        "monitor",
        {
            "meta": _meta(["a"]),
            "curves": {},
            "running": True,
            "stop_supported": False,
            "stop_hint": hint,
        },
    )
    assert w.root.locator("button.lpw-stop").is_disabled()
    assert w.root.locator(".lpw-monitor-note").inner_text() == hint


def test_dozens_of_probes_hundreds_of_points_stay_bounded(widget_page):
    names = [f"model.layers.{i}.mlp.output" for i in range(40)]
    w = widget_page.mount(
        "monitor",
        # the axes Python sends for these curves (MonitorState.chart): 1320 steps
        {
            "meta": _meta(names, state="training", best_step=100, x_max=1320, x_label="1320"),
            "curves": {},
            "running": False,
        },
    )
    steps, losses = _curve(600)
    snap = _clean({n: [steps, losses] for n in names})
    page = widget_page.page
    page.evaluate(
        """([snap]) => window.lpw.model().kernelSend({type: "snapshot", curves: snap})""",
        [snap],
    )
    # Then 10 Hz updates: each adds 3 points to every probe. (How fast is measured by a
    # benchmark, never by a test: the bound here is the work, points and path length.)
    page.evaluate(
        """([names]) => { const m = window.lpw.model();
        for (let k = 0; k < 20; k++) {
          const pts = {};
          for (const n of names) {
            const s0 = 600 + 3 * k;
            pts[n] = [s0, [1, 2, 3].map(i => 2 * (s0 + i)), [0.3, 0.31, 0.29]];
          }
          m.kernelSend({type: "points", points: pts});
        } }""",
        [names],
    )
    counts = w.root.locator(".lpw-curve").evaluate_all("cs => cs.map(c => +c.dataset.points)")
    assert counts == [660] * 40
    # More points than pixels are reduced to min/max per pixel column.
    d = w.root.locator(".lpw-curve").first.get_attribute("d")
    assert d.count("L") + 1 <= 2 * 300
