"""`%load_ext lm_probe_widgets` in a real IPython shell: load, reload, unload."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell
from patience import PATIENCE_S

from lm_probe_widgets import ipython as ext
from lm_probe_widgets.core.engine import progress as core_progress


@pytest.fixture
def ip():
    shell = InteractiveShell.instance()
    previous = core_progress.get_progress_factory()
    yield shell
    shell.run_line_magic("unload_ext", "lm_probe_widgets")
    core_progress.set_progress_factory(previous)


def _formatter_state(shell):
    out = {}
    for mime, fmt in shell.display_formatter.formatters.items():
        out[mime] = (type(fmt), dict(fmt.type_printers), dict(fmt.deferred_printers))
    return out


def test_load_reload_unload_restore_previous_state(ip):
    def mine(runner):
        return None

    core_progress.set_progress_factory(mine)
    before = _formatter_state(ip)
    ip.run_line_magic("load_ext", "lm_probe_widgets")
    assert ext.is_loaded()
    assert core_progress.get_progress_factory() is ext._factory

    ip.run_line_magic("load_ext", "lm_probe_widgets")  # idempotent
    ip.run_line_magic("reload_ext", "lm_probe_widgets")  # unload + load
    assert ext.is_loaded()
    assert core_progress.get_progress_factory() is ext._factory
    # Results render themselves: no formatter is added or replaced.
    assert _formatter_state(ip) == before

    ip.run_line_magic("unload_ext", "lm_probe_widgets")
    assert not ext.is_loaded()
    assert core_progress.get_progress_factory() is mine  # what was there before
    assert _formatter_state(ip) == before


def test_unload_leaves_a_factory_set_by_someone_else(ip):
    core_progress.set_progress_factory(None)
    ip.run_line_magic("load_ext", "lm_probe_widgets")
    ip.run_line_magic("unload_ext", "lm_probe_widgets")
    assert core_progress.get_progress_factory() is None

    def other(runner):
        return None

    ip.run_line_magic("load_ext", "lm_probe_widgets")
    core_progress.set_progress_factory(other)
    ip.run_line_magic("unload_ext", "lm_probe_widgets")
    assert core_progress.get_progress_factory() is other


def test_loading_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'lm_probe_widgets')\n"
        "heavy = [m for m in ('torch', 'nnsight', 'transformers', 'sklearn', 'anywidget',"
        " 'ipywidgets', 'pandas') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_outside_a_kernel_fit_probes_uses_the_console_meter(ip):
    """Terminal IPython / plain Python: the factory picks the console progress."""
    ip.run_line_magic("load_ext", "lm_probe_widgets")
    display = core_progress.make_progress("auto", runner=None)
    assert isinstance(display, core_progress.ConsoleProgress)


def test_runner_still_renders_its_own_escaped_html(ip, tiny):
    from lm_probe_widgets import ProbeConfig, ProbeRunner

    ip.run_line_magic("load_ext", "lm_probe_widgets")
    model, _tok = tiny
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", name="<b>x</b>&")])
    data, _meta = ip.display_formatter.format(runner)
    assert "&lt;b&gt;x&lt;/b&gt;" in data["text/html"] and "<b>x</b>" not in data["text/html"]
    assert "text/plain" in data


def test_under_nbclient_the_dashboard_displays_with_a_text_summary(tmp_path):
    """No live frontend (nbconvert/nbclient): the output is the dashboard's final
    snapshot, the widget state is stored, and text/plain reads as a summary of the
    finished fit."""
    import nbformat
    from nbclient import NotebookClient

    setup = (
        "import numpy as np\n"
        "from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner\n"
        "from lm_probe_widgets.core.io.tiny import tiny_model\n"
        "model, tok = tiny_model('gpt2')\n"
        "texts = [('good ' if i % 2 else 'bad ') + 'movie ' * (i % 5) for i in range(80)]\n"
        "ds = ProbeDataset.from_texts(texts, [i % 2 for i in range(80)], tok, max_length=16)\n"
        "train, test = ds.tt_split(test_size=0.25, seed=0)\n"
        "runner = ProbeRunner(model, [ProbeConfig('transformer.h.1.output', name='<p1>')])\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext lm_probe_widgets"),
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell("runner.fit_probes(train, test, num_epoch=2, batch_size=16);"),
    ]
    client = NotebookClient(
        nb,
        timeout=PATIENCE_S,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = nb.cells[2].outputs
    # once the fit ends, the dashboard's output is its final static snapshot alone (a
    # saved or exported notebook shows it without a kernel or a widget manager)
    shown = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(shown) == 1, outputs
    assert "application/vnd.jupyter.widget-view+json" not in shown[0]["data"]
    text = shown[0]["data"]["text/plain"]
    assert text.startswith("fit completed"), text
    assert "<p1>" in text and "step" in text
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    monitors = [s["state"] for s in state.values() if "curves" in s["state"]]
    assert monitors and monitors[0]["curves"]["<p1>"][0], "final curves saved with the notebook"
