"""Jupyter widgets (anywidget): submodule picker, progress, live monitor, metrics table.

Classes load lazily so ``import lm_probe_widgets.widgets`` stays cheap and a
missing optional piece never breaks the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "SubmodulePicker": ".picker",
    "MetricsTable": ".table",
    "ProbeProgress": ".progress",
    "EarlyStoppingMonitor": ".monitor",
    "Dashboard": ".dashboard",
    "ProbePlayground": ".playground",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
