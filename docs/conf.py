"""Sphinx configuration: the user guide (docs/*.md), the API reference from docstrings,
the lessons (notebooks/*.ipynb, rendered without running them) and benchmarks/README.md.

The source folder is the repository root (`sphinx-build -c docs . docs/_build/html`, as
`make docs` runs it), so a page links the notebooks and the benchmark notes by the same
relative path on GitHub, on disk and in the built site.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The lessons and the API pages must never train or download anything while building.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lm_probe_widgets  # noqa: E402

project = "lm_probe_widgets"
release = version = lm_probe_widgets.__version__
root_doc = "docs/index"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.autosummary"]
include_patterns = ["README.md", "docs/**", "notebooks/*.ipynb", "benchmarks/README.md"]
exclude_patterns = [
    "docs/_build",
    "docs/_extra",
    "docs/conf.py",
    "**/.ipynb_checkpoints",
    ".venv",
    "node_modules",
    ".git",
]

# The committed notebooks carry no outputs and nothing runs here: a lesson shows the
# outputs of its last run by tests/test_notebooks.py (test-artifacts/notebooks/, so after
# `make test`) on the cells whose code is unchanged since, and none otherwise.
nb_execution_mode = "off"
EXECUTED = ROOT / "test-artifacts" / "notebooks"
# A live widget's view needs its kernel; its output also holds the static copy to show.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_heading_anchors = 3

# Docstrings write code in single backticks, as Markdown does.
default_role = "code"
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# ProbeRunner is assembled from mixins: their methods are its API.
autodoc_default_options = {"members": True, "inherited-members": True, "undoc-members": True}
# Every cross-reference must resolve, except to the types of the libraries this one
# builds on (no intersphinx: the build runs offline).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|pandas|pd|nnsight|transformers|matplotlib|scipy)(\..*)?"),
    (r"py:.*", r"(collections\.abc|typing|pathlib|os)\..*|Any|Path|DiskStore"),
    # internal types a public signature names; their own modules are not in the reference
    (r"py:.*", r"lm_probe_widgets\.core\..*"),
    # load_model's docstring names core.engine.disk_store.cache_dir by its short name
    ("py:func", "cache_dir"),
]

html_theme = "alabaster"
html_title = "lm_probe_widgets"
html_static_path: list[str] = []
# The site opens at the root: index.html forwards to docs/index.html (the root document).
html_extra_path = ["_extra"]


def _with_outputs(app, docname: str, source: list[str]) -> None:
    """Give a notebook the outputs of its executed copy, cell by cell where code matches."""
    if not docname.startswith("notebooks/"):
        return
    executed = EXECUTED / f"{Path(docname).name}.ipynb"
    app.env.note_dependency(str(executed))  # a new run rebuilds the page
    if not executed.is_file():
        return
    import nbformat

    nb = nbformat.reads(source[0], as_version=4)
    ran: dict[str, list] = {}
    for cell in nbformat.read(executed, as_version=4).cells:
        if cell.cell_type == "code":
            ran.setdefault(cell.source, []).append(cell)
    for cell in nb.cells:
        if cell.cell_type == "code" and ran.get(cell.source):
            done = ran[cell.source].pop(0)
            cell.outputs, cell.execution_count = done.outputs, done.execution_count
    source[0] = nbformat.writes(nb)


def setup(app) -> None:
    app.connect("source-read", _with_outputs)
