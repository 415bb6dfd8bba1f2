"""`%load_ext lm_probe_widgets`: the live dashboard for `fit_probes`, rich display.

Loading is idempotent (`%reload_ext` is safe) and reversible: unloading puts back
the progress factory that was registered before and removes exactly the display
formatters this extension added (restoring any it replaced). Nothing heavy is
imported here: formatters are registered by type *name*, so torch and the widgets
load only when a runner is shown or a fit starts.
"""

from __future__ import annotations

import html
from typing import Any

# Types shown as HTML unless they already bring their own `_repr_html_`.
_HTML_TYPES = (
    ("lm_probe_widgets.core.runner", "ProbeRunner"),
    ("lm_probe_widgets.core.probe", "LinearProbe"),
)

_state: dict[str, Any] = {"loaded": False, "previous_factory": None, "formatters": []}


def _factory(runner: Any) -> Any:
    from .widgets.dashboard import dashboard_factory

    return dashboard_factory(runner)


def _has_own_html(module: str, name: str) -> bool:
    """True when the class (if already imported) renders itself, so no formatter is needed."""
    import sys

    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls is not None and callable(getattr(cls, "_repr_html_", None))


def runner_html(runner: Any) -> str:
    """A static summary: state and the metrics table (every string escaped)."""
    head = html.escape(repr(runner))
    try:
        table = runner.metrics.to_html(escape=True, float_format=lambda x: f"{x:.4g}")
    except Exception as e:  # a broken repr must not break the notebook
        table = f"<pre>{html.escape(f'metrics unavailable: {e}')}</pre>"
    return f'<div class="lpw-runner"><p><code>{head}</code></p>{table}</div>'


def probe_html(probe: Any) -> str:
    cfg = getattr(probe, "config", None)
    rows = [
        ("submodule", getattr(cfg, "submodule", "?")),
        ("pooling", getattr(cfg, "pooling", "?")),
        ("classes", list(getattr(probe, "classes", []) or getattr(cfg, "classes", []))),
        ("state", getattr(probe, "state", "?")),
        ("steps", getattr(probe, "steps", "?")),
        ("best step", getattr(probe, "best_step", "?")),
        ("stop reason", getattr(probe, "stop_reason", "")),
    ]
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    name = html.escape(str(getattr(probe, "name", "probe")))
    return f'<table class="lpw-probe"><caption>{name}</caption>{body}</table>'


_PRINTERS = {"ProbeRunner": runner_html, "LinearProbe": probe_html}


def load_ipython_extension(ip: Any) -> None:
    """Register the dashboard as `fit_probes`' default display, plus HTML reprs."""
    if _state["loaded"]:
        return
    from .core.progress import set_progress_factory

    _state["previous_factory"] = set_progress_factory(_factory)
    added = []
    fmt = ip.display_formatter.formatters["text/html"]
    for module, name in _HTML_TYPES:
        if _has_own_html(module, name):
            continue
        old = fmt.for_type_by_name(module, name, _PRINTERS[name])
        added.append((module, name, old))
    _state["formatters"] = added
    _state["loaded"] = True


def unload_ipython_extension(ip: Any) -> None:
    """Undo `load_ipython_extension`: previous factory back, our formatters gone."""
    if not _state["loaded"]:
        return
    from .core.progress import get_progress_factory, set_progress_factory

    if get_progress_factory() is _factory:
        set_progress_factory(_state["previous_factory"])
    fmt = ip.display_formatter.formatters["text/html"]
    for module, name, old in _state["formatters"]:
        try:
            fmt.pop(f"{module}.{name}")
        except KeyError:
            pass
        if old is not None:
            fmt.for_type_by_name(module, name, old)
    _state.update(loaded=False, previous_factory=None, formatters=[])


def is_loaded() -> bool:
    return bool(_state["loaded"])
