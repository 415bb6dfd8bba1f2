"""`%load_ext lm_probe_widgets` in a real IPython shell: load, reload, unload."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from lm_probe_widgets import ipython as ext
from lm_probe_widgets.core import progress as core_progress

RUNNER = ("lm_probe_widgets.core.runner", "ProbeRunner")


@pytest.fixture
def ip():
    shell = InteractiveShell.instance()
    previous = core_progress.get_progress_factory()
    yield shell
    shell.run_line_magic("unload_ext", "lm_probe_widgets")
    core_progress.set_progress_factory(previous)


def _html_printer(shell, module, name):
    fmt = shell.display_formatter.formatters["text/html"]
    printer = fmt.deferred_printers.get((module, name))
    if printer is None:
        for typ, fn in fmt.type_printers.items():
            if (typ.__module__, typ.__name__) == (module, name):
                return fn
    return printer


def test_load_reload_unload_restore_previous_state(ip):
    def mine(runner):
        return None

    def their_html(obj):
        return "<i>theirs</i>"

    core_progress.set_progress_factory(mine)
    fmt = ip.display_formatter.formatters["text/html"]
    fmt.for_type_by_name(*RUNNER, their_html)
    try:
        ip.run_line_magic("load_ext", "lm_probe_widgets")
        assert ext.is_loaded()
        assert core_progress.get_progress_factory() is ext._factory
        assert _html_printer(ip, *RUNNER) is ext.runner_html

        ip.run_line_magic("load_ext", "lm_probe_widgets")  # idempotent
        ip.run_line_magic("reload_ext", "lm_probe_widgets")  # unload + load
        assert ext.is_loaded()
        assert core_progress.get_progress_factory() is ext._factory
        assert _html_printer(ip, *RUNNER) is ext.runner_html

        ip.run_line_magic("unload_ext", "lm_probe_widgets")
        assert not ext.is_loaded()
        assert core_progress.get_progress_factory() is mine  # what was there before
        assert _html_printer(ip, *RUNNER) is their_html  # restored, not removed
    finally:
        fmt.pop(".".join(RUNNER), None)


def test_unload_removes_only_what_it_added(ip):
    core_progress.set_progress_factory(None)
    ip.run_line_magic("load_ext", "lm_probe_widgets")
    ip.run_line_magic("unload_ext", "lm_probe_widgets")
    assert core_progress.get_progress_factory() is None
    assert _html_printer(ip, *RUNNER) is None
    assert _html_printer(ip, "lm_probe_widgets.core.probe", "LinearProbe") is None
    # The display formatter itself was never replaced.
    assert type(ip.display_formatter.formatters["text/html"]).__name__ == "HTMLFormatter"


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


def test_runner_html_is_escaped(ip, tiny):
    from lm_probe_widgets import ProbeConfig, ProbeRunner

    ip.run_line_magic("load_ext", "lm_probe_widgets")
    model, _tok = tiny
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", name="<b>x</b>&")])
    data, _meta = ip.display_formatter.format(runner)
    html = data["text/html"]
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in html and "<b>x</b>" not in html
    assert "text/plain" in data
