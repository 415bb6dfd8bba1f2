"""`%load_ext lm_probe_widgets`: the live dashboard becomes `fit_probes`' display.

Loading is idempotent (`%reload_ext` is safe) and reversible: unloading puts back
the progress factory registered before. No display formatters are registered:
runners and probes render themselves (`_repr_mimebundle_`: static HTML plus a
text/plain fallback, from `lm_probe_widgets.display`) and `runner.metrics` is a
DataFrame, so IPython's formatters stay untouched. Nothing heavy is imported here:
the widgets (and torch) load when a fit starts.
"""

from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {"loaded": False, "previous_factory": None}


def _factory(runner: Any) -> Any:
    """In a Jupyter kernel a displayed Dashboard; elsewhere the console meter."""
    from .widgets.dashboard import dashboard_factory

    return dashboard_factory(runner)


def load_ipython_extension(ip: Any) -> None:
    """Make the live dashboard the default display of `fit_probes(progress="auto")`."""
    if _state["loaded"]:
        return
    from .core.engine.progress import set_progress_factory

    _state["previous_factory"] = set_progress_factory(_factory)
    _state["loaded"] = True


def unload_ipython_extension(ip: Any) -> None:
    """Undo `load_ipython_extension`: the previous progress factory comes back."""
    if not _state["loaded"]:
        return
    from .core.engine.progress import get_progress_factory, set_progress_factory

    if get_progress_factory() is _factory:  # someone else replaced it since: leave theirs
        set_progress_factory(_state["previous_factory"])
    _state.update(loaded=False, previous_factory=None)


def is_loaded() -> bool:
    return bool(_state["loaded"])
