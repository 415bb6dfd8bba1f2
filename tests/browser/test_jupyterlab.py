"""End to end in real JupyterLab: `%load_ext`, a fit whose bars and curves reach their
end state, and a longer fit that a click on Stop ends early with its probes kept.

The test starts `jupyter lab` itself (127.0.0.1, free port, token, temporary root with
a notebook written by nbformat) and drives headless Debian chromium. Screenshots go
to test-artifacts/ on failure; the server and its kernel are killed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
JUPYTER = Path(sys.executable).parent / "jupyter"
FINAL = {"early-stopped", "finished", "stopped"}
LONG_EPOCHS = 3000

SETUP = """\
import numpy as np
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.tiny import tiny_model

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
runner.fit_probes(train, test, num_epoch=5, batch_size=16)
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


def _write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in
                ("%load_ext lm_probe_widgets", SETUP, FIT_SHORT, FIT_LONG, REPORT)]
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
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (no virtual scrolling), so locators find all outputs.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    docmanager = root / "settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)  # no "Select Kernel" dialog: start the notebook's kernel
    (docmanager / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True})
    )
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
        [str(JUPYTER), "lab", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
         f"--IdentityProvider.token={token}", "--allow-root", "--no-browser",
         "--ServerApp.open_browser=False", f"--ServerApp.root_dir={work}",
         "--LabApp.news_url=", "--ServerApp.terminals_enabled=False"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(work), start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError("jupyter lab did not start:\n"
                                       + (root / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield {"url": f"{base}/lab/tree/e2e.ipynb?token={token}", "log": root / "lab.log"}
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
    page.set_default_timeout(30_000)
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


def _cell(page: Any, i: int) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell").nth(i)


def _states(cell: Any) -> list[str]:
    return cell.locator(".lpw-progress-row").evaluate_all("rows => rows.map(r => r.dataset.state)")


def test_fit_watch_and_stop_in_jupyterlab(lab_page: Any) -> None:
    page, errors = lab_page
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell").first.wait_for()
    # Wait for the kernel, then Run > Run All Cells (the REPORT cell queues behind the
    # long fit, so its execute_request also exercises the poller's hand-back path).
    select = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
    try:  # only if the setting above did not take
        select.wait_for(timeout=3_000)
        select.click()
    except Exception:
        pass
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=60_000
    )
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

    # 1. The short fit: bars reach an end state with the state's colour, curves drawn.
    short = _cell(page, 2)
    short.locator(".lpw-progress[data-fit-state='completed']").wait_for(timeout=90_000)
    states = _states(short)
    assert len(states) == 2 and set(states) <= FINAL, states
    fill = short.locator(".lpw-progress-row .lpw-progress-fill").first
    assert fill.evaluate("e => getComputedStyle(e).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
    curves = short.locator(".lpw-monitor-card .lpw-curve")
    assert curves.count() == 2
    points = curves.evaluate_all("cs => cs.map(c => +c.dataset.points)")
    assert min(points) > 2, points
    paths = curves.evaluate_all("cs => cs.map(c => c.getAttribute('d'))")
    assert all(d.startswith("M") for d in paths), paths
    assert short.locator(".lpw-monitor-card .lpw-best:visible").count() == 2
    assert short.locator(".lpw-monitor-card .lpw-stop-label:visible").count() == 2
    short.get_by_text("FIT1 fitted").wait_for()

    # 2. The long fit: wait until curves move, then click Stop.
    long = _cell(page, 3)
    stop = long.locator("button.lpw-stop")
    stop.wait_for()
    long.locator(".lpw-progress[data-fit-state='running']").wait_for(timeout=60_000)
    page.wait_for_function(
        """(el) => [...el.querySelectorAll('.lpw-curve')].some(c => +c.dataset.points > 20)""",
        arg=long.element_handle(), timeout=60_000,
    )
    assert stop.is_enabled()
    stop.click()
    long.locator(".lpw-progress[data-fit-state='stopped']").wait_for(timeout=60_000)
    assert set(_states(long)) == {"stopped"}
    assert long.locator(".lpw-monitor-card .lpw-stop-label:visible").count() == 2
    assert stop.inner_text() == "Stopped"

    # 3. The next cell sees the runner: stopped early, probes and metrics kept.
    report = _cell(page, 4).locator(".jp-OutputArea-output", has_text="RESULT")
    report.wait_for(timeout=60_000)
    result = json.loads(report.inner_text().split("RESULT", 1)[1].strip())
    assert result["state"] == "stopped", result
    assert result["probes"] == ["long-a", "long-b"]
    assert all(0 < s < result["planned"] for s in result["steps"]), result
    assert result["accuracy_known"], result
    assert all("stopped by user" in r for r in result["stop_reason"]), result
    assert not errors, errors
