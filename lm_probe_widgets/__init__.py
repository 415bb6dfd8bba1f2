"""Train linear probes on a language model's activations, and watch them learn.

Importing the package is light: the core (torch, nnsight, scikit-learn) loads on
first use of one of its names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "ProbeConfig": "lm_probe_widgets.core.config",
    "ProbeDataset": "lm_probe_widgets.core.engine.data",
    "ProbeRunner": "lm_probe_widgets.core.runner",
    "LinearProbe": "lm_probe_widgets.core.engine.probe",
    "ProbeError": "lm_probe_widgets.core.errors",
    "SubmoduleError": "lm_probe_widgets.core.errors",
    "load_model": "lm_probe_widgets.core.io.loading",
    "load_dataset": "lm_probe_widgets.core.io.loading",
    "tiny_model": "lm_probe_widgets.core.io.tiny",
    "module_tree": "lm_probe_widgets.core.engine.submodules",
    "hidden_states": "lm_probe_widgets.core.engine.submodules",
}

__all__ = [
    "LinearProbe",
    "ProbeConfig",
    "ProbeDataset",
    "ProbeError",
    "ProbeRunner",
    "SubmoduleError",
    "hidden_states",
    "load_dataset",
    "load_ipython_extension",
    "load_model",
    "module_tree",
    "tiny_model",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    from .core.config import ProbeConfig
    from .core.engine.data import ProbeDataset
    from .core.engine.probe import LinearProbe
    from .core.errors import ProbeError, SubmoduleError
    from .core.runner import ProbeRunner


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lm_probe_widgets' has no attribute {name!r}")


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext lm_probe_widgets`."""
    from .ipython import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """`%unload_ext lm_probe_widgets`."""
    from .ipython import unload_ipython_extension as unload

    unload(ip)
