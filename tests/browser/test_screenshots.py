"""Every widget, live and as its static snapshot, in light and dark: screenshots for
people to look at (test-artifacts/widget_<name>_<theme>.png, not committed), and a check
that each renders without browser errors and keeps its text readable on the theme.

The states come from the Python side fed with a synthetic fit (fake clock): phases
including a baseline, four end states, curves with warm-up, patience window and kept
weights; a metrics frame shaped like `runner.metrics`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from test_table import runner_like_frame

from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.display.states import styles
from lm_probe_widgets.widgets import MetricsTable, SubmodulePicker
from lm_probe_widgets.widgets.monitor import MonitorState, _clean
from lm_probe_widgets.widgets.progress import ProgressState
from lm_probe_widgets.widgets.snapshot import dashboard_html, table_html

ROOT_NAMES = [
    "model.layers.0.output",
    "model.layers.7.output",
    "model.layers.14.output",
    "model.layers.21.output",
]
ENDS = {0: ("finished", 120), 1: ("early-stopped", 64), 2: ("stopped", 90), 3: ("error", 30)}


def synthetic_fit() -> tuple[ProgressState, MonitorState]:
    t = [0.0]
    progress, monitor = ProgressState(lambda: t[0]), MonitorState()

    def pub(kind: str, probe: str | None = None, /, **data: Any) -> None:
        e = ev.make_event(kind, probe, data)
        progress.handle(e)
        monitor.handle(e)

    configs = [
        {
            "name": n,
            "submodule": n,
            "warmup_steps": 10,
            "patience": 12,
            "eval_every": 2,
            "early_stopping": True,
            "max_steps": 10**6,
        }
        for n in ROOT_NAMES
    ]
    pub(
        ev.FIT_STARTED,
        probes=ROOT_NAMES,
        configs=configs,
        num_epoch=10,
        n_train=380,
        n_val=40,
        n_eval=100,
        max_steps=dict.fromkeys(ROOT_NAMES, 120),
    )
    pub(ev.BATCH, phase="extract-val", epoch=0, examples_done=40, examples_total=40)
    for step in range(1, 121):
        t[0] += 0.05
        pub(
            ev.BATCH,
            phase="extract-train" if step <= 12 else "train",
            epoch=1 + (step - 1) // 12,
            examples_done=min(380, 32 * ((step - 1) % 12 + 1)),
            examples_total=380,
        )
        for k, name in enumerate(ROOT_NAMES):
            state, end = ENDS[k]
            if step > end:
                continue
            loss = 0.3 + 0.4 * math.exp(-step / (25 + 10 * k)) + 0.002 * max(0, step - 50)
            pub(ev.STEP, name, step=step, epoch=1 + (step - 1) // 12, train_loss=loss)
            if step % 2 == 0:
                best = min(step, 52)
                pub(
                    ev.EVALUATED, name, step=step, val_loss=loss, best_val_loss=0.35, best_step=best
                )
            if step == end and state != "finished":
                if state == "error":
                    pub(ev.ERROR, name, message="FloatingPointError: overflow")
                else:
                    pub(ev.STOPPED, name, step=step, reason=state, kind=state, best_step=52)
                    pub(
                        ev.PROBE_FINISHED,
                        name,
                        state=state,
                        steps=step,
                        best_step=52,
                        reason="no validation improvement for 12 evaluations"
                        if state == "early-stopped"
                        else "stopped by user at step 90",
                    )
    pub(
        ev.PROBE_FINISHED,
        ROOT_NAMES[0],
        state="finished",
        steps=120,
        best_step=52,
        reason="completed 10 epoch(s)",
    )
    pub(ev.REFINED, ROOT_NAMES[0], val_loss=0.31, l2=0.01)
    pub(ev.REFINED, ROOT_NAMES[1], val_loss=0.33, l2=0.1)
    for i in (1, 2):
        t[0] += 0.5
        pub(ev.BATCH, phase="refine", epoch=10, examples_done=i, examples_total=2)
    for done in (50, 100):
        t[0] += 0.5
        pub(
            ev.BATCH,
            phase="baseline-random_init",
            detail="extract-eval",
            epoch=0,
            examples_done=done,
            examples_total=100,
        )
    pub(ev.FIT_FINISHED, reason="completed", seconds=0.0)
    return progress, monitor


def _lum(rgb: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_widget_live_and_static(widget_page: Any, theme: str) -> None:
    from conftest import ARTIFACTS

    from lm_probe_widgets.core.io.tiny import tiny_model

    ARTIFACTS.mkdir(exist_ok=True)
    widget_page.set_theme(theme)
    page = widget_page.page
    progress, monitor = synthetic_fit()
    model, _ = tiny_model("gpt2")
    picker = SubmodulePicker(model, selected=["transformer.h.0.output", "transformer.h.2.mlp"])
    table = MetricsTable(runner_like_frame())
    mounts = {
        "progress": (
            "progress",
            {
                "probes": progress.probe_list(),
                "phases": progress.phase_list(),
                "fit": dict(progress.fit),
                "title": "Probes",
                "styles": styles(),
            },
        ),
        "monitor": (
            "monitor",
            {
                "meta": _clean(monitor.meta_list()),
                "curves": _clean(monitor.curves()),
                "running": False,
                "outcome": "completed",
                "stop_supported": True,
                "styles": styles(),
            },
        ),
        "table": (
            "table",
            {
                k: table.get_state()[k]
                for k in ("columns", "rows", "sort", "title", "filename", "max_height", "show_all")
            },
        ),
        "picker": (
            "picker",
            {k: picker.get_state()[k] for k in ("tree", "groups", "selected", "height")},
        ),
    }
    for name, (module, state) in mounts.items():
        w = widget_page.mount(module, _clean(state))
        w.root.screenshot(path=str(ARTIFACTS / f"widget_{name}_{theme}.png"))
        colour = w.root.locator(".lpw").first.evaluate("e => getComputedStyle(e).color")
        assert (_lum(colour) < 0.4) if theme == "light" else (_lum(colour) > 0.6), name
    # the static snapshots, as a reopened notebook shows them
    attrs = 'data-jp-theme-light="true"' if theme == "light" else 'data-jp-theme-light="false"'
    bg = "#fff" if theme == "light" else "#111"
    for name, html in {
        "dashboard": dashboard_html(progress, monitor, "Probes"),
        "table": table_html(table),
        "picker": picker.snapshot_html(),
    }.items():
        page.set_content(
            f"<!doctype html><html><body {attrs} style='margin:12px;"
            f"background:{bg}'>{html}</body></html>"
        )
        body = page.locator(".lpw-body")
        assert body.is_visible(), name
        assert (_lum(body.evaluate("e => getComputedStyle(e).color")) < 0.4) == (
            theme == "light"
        ), name
        page.locator("div.lpw-repr").screenshot(
            path=str(ARTIFACTS / f"snapshot_{name}_{theme}.png")
        )
    widget_page.page.goto(widget_page.base_url + "/harness.html")  # errors stay checked
    widget_page.page.wait_for_function("window.lpwReady === true")
