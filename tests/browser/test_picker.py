"""The submodule picker's ESM in real chromium, fed the state the Python class builds."""

from __future__ import annotations

import json

import pytest

from lm_probe_widgets.widgets import SubmodulePicker

KEYS = ("tree", "groups", "selected", "height")


def state_of(picker: SubmodulePicker) -> dict:
    state = picker.get_state()
    return json.loads(json.dumps({k: state[k] for k in KEYS}, allow_nan=False))


@pytest.fixture(scope="module")
def gpt2_state() -> dict:
    from lm_probe_widgets.core.io.tiny import tiny_model

    model, _ = tiny_model("gpt2")
    return state_of(SubmodulePicker(model))


def synthetic_tree(n_layers: int = 125) -> list[dict]:
    """A Llama-like tree of 2 + 16 * n_layers rows (2,002 for 125 layers)."""
    rows = [
        {"name": "model", "type": "Model"},
        {"name": "model.layers", "type": "ModuleList", "runs": False},
    ]
    for i in range(n_layers):
        b = f"model.layers.{i}"
        rows.append({"name": b, "type": "DecoderLayer", "shape": [1, 2, 64]})
        for sub in ("self_attn", "mlp"):
            rows.append({"name": f"{b}.{sub}", "type": sub.title(), "shape": [1, 2, 64]})
            for leaf in ("q", "k", "v", "o", "gate", "up"):
                rows.append(
                    {"name": f"{b}.{sub}.{leaf}_proj", "type": "Linear", "shape": [1, 2, 64]}
                )
        rows.append({"name": f"{b}.norm", "type": "RMSNorm", "shape": [1, 2, 64]})
    return rows


def row(w, name: str):
    return w.root.locator(f'.lpw-picker-row[data-name="{name}"]')


def test_click_and_shift_click_reach_model_state(widget_page, gpt2_state):
    w = widget_page.mount("picker", gpt2_state)
    row(w, "transformer.h.0").click()
    assert w.get("selected") == ["transformer.h.0.output"]
    assert w.saves() == 1
    row(w, "transformer.h.0.mlp").click(modifiers=["Shift"])
    tree_names = [r["name"] for r in gpt2_state["tree"]]
    lo, hi = tree_names.index("transformer.h.0"), tree_names.index("transformer.h.0.mlp")
    runs = {r["name"]: r["runs"] for r in gpt2_state["tree"]}
    expected = [n + ".output" for n in tree_names[lo : hi + 1] if runs[n] is not False]
    assert len(expected) >= 5
    assert w.get("selected") == expected
    assert row(w, "transformer.h.0.attn").get_attribute("aria-selected") == "true"
    # a plain click toggles one row off again
    row(w, "transformer.h.0.attn").click()
    assert "transformer.h.0.attn.output" not in w.get("selected")
    assert w.root.locator(".lpw-picker-status").inner_text().startswith(f"{len(expected) - 1} ")
    # a module that never runs (the ModuleList) cannot be selected
    row(w, "transformer.h").click()
    assert "transformer.h.output" not in w.get("selected")


def test_selection_from_kernel_and_chip_removal(widget_page, gpt2_state):
    w = widget_page.mount("picker", gpt2_state)
    w.kernel_set("selected", ["transformer.h.1.mlp.output", "transformer.h.2.output"])
    assert row(w, "transformer.h.1.mlp").get_attribute("aria-selected") == "true"
    chips = w.root.locator(".lpw-picker-chip")
    assert chips.count() == 2
    chips.first.locator("button").click()
    assert w.get("selected") == ["transformer.h.2.output"]


def test_all_layers_shortcut(widget_page, gpt2_state):
    w = widget_page.mount("picker", gpt2_state)
    w.root.locator(".lpw-picker-group-select").select_option(label="transformer.h.*.mlp (3)")
    w.root.locator(".lpw-picker-group-add").click()
    assert w.get("selected") == [f"transformer.h.{i}.mlp.output" for i in range(3)]
    w.root.locator(".lpw-picker-group-remove").click()
    assert w.get("selected") == []


def test_search_and_collapse(widget_page, gpt2_state):
    w = widget_page.mount("picker", gpt2_state)
    search = w.root.locator(".lpw-picker-search")
    search.fill("c_fc")
    names = w.root.locator(".lpw-picker-row").evaluate_all("rs => rs.map(r => r.dataset.name)")
    assert names == [f"transformer.h.{i}.mlp.c_fc" for i in range(3)]
    w.root.locator("button", has_text="Select matches").click()
    assert w.get("selected") == [f"transformer.h.{i}.mlp.c_fc.output" for i in range(3)]
    search.fill("no-such-module")
    assert w.root.locator(".lpw-picker-empty").is_visible()
    search.fill("")
    assert row(w, "transformer.h.1.mlp.c_fc").count() == 1
    row(w, "transformer.h.1").locator("[data-action=toggle]").click()
    assert row(w, "transformer.h.1.mlp").count() == 0
    assert row(w, "transformer.h.2").count() == 1
    row(w, "transformer.h.1").locator("[data-action=toggle]").click()
    assert row(w, "transformer.h.1.mlp").count() == 1


def test_two_thousand_rows_render_a_window(widget_page):
    picker = SubmodulePicker(tree=synthetic_tree())
    assert len(picker.tree) == 2002
    w = widget_page.mount("picker", state_of(picker))
    # virtualised: a small window of rows in the DOM, whatever the tree size
    w.root.locator(".lpw-picker-search").fill("")
    assert w.root.locator(".lpw-picker-row").count() < 120
    search = w.root.locator(".lpw-picker-search")
    for q in ("mlp.q_proj", "layers.1", "linear", ""):  # each search redraws a window only
        search.fill(q)
        assert w.root.locator(".lpw-picker-row").count() < 120
    w.root.locator(".lpw-picker-search").fill("mlp.q_proj")
    assert "125 matches" in w.root.locator(".lpw-picker-status").inner_text()
    # scrolling to the end renders the last rows
    w.root.locator(".lpw-picker-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    row(w, "model.layers.124.mlp.q_proj").wait_for()
    # select every layer's mlp in one go, then check the count
    w.root.locator(".lpw-picker-group-select").select_option(label="model.layers.*.mlp (125)")
    w.root.locator(".lpw-picker-group-add").click()
    assert len(w.get("selected")) == 125


def test_html_in_names_is_shown_as_text(widget_page):
    evil = "<img src=x onerror=window.__pwned=1>"
    picker = SubmodulePicker(
        tree=[{"name": "m", "type": evil}, {"name": f"m.{evil}", "type": "Linear"}]
    )
    w = widget_page.mount("picker", state_of(picker))
    assert w.root.locator("img").count() == 0
    assert evil in w.root.locator(".lpw-picker-row").first.inner_text()
    w.root.locator(".lpw-picker-row").nth(1).click()
    assert w.get("selected") == [f"m.{evil}.output"]
    assert w.root.locator(".lpw-picker-chip").inner_text().startswith("m.<img")
    assert widget_page.page.evaluate("window.__pwned") is None


def test_theme_variables_and_cleanup(widget_page, gpt2_state):
    w = widget_page.mount("picker", gpt2_state)
    colour = 'getComputedStyle(document.querySelector(".lpw-picker")).color'
    assert widget_page.page.evaluate(colour) == "rgb(17, 17, 17)"
    widget_page.set_theme("dark")
    assert widget_page.page.evaluate(colour) == "rgb(238, 238, 238)"
    assert w.unmount() == 0  # render()'s cleanup removed every listener


def test_keyboard_navigation(widget_page, gpt2_state):
    w = widget_page.mount("picker", gpt2_state)
    scroller = w.root.locator(".lpw-picker-scroll")
    scroller.focus()
    page = widget_page.page
    page.keyboard.press("ArrowDown")  # cursor on the first row: transformer
    page.keyboard.press("ArrowDown")  # transformer.wte
    page.keyboard.press("Space")
    assert w.get("selected") == ["transformer.wte.output"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # transformer.drop
    page.keyboard.press("Shift+Enter")  # range from the anchor (wte)
    assert w.get("selected") == [f"transformer.{n}.output" for n in ("wte", "wpe", "drop")]
    page.keyboard.press("Home")
    page.keyboard.press("ArrowLeft")  # collapse `transformer`: only the top level is left
    names = w.root.locator(".lpw-picker-row").evaluate_all("rs => rs.map(r => r.dataset.name)")
    assert names == ["transformer", "lm_head"]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("End")
    last = gpt2_state["tree"][-1]["name"]
    assert row(w, last).get_attribute("class").count("lpw-picker-cursor") == 1
