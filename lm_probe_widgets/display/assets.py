"""Where the front-end files are: the one theme, the repr styles, the widget modules.

The ESM/CSS sources live in the repository's top-level ``js/``; ``npm run build``
(esbuild, ``build.mjs``) writes the bundled widget modules and the stylesheets to
``lm_probe_widgets/static/``, which is committed and ships as package data (as
scikit-learn ships its repr's CSS), so a checkout, an editable install and a wheel all
read the same files. They are plain files read from disk: nothing is fetched from a
CDN, so reprs and widgets work offline. Standard library only: the
static reprs read their CSS from here and must stay cheap to import.
"""

from __future__ import annotations

import os
from functools import cache, lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
THEME = "theme.css"  # the variables and light/dark/VS Code detection, for everything
REPR = "repr.css"  # the static reprs and widget snapshots


@lru_cache(maxsize=1)
def asset_dir() -> Path:
    """The folder holding the front-end files.

    ``LPW_ASSET_DIR`` overrides (handy to test a built wheel's files); then the
    package's ``static/`` folder (the build output; never the unbundled ``js/``).
    """
    override = os.environ.get("LPW_ASSET_DIR")
    candidates = [Path(override)] if override else []
    candidates += [_PACKAGE_DIR / "static"]
    for folder in candidates:
        if (folder / THEME).is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"lm_probe_widgets front-end files not found (looked in {tried}); "
        "reinstall the package, or run `npm ci && npm run build` in the checkout"
    )


@cache
def read_asset(filename: str) -> str:
    """The text of one front-end file."""
    return (asset_dir() / filename).read_text(encoding="utf-8")


def css_text(name: str) -> str:
    """The shared theme followed by ``<name>.css`` (when there is one), as one stylesheet."""
    parts = [read_asset(THEME)]
    if (asset_dir() / f"{name}.css").is_file():
        parts.append(read_asset(f"{name}.css"))
    return "\n".join(parts)
