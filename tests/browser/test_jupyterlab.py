"""End to end in real JupyterLab: `%load_ext`, a fit (with control probes and
baselines) whose bars and curves reach their end state, and a longer fit that a click on
Stop ends early with its probes kept; then the notebook is saved and reopened with its
kernel gone, and a notebook executed elsewhere (nbclient) is opened too. The probe
playground is typed into, key by key, and must redraw for the typed text.

What it holds the displays to:

* the loss chart's x-axis is the planned run from the first update on;
* end states have their own colours (red only for errors, amber for a Stop);
* no "fit completed" (or "stopped") headline while the cell is still running;
* when the cell ends the dashboard becomes a static snapshot, so the saved and
  reopened notebook shows the final state and never "Error displaying widget".

The test starts `jupyter lab` itself (127.0.0.1, free port, token, temporary root with
notebooks written by nbformat) and drives headless Debian chromium. Screenshots of the
live and final displays in light and dark go to test-artifacts/ (and a full page on
failure); the server and its kernels are killed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from patience import PATIENCE_MS
from test_snapshots import execute as execute_with_nbclient

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
JUPYTER = Path(sys.executable).parent / "jupyter"
FINAL = {"early-stopped", "finished", "stopped"}
LONG_EPOCHS = 3000

SETUP = """\
import numpy as np
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.io.tiny import tiny_model

model, tok = tiny_model("gpt2")
rng = np.random.default_rng(0)
filler = ["the", "a", "movie", "film", "was", "is", "plot", "and"]
texts, labels = [], []
for i in range(240):
    words = list(rng.choice(filler, size=int(rng.integers(2, 10))))
    words.insert(int(rng.integers(0, len(words) + 1)), ["bad", "good"][i % 2])
    texts.append(" ".join(words)); labels.append(i % 2)
ds = ProbeDataset.from_texts(texts, labels, tok, max_length=24)
train, test = ds.tt_split(test_size=0.25, seed=0)
print("SETUP DONE")
"""

FIT_SHORT = """\
runner = ProbeRunner(model, [
    ProbeConfig("transformer.h.0.output", patience=2, warmup_steps=2),
    ProbeConfig("transformer.h.2.output", patience=2, warmup_steps=2, pooling="last"),
])
runner.fit_probes(train, test, num_epoch=5, batch_size=16,
                  control=True, baselines=("majority", "random_init"))
print("FIT1", runner.state)
"""

FIT_LONG = f"""\
long = ProbeRunner(model, [
    ProbeConfig("transformer.h.1.output", name="long-a", patience=10**6, max_steps=10**7),
    ProbeConfig("transformer.h.2.output", name="long-b", patience=10**6, max_steps=10**7),
])
long.fit_probes(train, test, num_epoch={LONG_EPOCHS}, batch_size=16)
"""

REPORT = f"""\
import json
LONG_EPOCHS = {LONG_EPOCHS}
m = long.metrics
print("RESULT " + json.dumps({{
    "state": long.state,
    "steps": [int(s) for s in m["steps"]],
    "planned": int(np.ceil(len(train) * 0.9 / 16)) * LONG_EPOCHS,
    "probes": sorted(long.probes),
    "accuracy_known": bool(m["accuracy"].notna().all()),
    "stop_reason": list(m["stop_reason"]),
}}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WIDGETS_SETUP = """\
%load_ext lm_probe_widgets
import pandas as pd
from lm_probe_widgets.core.io.tiny import tiny_model
from lm_probe_widgets.widgets import MetricsTable, SubmodulePicker

model, tok = tiny_model("gpt2")
"""
WIDGETS_PICKER = """\
picker = SubmodulePicker(model, selected=["transformer.h.0.output"])
picker
"""
WIDGETS_TABLE = """\
MetricsTable(pd.DataFrame({
    "probe": ["h0", "h2"], "accuracy": [0.71, 0.83], "test_loss": [0.61, 0.42], "n": [40, 90],
}), sort={"column": "accuracy", "descending": True})
"""
WIDGETS_NEXT = """\
print("NEXT", picker.selected)
"""


# The playground: a tiny runner fitted in seconds (two probes, no refinement), shown
# with a first sentence; the sentences are then typed in the browser, one per theme.
PLAYGROUND_FIT = """\
import json, warnings
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.io.tiny import tiny_model
from lm_probe_widgets.widgets import ProbePlayground

model, tok = tiny_model("gpt2")
pairs = [(f"{a} the {w} film {b}".strip(), y) for a in ("so", "a", "it was", "what")
         for b in ("", "and plot", "indeed") for w, y in
         (("good", "pos"), ("great", "pos"), ("bad", "neg"), ("awful", "neg"))]
ds = ProbeDataset.from_texts([t for t, _ in pairs], [y for _, y in pairs], tok, max_length=16)
train, test = ds.tt_split(test_size=0.25, seed=0)
fast = dict(max_steps=12, warmup_steps=1, refine=False, cv_folds=0, l2=(0.1,))
runner = ProbeRunner(model, [
    ProbeConfig("transformer.h.0", name="h0", **fast),
    ProbeConfig("transformer.h.2", name="h2", pooling="last", **fast),
], store=False)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    runner.fit_probes(train, test, num_epoch=1, batch_size=16, progress=None, bootstrap=0)
playground = ProbePlayground(runner, text="the film was good")
playground
"""
PLAYGROUND_TYPED = ("A dull plot, awful acting!", " But a <b>great</b> ending & cast")


def _playground_report() -> str:
    """The kernel's side after the typing: its text and result, and the tokenizer's own
    tokens for each typed sentence (to hold the browser's heatmap to)."""
    light, dark = PLAYGROUND_TYPED
    return f"""\
from lm_probe_widgets.display.columns import format_number
typed = [{light!r}, {light + dark!r}]
r = playground.result
print("PLAYGROUND " + json.dumps({{
    "text": playground.text,
    "result_text": r["text"],
    "error": playground.error,
    "tokens": [[tok.decode([i]) for i in tok(t)["input_ids"]] for t in typed],
    "strip": [[p["name"], p["classes"][p["top"]], format_number(p["proba"][p["top"]])]
              for p in r["probes"]],
}}))
"""


def _write_notebook(path: Path, cells: tuple[str, ...] | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in cells or ("%load_ext lm_probe_widgets", SETUP, FIT_SHORT, FIT_LONG, REPORT)
    ]
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A JupyterLab server on 127.0.0.1 serving a temp dir with `e2e.ipynb`."""
    if not JUPYTER.exists():
        pytest.skip(f"{JUPYTER} not found")
    root = tmp_path_factory.mktemp("lab")
    work = root / "work"
    work.mkdir()
    _write_notebook(work / "e2e.ipynb")
    _write_notebook(
        work / "widgets.ipynb", (WIDGETS_SETUP, WIDGETS_PICKER, WIDGETS_TABLE, WIDGETS_NEXT)
    )
    _write_notebook(work / "playground.ipynb", (PLAYGROUND_FIT, _playground_report()))
    # run elsewhere, saved without widget state: what a colleague hands you
    execute_with_nbclient(work / "elsewhere.ipynb", root)
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (no virtual scrolling), so locators find all outputs.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    docmanager = root / "settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)  # no "Select Kernel" dialog: start the notebook's kernel
    (docmanager / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True})
    )
    widgets = root / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
    widgets.mkdir(parents=True)  # JupyterLab's default, made explicit: no widget state saved
    (widgets / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": False}))
    apputils = root / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = _free_port(), "lpw-e2e-" + os.urandom(8).hex()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
        "PYTHONPATH": str(ROOT),
    }
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [
            str(JUPYTER),
            "lab",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port-retries=0",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            "--no-browser",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={work}",
            "--LabApp.news_url=",
            "--ServerApp.terminals_enabled=False",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(work),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PATIENCE_MS / 1000
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError(
                        "jupyter lab did not start:\n" + (root / "lab.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.3)
        yield {
            "url": f"{base}/lab/tree/e2e.ipynb?token={token}",
            "other": f"{base}/lab/tree/elsewhere.ipynb?token={token}",
            "widgets": f"{base}/lab/tree/widgets.ipynb?token={token}",
            "playground": f"{base}/lab/tree/playground.ipynb?token={token}",
            "api": base,
            "token": token,
            "log": root / "lab.log",
            "work": work,
        }
    finally:
        try:  # the server and the kernel it started share our new session
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def lab_page(page: Any, lab: dict[str, Any], request: pytest.FixtureRequest) -> Any:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(PATIENCE_MS)
    page.goto(lab["url"])
    yield page, errors
    rep = getattr(request.node, "_lpw_rep_call", None)
    if rep is None or rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-e2e.png"), full_page=True)
        except Exception:
            pass
        try:
            (ARTIFACTS / "jupyterlab-e2e.log").write_text(Path(lab["log"]).read_text())
        except OSError:
            pass


# The cells of the notebook on show: notebooks opened by earlier tests come back (the
# workspace is restored) in hidden tabs, and their cells must not answer for this one.
SHOWN_CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell"

UNSAVED_TAB = ".lm-TabBar-tab.jp-mod-current.jp-mod-dirty"  # the notebook on show, unsaved

# The notebook `name` is the one on show: its tab is current and its cells are drawn. The
# restored workspace may show another notebook first (for seconds on a loaded machine), so
# every wait checks which notebook it reads.
SHOWING = """(name) => {
  const tab = document.querySelector('.lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel');
  const panels = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden)');
  return !!tab && tab.textContent.trim() === name && panels.length === 1
    && !!panels[0].querySelector('.jp-Notebook .jp-CodeCell');
}"""


def _show(page: Any, name: str) -> None:
    """Wait until the notebook on show is `name` (after a goto or a reload)."""
    page.wait_for_function(SHOWING, arg=name)


def _cell(page: Any, i: int) -> Any:
    return page.locator(SHOWN_CELLS).nth(i)


def _states(cell: Any) -> list[str]:
    """End states of the probes in a cell's final snapshot."""
    return cell.locator(".lpw-snap-probes .lpw-snap-row").evaluate_all(
        "rows => rows.map(r => r.dataset.state)"
    )


# Watches every fit cell: when its headline first turns final ("fit completed", "fit
# stopped by you", ...) and when its prompt stops showing [*]. A final headline must
# not come before the cell has finished (beyond the time the frontend takes to show
# both messages of the same moment).
WATCH = """() => {
  window.__lpwFinal = {};
  const check = () => {
    const now = performance.now();
    const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-CodeCell');
    cells.forEach((cell, i) => {
      const prompt = cell.querySelector('.jp-InputArea-prompt');
      const busy = !!prompt && prompt.textContent.includes('*');
      const rec = window.__lpwFinal[i] || (window.__lpwFinal[i] = {});
      if (busy) rec.busy = now;
      const heads = cell.querySelectorAll('.lpw-progress-status, .lpw-snap-status');
      const final = [...heads].some(h => /^fit (completed|stopped|interrupted|failed)/
        .test(h.textContent || ''));
      if (final && rec.final === undefined) { rec.final = now; rec.busyAtFinal = busy; }
      if (rec.final !== undefined && !busy && rec.idle === undefined) rec.idle = now;
    });
  };
  new MutationObserver(check).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _colour_of(page: Any, css: str) -> str:
    """A CSS colour expression as the browser computes it (rgb(...))."""
    return page.evaluate(
        """(css) => { const e = document.createElement('span'); e.style.color = css;
        document.body.append(e); const c = getComputedStyle(e).color; e.remove(); return c; }""",
        css,
    )


def _shot(locator: Any, name: str) -> None:
    """An output area, whole: the page grows tall enough for it first."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = locator.page
    size = page.viewport_size
    height = int(locator.evaluate("e => e.getBoundingClientRect().height"))
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 300)})
    try:
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(ARTIFACTS / f"jupyterlab_{name}.png"))
    finally:
        page.set_viewport_size(size)


def _set_theme(lab: dict[str, Any], theme: str) -> None:
    """Choose JupyterLab's theme through the settings API (applies on the next load)."""
    body = json.dumps({"raw": json.dumps({"theme": f"JupyterLab {theme}"})}).encode()
    req = urllib.request.Request(
        f"{lab['api']}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=PATIENCE_MS / 1000).close()


def _wait_idle(page: Any) -> None:
    select = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
    try:  # only if the kernel setting did not take
        select.wait_for(timeout=3_000)
        select.click()
    except Exception:
        pass
    shown = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
    page.locator(f"{shown}[data-status='idle']").first.wait_for()


def test_fit_watch_and_stop_in_jupyterlab(lab_page: Any, lab: dict[str, Any]) -> None:
    page, errors = lab_page
    _show(page, "e2e.ipynb")
    # Wait for the kernel, then Run > Run All Cells (the REPORT cell queues behind the
    # long fit, so its execute_request also exercises the poller's hand-back path).
    _wait_idle(page)
    page.evaluate(WATCH)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

    # 1. The short fit (with control probes and baselines after training).
    short = _cell(page, 2)
    # Its final snapshot: end states in their colours, curves on the planned axis, kept
    # weights, a row per phase; the headline turned final only with the cell (see 4).
    short.locator(".lpw-snap-progress[data-fit-state='completed']").wait_for()
    short.get_by_text("FIT1 fitted").wait_for()
    states = _states(short)
    assert len(states) == 2 and set(states) <= FINAL, states
    phases = short.locator(".lpw-snap-phases .lpw-snap-row").evaluate_all(
        "rs => rs.map(r => r.dataset.phase)"
    )
    assert "control" in phases and "baseline-random_init" in phases, phases
    assert short.locator(".lpw-progress").count() == 0  # the live view made way
    curves = short.locator(".lpw-snap-card .lpw-snap-curve")
    assert curves.count() == 2
    assert min(curves.evaluate_all("cs => cs.map(c => +c.dataset.points)")) > 2
    detail = short.locator(".lpw-snap-probes .lpw-snap-detail").first.text_content()
    planned = detail.split(" · ")[0].split("/")[1]  # "step 12/55" -> the planned 55 steps
    assert short.locator(".lpw-snap-card .lpw-snap-xmax").first.text_content() == planned
    assert short.locator(".lpw-snap-card .lpw-snap-end-label").count() == 2
    assert short.locator(".lpw-snap-card .lpw-snap-kept").count() == 2
    error_red = _colour_of(page, "var(--jp-error-color1)")
    colours = short.locator(".lpw-snap-probes .lpw-snap-state").evaluate_all(
        "es => es.map(e => getComputedStyle(e).color)"
    )
    assert error_red not in colours, colours
    for state, colour in zip(states, colours, strict=True):
        expected = {"finished": "var(--jp-success-color1)", "early-stopped": "#0097a7"}[state]
        assert colour == _colour_of(page, expected), (state, colour)
    _shot(short.locator(".jp-OutputArea"), "short_final_light")

    # 2. The long fit: axis from the first update, then a click on Stop.
    long = _cell(page, 3)
    stop = long.locator("button.lpw-stop")
    stop.wait_for()
    long.locator(".lpw-progress[data-fit-state='running']").wait_for()
    card = long.locator(".lpw-monitor-card").first
    page.wait_for_function(
        "(el) => +el.querySelector('.lpw-curve').dataset.points >= 1",
        arg=card.element_handle(),
    )
    planned = card.locator(".lpw-xmax").text_content()  # at the first point already
    detail = long.locator(".lpw-progress-probe .lpw-progress-detail").first.text_content()
    assert detail.split(" · ")[0].endswith(f"/{planned}"), (planned, detail)
    assert int(planned) >= 10 * LONG_EPOCHS, planned  # the whole run, not best + patience
    page.wait_for_function(
        """(el) => [...el.querySelectorAll('.lpw-curve')].some(c => +c.dataset.points > 20)""",
        arg=long.element_handle(),
    )
    assert card.locator(".lpw-xmax").text_content() == planned  # no rescaling as it grows
    assert long.locator(".lpw-monitor-key[data-key='window']:visible").count() == 0
    _shot(long.locator(".jp-OutputArea"), "long_live_light")
    assert stop.is_enabled()
    stop.click()
    long.locator(".lpw-snap-progress[data-fit-state='stopped']").wait_for()
    assert set(_states(long)) == {"stopped"}
    head = long.locator(".lpw-snap-status").inner_text()
    assert head == "fit stopped by you"
    text = long.locator(".lpw-snap-progress").inner_text()
    assert "fit completed" not in text and "Stop requested" not in text  # one final message
    assert long.locator(".lpw-snap-message").count() == 1
    amber = _colour_of(page, "var(--jp-warn-color1)")
    colours = long.locator(".lpw-snap-probes .lpw-snap-state").evaluate_all(
        "es => es.map(e => getComputedStyle(e).color)"
    )
    assert set(colours) == {amber}, colours
    assert long.locator(".lpw-snap-card .lpw-snap-end-label").count() == 2

    # 3. The next cell sees the runner: stopped early, probes and metrics kept.
    report = _cell(page, 4).locator(".jp-OutputArea-output", has_text="RESULT")
    report.wait_for()
    result = json.loads(report.inner_text().split("RESULT", 1)[1].strip())
    assert result["state"] == "stopped", result
    assert result["probes"] == ["long-a", "long-b"]
    assert all(0 < s < result["planned"] for s in result["steps"]), result
    assert result["accuracy_known"], result
    assert all("stopped by user" in r for r in result["stop_reason"]), result

    # 4. No final headline while its cell was still running.
    timing = page.evaluate("window.__lpwFinal")
    for i in (2, 3):
        rec = timing[str(i)]
        assert "final" in rec and "idle" in rec, rec
        assert rec["idle"] - rec["final"] < 1500, (i, rec)  # ms: the same moment, not 40 s

    # 5. Save, shut the kernel down, reopen (in the dark theme, then the light one): the
    #    final snapshots in their colours, and no widget error.
    _cell(page, 0).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Control+s")
    page.locator(UNSAVED_TAB).wait_for(state="detached")
    _shutdown_kernels(lab)
    for theme in ("Dark", "Light"):
        _set_theme(lab, theme)
        page.reload()
        light = "true" if theme == "Light" else "false"
        page.locator(f"body[data-jp-theme-light='{light}']").wait_for(state="attached")
        _show(page, "e2e.ipynb")
        short, long = _cell(page, 2), _cell(page, 3)
        short.locator(".lpw-snap-progress[data-fit-state='completed']").wait_for()
        long.locator(".lpw-snap-progress[data-fit-state='stopped']").wait_for()
        assert short.locator(".lpw-body").first.is_visible()
        assert short.locator(".lpw-snap-card .lpw-snap-curve").count() == 2
        colours = long.locator(".lpw-snap-probes .lpw-snap-state").evaluate_all(
            "es => es.map(e => getComputedStyle(e).color)"
        )
        assert set(colours) == {_colour_of(page, "var(--jp-warn-color1)")}, (theme, colours)
        page.wait_for_timeout(2_000)  # give a widget renderer time to fail, if one would
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        assert "Error displaying widget" not in notebook.inner_text()
        _shot(short.locator(".jp-OutputArea"), f"short_reopened_{theme.lower()}")
        _shot(long.locator(".jp-OutputArea"), f"long_reopened_{theme.lower()}")
    assert not errors, errors


def _shutdown_kernels(lab: dict[str, Any]) -> None:
    """Shut every kernel down through the server's REST API."""
    headers = {"Authorization": f"token {lab['token']}"}
    req = urllib.request.Request(f"{lab['api']}/api/kernels", headers=headers)
    with urllib.request.urlopen(req, timeout=PATIENCE_MS / 1000) as r:
        kernels = json.loads(r.read())
    for k in kernels:
        req = urllib.request.Request(
            f"{lab['api']}/api/kernels/{k['id']}", headers=headers, method="DELETE"
        )
        urllib.request.urlopen(req, timeout=PATIENCE_MS / 1000).close()


ONE_VERSION_EACH = """([name, n]) => {
  const tab = document.querySelector('.lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel');
  const panels = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!tab || tab.textContent.trim() !== name || panels.length !== 1) return false;
  const seen = (el) => !!el && el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== 'hidden';
  const roots = [...panels[0].querySelectorAll('div.lpw-repr')];
  return roots.length === n && roots.every(
    (r) => seen(r.querySelector('.lpw-fallback pre')) !== seen(r.querySelector('.lpw-body')));
}"""


def test_notebook_run_elsewhere_shows_its_snapshots(page: Any, lab: dict[str, Any]) -> None:
    """A notebook executed with nbclient and saved (no widget state, not trusted here)
    opens with every widget's snapshot readable and no "Error displaying widget"."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(PATIENCE_MS)
    with _screenshot_on_failure(page, "jupyterlab-elsewhere.png"):
        page.goto(lab["other"])
        _show(page, "elsewhere.ipynb")
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        # untrusted: JupyterLab drops <style> and data- attributes from these outputs. Each
        # root shows the text version (styles dropped), or the styled one when another,
        # trusted output (a notebook restored in another tab) brings the stylesheet into the
        # page; never both, never neither. Waited for as a state: on a loaded machine the
        # other tab's outputs may still be rendering when this one appears.
        roots = panel.locator("div.lpw-repr")
        page.wait_for_function(ONE_VERSION_EACH, arg=["elsewhere.ipynb", 3])
        page.wait_for_timeout(3_000)  # renderers settle (a widget one would fail by now)
        assert "Error displaying widget" not in panel.inner_text()
        page.wait_for_function(ONE_VERSION_EACH, arg=["elsewhere.ipynb", 3])
        texts = [roots.nth(i).locator(".lpw-fallback pre").text_content() for i in range(3)]
        picker, dash, table = texts
        assert picker.startswith("SubmodulePicker:") and "transformer.h.2.output" in picker
        assert dash.startswith("fit completed") and "transformer.h.2.output" in dash
        assert "test log-loss" in table.splitlines()[0]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_elsewhere_untrusted.png"), full_page=True)
    assert not errors, errors


@contextlib.contextmanager
def _screenshot_on_failure(page: Any, filename: str) -> Iterator[None]:
    """Leave a full-page screenshot in test-artifacts/ when the block fails."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / filename), full_page=True)
        raise


def test_picker_and_table_live_after_run_all_and_saved_without_widget_state(
    page: Any, lab: dict[str, Any]
) -> None:
    """Run All, then the picker and the table are used live (the later cells already
    ran), then saved with "Save Widget State Automatically" off and reopened with no
    kernel: each widget's static copy shows its final state (the picker with the
    selection clicked in the browser, the table in its sort), the note says to run the
    cell again, and no widget error shows."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(PATIENCE_MS)
    with _screenshot_on_failure(page, "jupyterlab-widgets.png"):
        _use_save_and_reopen_widgets(page, lab)
    assert not errors, errors


def _run_all(page: Any) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu .lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()


def _use_save_and_reopen_widgets(page: Any, lab: dict[str, Any]) -> None:
    page.goto(lab["widgets"])
    _show(page, "widgets.ipynb")
    _wait_idle(page)
    _run_all(page)
    picker, table = _cell(page, 1), _cell(page, 2)
    _cell(page, 3).locator(".jp-OutputArea-output", has_text="NEXT").wait_for()
    # Every cell ran; the picker is still live: pick in the browser.
    search = picker.locator("input.lpw-picker-search")
    search.wait_for()
    assert not picker.locator(".lpw-static-copy").is_visible()  # the copy makes way
    search.fill("h.2")
    picker.locator('.lpw-picker-row[data-name="transformer.h.2"]').click()
    picker.locator('.lpw-picker-row[data-name="transformer.h.2"][aria-selected="true"]').wait_for()
    # The table, live too: sort by probe in the browser.
    table.locator("th button", has_text="probe").click()
    table.locator(".lpw-live th[aria-sort='ascending']", has_text="probe").wait_for()
    # Run the last cell again: the kernel has the click; the widgets stay live.
    _cell(page, 3).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    next_out = _cell(page, 3).locator(".jp-OutputArea-output", has_text="h.2.output")
    next_out.wait_for()
    assert search.is_visible() and table.locator("th button").first.is_visible()
    # the static copies follow (hidden while the live views show)
    copy = picker.locator(".lpw-static-copy .lpw-snap-selected .lpw-chip")
    assert copy.all_inner_texts() == ["transformer.h.0.output", "transformer.h.2.output"]

    # Save, shut the kernel down, reopen.
    _cell(page, 0).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Control+s")
    page.locator(UNSAVED_TAB).wait_for(state="detached")
    _shutdown_kernels(lab)
    saved = nbformat.read(str(lab["work"] / "widgets.ipynb"), as_version=4)
    assert "widgets" not in saved.metadata  # no widget state: the setting is off
    page.reload()
    _show(page, "widgets.ipynb")
    picker, table = _cell(page, 1), _cell(page, 2)
    picker.locator(".lpw-static-copy").wait_for()  # shown: no live view to make way for
    page.wait_for_timeout(3_000)  # give a widget renderer time to fail, if one would
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    assert "Error displaying widget" not in notebook.inner_text()
    chips = picker.locator(".lpw-snap-selected .lpw-chip")
    assert chips.all_inner_texts() == ["transformer.h.0.output", "transformer.h.2.output"]
    assert chips.first.is_visible()
    assert picker.locator(".lpw-static-note").is_visible()  # "run this cell again"
    grid = table.locator("table.lpw-snap-compact")
    assert grid.is_visible()
    first_column = grid.locator("td[data-col='probe']").all_inner_texts()
    assert first_column == ["h0", "h2"]  # the sort chosen in the browser
    _shot(table.locator(".jp-OutputArea"), "widgets_reopened")


def test_playground_updates_as_you_type(page: Any, lab: dict[str, Any]) -> None:
    """The probe playground, live in JupyterLab: a sentence typed into its text box
    (key by key, light theme; then more, in the dark theme) reaches the kernel after
    the debounce, and the strip and the token heatmap redraw for it -- the heatmap's
    tokens are the tokenizer's for the typed text, the strip the kernel's result.
    Then a later cell reads `playground.text` back; no widget error, no console error."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))

    def console(msg: Any) -> None:
        # A notebook an earlier test saved and reopened without its kernel comes back in
        # a hidden tab: JupyterLab's widget renderer logs "widget model not found" for its
        # live-view outputs, which the static copies beside them hide (widgets.snapshot).
        if msg.type == "error" and "widget model not found" not in msg.text:
            errors.append(f"console.error: {msg.text}")

    page.on("console", console)
    page.set_default_timeout(PATIENCE_MS)
    try:
        with _screenshot_on_failure(page, "jupyterlab-playground.png"):
            _type_into_playground(page, lab)
    finally:
        _set_theme(lab, "Light")  # the theme chosen in the menu is saved; later loads: light
    assert not errors, errors


# Resolves once the playground shows a result for `want` (nothing pending, no error):
# the heatmap's tokens, read in the page.
PLAYGROUND_SHOWS = """([root, want]) => {
  const pg = root.querySelector('.lpw-playground');
  if (!pg || pg.dataset.busy) return false;
  const toks = [...pg.querySelectorAll('.lpw-pg-token')].map(t => t.textContent);
  return toks.length > 0 && toks.join('') === want;
}"""


def _playground_view(cell: Any) -> dict[str, Any]:
    """What the live playground shows: status, error, strip cells, heatmap tokens."""
    return cell.locator(".lpw-playground").evaluate(
        """pg => ({
          status: pg.querySelector('.lpw-pg-status').textContent,
          error: pg.querySelector('.lpw-pg-error').hidden ? '' :
            pg.querySelector('.lpw-pg-error').textContent,
          input: pg.querySelector('textarea.lpw-pg-input').value,
          strip: [...pg.querySelectorAll('.lpw-pg-cell')].map(c => [c.dataset.probe,
            c.querySelector('.lpw-pg-class').textContent,
            c.querySelector('.lpw-pg-prob').textContent]),
          tokens: [...pg.querySelectorAll('.lpw-pg-token')].map(t => t.textContent),
          scores: [...pg.querySelectorAll('.lpw-pg-token')].map(t => t.dataset.score),
        })"""
    )


def _type_into_playground(page: Any, lab: dict[str, Any]) -> None:
    light_text, dark_more = PLAYGROUND_TYPED
    page.goto(lab["playground"])
    _show(page, "playground.ipynb")
    page.locator("body[data-jp-theme-light='true']").wait_for(state="attached")
    _wait_idle(page)
    _run_all(page)  # the fit and the playground, then the report: the playground stays live
    _cell(page, 1).locator(".jp-OutputArea-output", has_text="PLAYGROUND").wait_for()
    cell = _cell(page, 0)
    box = cell.locator("textarea.lpw-pg-input")
    box.wait_for()
    first = "the film was good"
    page.wait_for_function(PLAYGROUND_SHOWS, arg=[cell.element_handle(), first])
    before = _playground_view(cell)
    assert before["status"] == "2 probes" and not before["error"], before
    assert [s[0] for s in before["strip"]] == ["h0", "h2"], before

    # Light: replace the sentence by typing; the view waits for Python, then redraws.
    box.click()
    page.keyboard.press("Control+a")
    page.keyboard.type(light_text, delay=20)
    assert box.input_value() == light_text  # typed into the box, not into the notebook
    page.wait_for_function(PLAYGROUND_SHOWS, arg=[cell.element_handle(), light_text])
    light = _playground_view(cell)
    assert light["status"] == "2 probes" and not light["error"], light
    assert all(light["scores"]), light  # every token coloured from a score
    assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").count() == 2
    _shot(cell.locator(".jp-OutputArea"), "playground_typed_light")

    # Dark, switched live from the menu: type on at the end of the sentence.
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    page.locator(".lm-Menu .lm-Menu-itemLabel").get_by_text("Theme", exact=True).click()
    page.locator(".lm-Menu .lm-Menu-itemLabel").get_by_text("JupyterLab Dark", exact=True).click()
    page.locator("body[data-jp-theme-light='false']").wait_for(state="attached")
    box.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(dark_more, delay=20)
    page.wait_for_function(PLAYGROUND_SHOWS, arg=[cell.element_handle(), light_text + dark_more])
    dark = _playground_view(cell)
    assert dark["status"] == "2 probes" and not dark["error"], dark
    assert dark["input"] == light_text + dark_more
    assert cell.locator(".lpw-playground b").count() == 0  # "<b>" typed stays text
    colour = cell.locator(".lpw-playground").evaluate("e => getComputedStyle(e).color")
    assert colour == _colour_of(page, "var(--jp-ui-font-color1)"), colour
    _shot(cell.locator(".jp-OutputArea"), "playground_typed_dark")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    assert "Error displaying widget" not in notebook.inner_text()

    # The kernel's side, read back by the next cell run again (the view stays live, its
    # static copy follows): the typed text, its result, the tokenizer's tokens.
    page.keyboard.press("Escape")
    _cell(page, 1).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    out = _cell(page, 1).locator(".jp-OutputArea-output", has_text=dark_more.strip())
    out.wait_for()
    kernel = json.loads(out.inner_text().split("PLAYGROUND", 1)[1].strip())
    assert kernel["text"] == kernel["result_text"] == light_text + dark_more, kernel
    assert not kernel["error"], kernel
    assert light["tokens"] == kernel["tokens"][0], (light["tokens"], kernel["tokens"][0])
    assert dark["tokens"] == kernel["tokens"][1], (dark["tokens"], kernel["tokens"][1])
    assert dark["strip"] == kernel["strip"], (dark["strip"], kernel["strip"])
    snap = cell.locator(".lpw-static-copy .lpw-snap-pg-text")
    snap.wait_for(state="attached")
    assert snap.text_content() == light_text + dark_more
    assert not snap.is_visible()  # hidden while the live view shows
    assert box.is_visible()  # still live after the next cell ran
    assert "Error displaying widget" not in notebook.inner_text()
