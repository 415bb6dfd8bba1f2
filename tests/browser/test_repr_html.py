"""The static HTML repr in real headless chromium (Debian's, via playwright).

The runner's HTML goes into a page whose <body> carries JupyterLab's / VS Code's
theme attributes; the assertions read the DOM and computed styles (no pixel
comparisons) and screenshots land in test-artifacts/ for people to look at. A tiny
notebook is also executed with nbclient, exported with nbconvert's HTMLExporter and
opened in the browser with the network blocked.

Launch settings (Debian chromium, --no-sandbox ...) come from this folder's conftest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from patience import PATIENCE_S

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_CLASS = "<img src=y onerror=alert(2)>"

pytestmark = pytest.mark.browser

FIT_SOURCE = f"""
import random
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.io.tiny import tiny_model

EVIL_NAME = {EVIL_NAME!r}
EVIL_CLASS = {EVIL_CLASS!r}
model, tok = tiny_model("gpt2")
rng = random.Random(0)
texts, labels = [], []
for i in range(48):
    pos = i % 2 == 0
    words = ["good", "great", "fine"] if pos else ["bad", "awful", "poor"]
    texts.append(" ".join(rng.choice(words) for _ in range(5)))
    labels.append("pos" if pos else EVIL_CLASS)
ds = ProbeDataset.from_texts(texts, labels, tok, max_length=12)
train, test = ds.tt_split(test_size=0.25, seed=0)
classes = sorted({{"pos", EVIL_CLASS}})
runner = ProbeRunner(model, [
    ProbeConfig("transformer.h.0.output", classes=classes, name=EVIL_NAME),
    ProbeConfig("transformer.h.1.output", classes=classes),
    ProbeConfig("transformer.h.2.output", classes=classes, threshold=0.2, patience=2,
                warmup_steps=2),
])
_ = runner.fit_probes(train, test, num_epoch=2, batch_size=8, progress=None)
"""


@pytest.fixture(scope="module")
def runner() -> Any:
    scope: dict[str, Any] = {}
    exec(compile(FIT_SOURCE, "<fit>", "exec"), scope)  # the notebook's code, run here too
    return scope["runner"]


def _page_html(fragment: str, body_attrs: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'></head>"
        f"<body {body_attrs} style='margin:16px'>{fragment}</body></html>"
    )


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"repr_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _guard(page: Any) -> list[str]:
    """Collect dialogs (an alert() would mean the injection ran), page errors, and any
    request leaving the page (the repr must need no network)."""
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}"))
    page.route(
        re.compile(r"^(?!data:|about:).*"),
        lambda route: (seen.append(f"request: {route.request.url}"), route.abort()),
    )
    return seen


THEME_PROBE = """(root) => {
  const body = root.querySelector('.lpw-body');
  const best = root.querySelector('td.lpw-best');
  const cs = getComputedStyle(body);
  return {color: cs.color, bg: cs.backgroundColor, display: cs.display,
          best: best ? getComputedStyle(best).backgroundColor : null,
          fallback: getComputedStyle(root.querySelector('.lpw-fallback')).display};
}"""


def test_rendered_light_and_dark(page: Any, runner: Any) -> None:
    seen = _guard(page)
    fragment = runner._repr_html_()
    themes = {
        "jupyterlab_light": 'data-jp-theme-light="true"',
        "jupyterlab_dark": 'data-jp-theme-light="false"',
        "vscode_dark": 'data-vscode-theme-kind="vscode-dark"',
    }
    styles = {}
    for name, attrs in themes.items():
        page.set_content(_page_html(fragment, attrs))
        root = page.locator("div.lpw-repr")
        assert root.count() == 1
        styles[name] = root.evaluate(THEME_PROBE)
        # styled view shown, text fallback hidden
        assert styles[name]["fallback"] == "none" and styles[name]["display"] == "block"
        assert page.locator(".lpw-body").is_visible()
        assert not page.locator(".lpw-fallback").is_visible()
        # the injection attempts are text: no <img> was created, no alert fired
        assert page.locator("img").count() == 0
        names = page.locator("td.lpw-name").all_inner_texts()
        assert EVIL_NAME in names
        chips = page.locator(".lpw-probes .lpw-chip").all_inner_texts()
        assert EVIL_CLASS in chips
        # one sparkline per probe, drawn (non-zero size)
        sparks = page.locator("svg.lpw-spark")
        assert sparks.count() == 3
        box = sparks.first.bounding_box()
        assert box is not None and box["width"] > 50
        # the early-stopped probe says so, in words
        row = page.locator('.lpw-probes tr[data-probe="transformer.h.2.output"]')
        assert "stopped early at step" in row.inner_text()
        _shot(page, name)
    light, dark = styles["jupyterlab_light"], styles["jupyterlab_dark"]
    assert light["color"] != dark["color"] and light["bg"] != dark["bg"]
    assert light["best"] != dark["best"]
    assert styles["vscode_dark"]["bg"] == dark["bg"]
    assert seen == []


def test_prefers_color_scheme_and_attribute_precedence(page: Any, runner: Any) -> None:
    seen = _guard(page)
    fragment = runner._repr_html_()
    page.emulate_media(color_scheme="light")
    page.set_content(_page_html(fragment))
    plain_light = page.locator("div.lpw-repr").evaluate(THEME_PROBE)
    page.emulate_media(color_scheme="dark")
    page.set_content(_page_html(fragment))
    plain_dark = page.locator("div.lpw-repr").evaluate(THEME_PROBE)
    assert plain_light["bg"] != plain_dark["bg"]
    _shot(page, "prefers_dark")
    # JupyterLab's own light theme wins over a dark OS preference
    page.set_content(_page_html(fragment, 'data-jp-theme-light="true"'))
    assert page.locator("div.lpw-repr").evaluate(THEME_PROBE)["bg"] == plain_light["bg"]
    assert seen == []


@pytest.mark.parametrize("sanitizer", ["github", "jupyterlab"])
def test_untrusted_shows_text_fallback(page: Any, runner: Any, sanitizer: str) -> None:
    """Untrusted notebooks and GitHub drop <style>: the <pre> fallback must show and
    the styled block stay hidden. GitHub also drops `style` attributes; JupyterLab's
    sanitizer drops the `hidden` attribute (seen in JupyterLab 4.6)."""
    seen = _guard(page)
    fragment = re.sub(r"<style>.*?</style>", "", runner._repr_html_(), flags=re.S)
    if sanitizer == "github":
        fragment = re.sub(r' style="[^"]*"', "", fragment)
    else:
        fragment = re.sub(r" hidden(?=[ >])", "", fragment)
    page.set_content(_page_html(fragment))
    assert page.locator(".lpw-fallback pre").is_visible()
    assert not page.locator(".lpw-body").is_visible()
    text = page.locator(".lpw-fallback pre").inner_text()
    assert text.startswith("ProbeRunner: GPT2LMHeadModel, 3 probe(s)")
    assert EVIL_NAME in text and page.locator("img").count() == 0
    _shot(page, f"untrusted_{sanitizer}")
    assert seen == []


def test_details_expand_and_probe_repr(page: Any, runner: Any) -> None:
    seen = _guard(page)
    page.set_content(_page_html(runner._repr_html_(), 'data-jp-theme-light="true"'))
    table = page.locator("details.lpw-details table.lpw-configs")
    assert not table.is_visible()
    page.locator("details.lpw-details summary", has_text="Configurations").click()
    assert table.is_visible()
    assert "transformer.h.2.output" in table.inner_text()
    page.set_content(_page_html(runner[EVIL_NAME]._repr_html_(), 'data-jp-theme-light="false"'))
    assert page.locator(".lpw-body .lpw-name").inner_text() == EVIL_NAME
    assert page.locator("table.lpw-weights tr").count() == 9  # header + top 8 dims
    assert page.locator("img").count() == 0
    _shot(page, "probe_dark")
    assert seen == []


def test_nbconvert_export_renders(page: Any) -> None:
    """Execute a notebook that fits and displays a runner, export it to HTML with
    nbconvert, and open the export in the browser (network blocked)."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(FIT_SOURCE),
        nbformat.v4.new_code_cell("runner"),
        nbformat.v4.new_code_cell("runner[EVIL_NAME]"),
    ]
    NotebookClient(
        nb, timeout=PATIENCE_S, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [c.outputs for c in nb.cells[1:]]
    for out in outputs:
        (res,) = [o for o in out if o.output_type == "execute_result"]
        assert {"text/plain", "text/html"} <= set(res.data)
    assert outputs[0][0].data["text/plain"].startswith("ProbeRunner: GPT2LMHeadModel")
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert body.count('class="lpw lpw-repr"') == 2
    assert EVIL_NAME not in body and EVIL_CLASS not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "repr_nbconvert.html").write_text(body, encoding="utf-8")

    seen = _guard(page)
    page.set_content(body, wait_until="domcontentloaded")
    roots = page.locator("div.lpw-repr")
    assert roots.count() == 2
    assert page.locator("div.lpw-repr .lpw-body").first.is_visible()
    assert not page.locator("div.lpw-repr .lpw-fallback").first.is_visible()
    assert page.locator("div.lpw-repr img").count() == 0
    assert EVIL_NAME in page.locator("div.lpw-repr td.lpw-name").all_inner_texts()
    _shot(page, "nbconvert")
    assert [s for s in seen if not s.startswith("request:")] == []
