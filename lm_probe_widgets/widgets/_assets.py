"""Where widget classes find their front-end files.

The ESM/CSS sources live in the repository's top-level ``js/`` with no build step.
A wheel carries them as ``lm_probe_widgets/static/`` (hatchling ``force-include``);
an editable install or a source checkout reads ``js/`` directly. Both are plain
files read from disk: nothing is fetched from a CDN, so widgets work offline.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_THEME = "theme.css"


@lru_cache(maxsize=1)
def asset_dir() -> Path:
    """The folder holding the widget ESM/CSS files.

    ``LPW_ASSET_DIR`` overrides (handy to test a built wheel's files); then the
    wheel's ``static/`` folder; then the repository's ``js/`` for editable installs.
    """
    override = os.environ.get("LPW_ASSET_DIR")
    candidates = [Path(override)] if override else []
    candidates += [_PACKAGE_DIR / "static", _PACKAGE_DIR.parent / "js"]
    for folder in candidates:
        if (folder / _THEME).is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"lm_probe_widgets front-end files not found (looked in {tried}); "
        "reinstall the package, or build the wheel with js/ force-included as static/"
    )


def esm_path(name: str) -> Path:
    """Path of ``<name>.js``; anywidget reads it (and hot-reloads it with ANYWIDGET_HMR=1)."""
    path = asset_dir() / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(f"widget module {path} is missing")
    return path


def css_text(name: str) -> str:
    """The shared theme variables followed by ``<name>.css``, as one stylesheet."""
    folder = asset_dir()
    parts = [(folder / _THEME).read_text(encoding="utf-8")]
    own = folder / f"{name}.css"
    if own.is_file():
        parts.append(own.read_text(encoding="utf-8"))
    return "\n".join(parts)
