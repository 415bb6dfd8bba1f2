"""Where widget classes find their front-end modules (the folder: ``display.assets``).

Each widget's source, ``js/<name>.js``, imports its helpers from ``js/shared.js``.
anywidget loads ``_esm`` from a blob URL, where a relative import cannot resolve, so
``npm run build`` (esbuild, ``build.mjs``) bundles each widget with its imports into one
self-contained module in ``lm_probe_widgets/static/``; this module only reads it.
"""

from __future__ import annotations

import re

from ..display.assets import asset_dir, css_text, read_asset

__all__ = ["asset_dir", "css_text", "esm_source"]

_IMPORT = re.compile(r"^\s*import\b", re.M)


def esm_source(name: str) -> str:
    """The bundled ES module of widget ``<name>``, for ``_esm``."""
    path = asset_dir() / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"widget module {path} is missing: run `npm ci && npm run build` in the checkout"
        )
    source = read_asset(f"{name}.js")
    if _IMPORT.search(source):
        raise ValueError(
            f"{path} still imports other files (not a bundle): run `npm run build`, which "
            "writes self-contained modules to lm_probe_widgets/static/"
        )
    return source
