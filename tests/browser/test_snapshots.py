"""Widgets survive save, reopen and nbconvert: the picker and the table are shown as a
live view plus a static copy of their state (its own output), and the dashboard's output
becomes its snapshot when the fit ends.

A small notebook (picker, a fit with the dashboard, the metrics table) runs on a real
kernel with nbclient and is saved as JupyterLab saves it (no widget state). Then the
saved outputs are checked, the notebook is exported with nbconvert and the export is
opened in chromium (network blocked, light and dark), where every snapshot must be
visible and no "Error displaying widget" may appear. The JupyterLab side (a saved
notebook reopened with no kernel) is in test_jupyterlab.py, which reuses `build` and
`execute` from here. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from patience import PATIENCE_S

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

SETUP = """\
%load_ext lm_probe_widgets
import numpy as np
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.io.tiny import tiny_model
from lm_probe_widgets.widgets import MetricsTable, SubmodulePicker

model, tok = tiny_model("gpt2")
rng = np.random.default_rng(0)
filler = ["the", "a", "movie", "film", "was", "is", "plot", "and"]
texts, labels = [], []
for i in range(160):
    words = list(rng.choice(filler, size=int(rng.integers(2, 8))))
    words.insert(int(rng.integers(0, len(words) + 1)), ["bad", "good"][i % 2])
    texts.append(" ".join(words)); labels.append(i % 2)
ds = ProbeDataset.from_texts(texts, labels, tok, max_length=16)
train, test = ds.tt_split(test_size=0.25, seed=0)
"""
PICKER = """\
picker = SubmodulePicker(model, selected=["transformer.h.0.output"])
picker
"""
PICK_MORE = """\
picker.select("transformer.h.2.output")  # a change made in Python refreshes the snapshot
configs = picker.to_configs([0, 1], patience=3, warmup_steps=2)
"""
FIT = """\
runner = ProbeRunner(model, configs)
runner.fit_probes(train, test, num_epoch=4, batch_size=16);
"""
TABLE = """\
MetricsTable(runner, sort={"column": "accuracy", "descending": True})
"""
CELLS = (SETUP, PICKER, PICK_MORE, FIT, TABLE)


def build() -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    return nb


def _kernel_manager(tmp: Path) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = tmp / "kernels" / "lpw-snapshot"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "lpw", "language": "python"})
    )
    ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    return KernelManager(kernel_name="lpw-snapshot", kernel_spec_manager=ksm)


def execute(path: Path, tmp: Path) -> Any:
    """Run the notebook on a kernel from this interpreter and save it as JupyterLab
    does by default: outputs, no widget state (there is no widget model on reopening)."""
    import nbformat
    from nbclient import NotebookClient

    nb = build()
    NotebookClient(
        nb,
        km=_kernel_manager(tmp),
        timeout=PATIENCE_S,
        store_widget_state=False,
        resources={"metadata": {"path": str(tmp)}},
    ).execute()
    nbformat.write(nb, str(path))
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    tmp = tmp_path_factory.mktemp("snapshots")
    path = tmp / "snapshots.ipynb"
    return execute(path, tmp), path


def _outputs(cell: Any) -> list[dict[str, Any]]:
    outs = [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
    return [o["data"] for o in outs]


def _live_and_copy(cell: Any) -> dict[str, Any]:
    """A widget shown as its live view (widget only, an empty text) and a static copy."""
    live, copy = _outputs(cell)
    assert set(live) == {WIDGET_MIME, "text/plain"} and live["text/plain"] == ""
    assert set(copy) == {"text/plain", "text/html"} and "lpw-static-copy" in copy["text/html"]
    return copy


def test_saved_outputs_hold_the_final_snapshots(executed: tuple[Any, Path]) -> None:
    nb, _ = executed
    setup, picker, _pick_more, fit, table = nb.cells
    assert not [o for o in setup.outputs if o.output_type == "error"]
    # picker: still live (later cells ran); its copy follows the change made in Python
    data = _live_and_copy(picker)
    assert "transformer.h.2.output" in data["text/html"]
    assert "2 selected" in data["text/html"]
    # dashboard: at the end of the fit the output is the static final state only
    (data,) = _outputs(fit)
    assert WIDGET_MIME not in data and set(data) == {"text/plain", "text/html"}
    html = data["text/html"]
    assert 'data-fit-state="completed"' in html and html.count("fit completed") >= 1
    assert html.count('class="lpw-snap-card"') == 2 and 'data-phase="extract-eval"' in html
    assert data["text/plain"].startswith("fit completed")
    # table: compact columns, 3 decimals, the browser's sort
    data = _live_and_copy(table)
    assert "test log-loss" in data["text/html"] and "All columns" not in data["text/plain"]
    lines = data["text/plain"].splitlines()
    assert lines[0].split()[:2] == ["probe", "accuracy"]
    assert re.search(r"\b[01]\.\d{3} \[[01]\.\d{3}, [01]\.\d{3}\]", data["text/plain"])


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_nbconvert_export_shows_every_snapshot(
    executed: tuple[Any, Path], page: Any, theme: str
) -> None:
    from nbconvert import HTMLExporter

    nb, _ = executed
    exporter = HTMLExporter(theme=theme)
    body, _ = exporter.from_notebook_node(nb)
    assert "Error displaying widget" not in body
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"snapshots_nbconvert_{theme}.html").write_text(body, encoding="utf-8")

    seen: list[str] = []
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}"))
    page.route(re.compile(r"^(?!data:|about:).*"), lambda route: route.abort())
    page.set_content(body, wait_until="domcontentloaded")
    kinds = page.locator("div.lpw-repr").evaluate_all("rs => rs.map(r => r.dataset.lpwKind)")
    assert kinds == ["picker", "dashboard", "table"]
    for kind in kinds:
        root = page.locator(f'div.lpw-repr[data-lpw-kind="{kind}"]')
        assert root.locator(".lpw-body").is_visible(), kind  # styled view, not the fallback
    dash = page.locator('div.lpw-repr[data-lpw-kind="dashboard"]')
    assert dash.locator(".lpw-snap-status").inner_text() == "fit completed"
    assert dash.locator(".lpw-snap-card svg .lpw-snap-curve").count() == 2
    assert dash.locator(".lpw-snap-probes .lpw-snap-row").count() == 2
    colours = dash.locator(".lpw-snap-probes .lpw-snap-state").evaluate_all(
        "es => es.map(e => getComputedStyle(e).color)"
    )
    assert all(c != "rgb(211, 47, 47)" for c in colours), colours  # no error red
    table = page.locator('div.lpw-repr[data-lpw-kind="table"] table.lpw-snap-compact')
    assert table.locator("th").first.inner_text() == "probe"
    assert table.locator("tr").count() == 3
    assert "Error displaying widget" not in page.locator("body").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"snapshots_nbconvert_{theme}.png"), full_page=True)
    assert seen == []
