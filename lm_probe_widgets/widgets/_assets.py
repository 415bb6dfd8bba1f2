"""Where widget classes find their front-end files (the folder: ``display.assets``).

Every widget module imports its helpers from ``js/shared.js``. anywidget loads a module
from a blob URL, where that relative import cannot resolve, so ``esm_source`` puts the
text of ``shared.js`` in place of the import line: one source file, no build step, and
a browser loading the files directly (the test harness) follows the real import.
"""

from __future__ import annotations

import re

from ..display.assets import asset_dir, css_text, read_asset

__all__ = ["asset_dir", "css_text", "esm_source"]

SHARED = "shared.js"
# The one import a widget module may have: `import { a, b } from "./shared.js";`
_SHARED_IMPORT = re.compile(r'^import \{[^}]*\} from "\./shared\.js";\n', re.M)


def esm_source(name: str) -> str:
    """The ES module of widget ``<name>`` with ``shared.js`` inlined, for ``_esm``."""
    path = asset_dir() / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(f"widget module {path} is missing")
    source = read_asset(f"{name}.js")
    shared = read_asset(SHARED)
    inlined, count = _SHARED_IMPORT.subn(lambda _m: shared, source, count=1)
    if re.search(r"^import ", inlined, re.M) or (count == 0 and ' from "./' in source):
        raise ValueError(f'{name}.js: only `import {{...}} from "./shared.js"` is supported')
    return inlined
