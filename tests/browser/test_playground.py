"""The probe playground's ESM in real chromium: debounced typing, the strip and the token
heatmap drawn from a result, light and dark, and the static snapshot."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from lm_probe_widgets.widgets.playground import ProbePlayground
from lm_probe_widgets.widgets.playground_view import (
    HEAT_LEGEND,
    TOKEN_NOTE,
    attention_heat,
    margins,
    paint,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # git-ignored
ARTIFACTS_NAME = "playground"
EVIL = "<img src=x onerror=window.__pwned=1>"


def probe_entry(name, layer, classes, proba, logits, pooling="mean"):
    import numpy as np

    z = np.asarray(logits, dtype=float)
    m = margins(z)
    top = int(np.argmax(proba))
    return paint(
        {
            "name": name,
            "submodule": f"model.layers.{layer}.output",
            "layer": layer,
            "pooling": pooling,
            "classes": classes,
            "proba": proba,
            "top": top,
            "token_logits": z.tolist(),
            "token_margin": m.tolist(),
            "scale": np.abs(m).max(0).tolist(),
            "note": "",
        }
    )


def a_result(text="the film was <b>great</b>"):
    tokens = [
        {"id": 1, "text": "the", "raw": "the"},
        {"id": 2, "text": " film", "raw": "Ġfilm"},
        {"id": 3, "text": " was", "raw": "Ġwas"},
        {"id": 4, "text": " <b>", "raw": "Ġ<b>"},
        {"id": 5, "text": "great", "raw": "great"},
        {"id": 6, "text": "</b>", "raw": "</b>"},
    ]
    two = ["negative", EVIL]
    three = ["neg", "neutral", "pos"]
    probes = [
        probe_entry(
            "L0", 0, two, [0.8, 0.2], [[0.1, -0.1], [0.3, 0.0], [0, 0], [1, 0], [0, 2], [0.2, 0]]
        ),
        probe_entry(
            "L1", 1, two, [0.45, 0.55], [[0, 0.1], [0, -1], [0, 0.2], [0, 0], [0, 3], [0, 0.1]]
        ),
        probe_entry(
            "L2",
            2,
            three,
            [0.1, 0.2, 0.7],
            [[0, 0, 0], [1, 0, -1], [0, 0.5, 0], [0, 0, 0.4], [-2, 0, 2.5], [0, 0, 0]],
        ),
    ]
    return {
        "text": text,
        "tokens": tokens,
        "probes": probes,
        "skipped": ["L3"],
        "heat_legend": HEAT_LEGEND,
    }


def state(**over):
    base = {
        "text": "",
        "result": {},
        "error": "",
        "probe": "",
        "target": "",
        "debounce_ms": 300,
        "note": TOKEN_NOTE,
    }
    return {**base, **over}


def text_sets(w):
    return [v for k, v in w.sets() if k == "text"]


def test_typing_is_debounced_into_one_text_update(widget_page):
    # the page's timers run on a fake clock, paused once the view is up (installed, it
    # still follows real time): however slow the machine types, no pause between two
    # keys outlasts the debounce, and time moves only when told to
    clock = widget_page.page.clock
    clock.install(time=0)
    w = widget_page.mount("playground", state())
    clock.pause_at(3_600_000)  # past the mount's own timers (js/shared.js: up to 2 s)
    box = w.root.locator("textarea.lpw-pg-input")
    box.click()
    widget_page.page.keyboard.type("the film was great")
    assert text_sets(w) == []  # still within the debounce
    clock.run_for(1000)  # typing stopped: one update, then nothing more
    assert text_sets(w) == ["the film was great"]
    assert w.saves() == 1
    # the view says it waits for Python until a result for this text arrives
    assert w.root.locator(".lpw-pg-status").inner_text() == "updating…"
    w.kernel_set("result", a_result("the film was great"))
    assert w.root.locator(".lpw-pg-status").inner_text() == "3 probes"
    assert w.root.locator(".lpw-pg-cell").count() == 3
    # more typing, then focus leaves: the pending text goes at once, then a commit
    box.press("End")
    widget_page.page.keyboard.type("!", delay=10)
    box.evaluate("el => el.blur()")
    assert text_sets(w) == ["the film was great", "the film was great!"]
    assert w.sent()[-1] == {"type": "commit"}
    assert w.unmount() == 0


def test_strip_and_heatmap_draw_the_result(widget_page):
    result = a_result()
    w = widget_page.mount("playground", state(text=result["text"], result=result, probe="L0"))
    cells = w.root.locator(".lpw-pg-cell")
    assert cells.count() == 3
    assert [c.get_attribute("data-probe") for c in cells.all()] == ["L0", "L1", "L2"]
    assert cells.nth(0).locator(".lpw-pg-class").inner_text() == "negative"
    assert cells.nth(0).locator(".lpw-pg-prob").inner_text() == "0.800"
    assert cells.nth(1).locator(".lpw-pg-class").inner_text() == EVIL  # a label, as text
    assert cells.nth(2).locator(".lpw-pg-bar").count() == 3
    assert "neutral: 0.200" in cells.nth(2).get_attribute("title")
    assert w.root.locator("img").count() == 0
    assert widget_page.page.evaluate("window.__pwned") is None
    # intensity follows the probability of the predicted class
    alpha = cells.evaluate_all("cs => cs.map(c => getComputedStyle(c).backgroundColor)")
    assert len(set(alpha)) == 3
    assert "not fitted" in w.root.locator(".lpw-pg-skipped").inner_text()
    assert w.root.locator(".lpw-pg-truncated").is_hidden()
    assert w.root.locator(".lpw-pg-input").input_value() == result["text"]

    toks = w.root.locator(".lpw-pg-token")
    assert toks.all_text_contents() == [t["text"] for t in result["tokens"]]
    assert w.root.locator(".lpw-pg-tokens").get_attribute("data-probe") == "L0"
    assert w.root.locator(".lpw-pg-tokens").get_attribute("data-class") == EVIL  # last class
    scores = [float(s) for s in toks.evaluate_all("ts => ts.map(t => t.dataset.score)")]
    assert scores == [row[1] for row in result["probes"][0]["token_margin"]]
    bg = toks.evaluate_all("ts => ts.map(t => getComputedStyle(t).backgroundColor)")
    assert bg[2] == "rgba(0, 0, 0, 0)"  # score 0: no colour
    assert bg[4] != bg[3] and bg[4] != bg[2]  # + and - on either side of 0
    assert "applied to each token" in w.root.locator(".lpw-pg-note").inner_text()

    # choose another probe and class: synced back, the heatmap redraws
    w.root.locator("select.lpw-pg-probe").select_option("L2")
    assert w.get("probe") == "L2"
    assert w.root.locator("select.lpw-pg-class option").all_text_contents() == [
        "neg",
        "neutral",
        "pos",
    ]
    assert w.root.locator("select.lpw-pg-class").input_value() == "pos"
    w.root.locator("select.lpw-pg-class").select_option("neg")
    assert w.get("target") == "neg"
    scores = [float(s) for s in toks.evaluate_all("ts => ts.map(t => t.dataset.score)")]
    assert scores == [row[0] for row in result["probes"][2]["token_margin"]]
    cells.nth(1).click()  # a strip cell chooses its probe too
    assert w.get("probe") == "L1"
    cells.nth(0).focus()
    cells.nth(0).press("Enter")  # and from the keyboard
    assert w.get("probe") == "L0"
    cells.nth(1).click()
    assert w.root.locator(".lpw-pg-cell.lpw-pg-chosen").get_attribute("data-probe") == "L1"
    assert w.unmount() == 0


def test_kernel_updates_and_errors(widget_page):
    w = widget_page.mount("playground", state(text="start"))
    assert w.root.locator(".lpw-pg-error").is_hidden()
    w.kernel_set("error", "ValueError: no fitted probes: run runner.fit_probes(...) first")
    err = w.root.locator(".lpw-pg-error")
    assert err.is_visible() and "no fitted probes" in err.inner_text()
    w.kernel_set("error", "")
    w.kernel_set("text", "set in Python")
    assert w.root.locator(".lpw-pg-input").input_value() == "set in Python"
    w.kernel_set("result", a_result("set in Python"))
    assert w.root.locator(".lpw-pg-cell").count() == 3
    w.kernel_set("result", {**a_result("set in Python"), "truncated": True})
    assert w.root.locator(".lpw-pg-truncated").inner_text() == "Only the first 6 tokens are read."
    w.kernel_set("result", {"text": "", "tokens": [], "probes": [], "skipped": []})
    assert w.root.locator(".lpw-pg-cell").count() == 0
    assert w.root.locator(".lpw-pg-token").count() == 0
    assert w.unmount() == 0


def test_light_and_dark_screenshots(widget_page):
    result = a_result()
    ARTIFACTS.mkdir(exist_ok=True)
    w = widget_page.mount("playground", state(text=result["text"], result=result, probe="L2"))
    colours = {}
    for theme in ("light", "dark"):
        widget_page.set_theme(theme)
        colours[theme] = w.root.locator(".lpw-playground").evaluate(
            "el => getComputedStyle(el).color"
        )
        w.root.screenshot(path=str(ARTIFACTS / f"{ARTIFACTS_NAME}_{theme}.png"))
    assert colours["light"] != colours["dark"]
    assert colours["dark"] == "rgb(238, 238, 238)"
    widget_page.assert_no_errors()


def test_static_snapshot_renders_in_chromium(widget_page):
    runner = SimpleNamespace(configs=[], probes={}, model=None)
    pg = ProbePlayground(runner)
    assert "no fitted probes" in pg.error
    pg.error = ""
    pg.result = a_result()
    pg.probe = "L1"
    page = widget_page.page
    page.evaluate(
        "(html) => { const d = document.createElement('div'); d.id = 'snap';"
        " d.innerHTML = html; document.body.appendChild(d); }",
        pg.snapshot_html(),
    )
    snap = page.locator("#snap .lpw-body")
    assert snap.is_visible()
    assert snap.locator(".lpw-snap-pg-cell").count() == 3
    assert snap.locator(".lpw-snap-pg-token").all_text_contents() == [
        t["text"] for t in pg.result["tokens"]
    ]
    assert snap.locator("img").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    for theme in ("light", "dark"):
        widget_page.set_theme(theme)
        page.evaluate(
            "(t) => { document.body.dataset.jpThemeLight = String(t === 'light'); }", theme
        )
        snap.screenshot(path=str(ARTIFACTS / f"{ARTIFACTS_NAME}_snapshot_{theme}.png"))
    assert page.evaluate("window.__pwned") is None


def test_the_live_view_hides_its_static_copy_without_css_has(widget_page):
    """Where no stylesheet rule can hide the static copy (VS Code: no JupyterLab output
    classes), the live view hides the copies named in `copy_ids`, only those, and shows
    them again when it goes."""
    copies = widget_page.page.evaluate(
        """() => {
          for (const id of ["mine", "other"]) {
            const d = document.createElement("div");
            d.className = "lpw-static-copy";
            d.dataset.lpwCopy = id;
            d.textContent = "Static copy";
            document.body.appendChild(d);
          }
          return document.querySelectorAll(".lpw-static-copy").length;
        }"""
    )
    assert copies == 2
    visible = "id => getComputedStyle(document.querySelector(`[data-lpw-copy=${id}]`)).display"
    w = widget_page.mount("playground", state(copy_ids=["mine"]))
    widget_page.page.wait_for_function(f"({visible})('mine') === 'none'")
    assert widget_page.page.evaluate(visible, "other") != "none"
    w.unmount()
    assert widget_page.page.evaluate(visible, "mine") != "none"
    widget_page.assert_no_errors()


def test_regression_and_attention_probes_draw_their_token_values(widget_page):
    """A regression entry: the cell shows the predicted value (no class, no bars), the
    legend runs from mean - 2 sd to mean + 2 sd, each token's tip its prediction. An
    attention entry: tokens coloured by its weight (the mean over heads), none at 0,
    full at the largest, the legend saying "attention weight", each head's on hover."""
    result = a_result()
    result["probes"].append(
        paint(
            {
                "name": "a very long regression probe name that the cell cuts off",
                "submodule": "model.layers.3.output",
                "layer": 3,
                "pooling": "mean",
                "task": "regression",
                "classes": ["value"],
                "proba": [],
                "top": 0,
                "value": 7.25,
                "center": 8.0,
                "token_logits": [[v] for v in (8.0, 9.0, 7.0, 8.5, 6.0, 8.0)],
                "token_margin": [[v] for v in (0.0, 1.0, -1.0, 0.5, -2.0, 0.0)],
                "scale": [2.0],
                "note": "",
            }
        )
    )
    name = result["probes"][-1]["name"]
    w = widget_page.mount("playground", state(text=result["text"], result=result, probe=name))
    cell = w.root.locator(f'.lpw-pg-cell[data-probe="{name}"]')
    assert cell.get_attribute("data-task") == "regression"
    assert cell.locator(".lpw-pg-prob").inner_text() == "7.250"
    assert cell.locator(".lpw-pg-bar").count() == 0
    assert cell.get_attribute("title").startswith(name)  # the full name on hover
    legend = w.root.locator(".lpw-pg-legend").inner_text().split()
    assert legend[:2] == ["6", "10"] and " ".join(legend[2:]) == "predicted value"
    tip = w.root.locator('.lpw-pg-token[data-index="1"]').get_attribute("title")
    assert tip.endswith("predicted 9")

    weights = [[0.0, 0.1], [0.1, 0.1], [0.0, 0.0], [0.2, 0.1], [0.7, 0.6], [0.0, 0.1]]
    heat = attention_heat(weights)
    entry = {**result["probes"][0], **heat, "name": "att", "layer": 4}
    w.kernel_set("result", {**result, "probes": [*result["probes"], paint(entry)]})
    w.root.locator("select.lpw-pg-probe").select_option("att")
    legend = w.root.locator(".lpw-pg-legend").inner_text().split()
    assert legend[:2] == ["0", "0.650"]
    assert " ".join(legend[2:]) == "attention weight (mean over 2 heads)"
    assert w.root.locator(".lpw-pg-label").nth(1).is_hidden()  # no class to choose
    toks = w.root.locator(".lpw-pg-token")
    scores = [float(s) for s in toks.evaluate_all("ts => ts.map(t => t.dataset.score)")]
    assert scores == heat["token_weight"]
    bg = toks.evaluate_all("ts => ts.map(t => getComputedStyle(t).backgroundColor)")
    assert bg[2] == "rgba(0, 0, 0, 0)" and len({bg[0], bg[1], bg[4]}) == 3  # 0, low, high
    tip = toks.nth(4).get_attribute("title")
    assert "attention weight 0.650" in tip and "per head: 0.700, 0.600" in tip
    assert w.root.locator(".lpw-pg-note").is_hidden()  # the token-score note is not its
    assert "scores the whole text" in w.root.locator(".lpw-pg-probenote").inner_text()
    widget_page.assert_no_errors()
