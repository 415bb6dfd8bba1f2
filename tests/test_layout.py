"""core/'s layout holds: each subpackage imports only what its __init__ says it may."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "lm_probe_widgets" / "core"
VOCABULARY = {"config", "errors", "labels"}
# what each part of core may import, at any depth (lazy imports included)
ALLOWED = {
    "vocabulary": VOCABULARY,
    "engine": VOCABULARY | {"engine"},
    "methods": VOCABULARY | {"engine", "methods"},
    "io": VOCABULARY | {"engine", "io"},
    "runner": VOCABULARY | {"engine", "methods", "io"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(CORE)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return "runner" if rel.stem == "runner" else "vocabulary"


def _imports(path: Path):
    """(target module under lm_probe_widgets, lazy) for every import in `path`; lazy is
    True inside a function or an `if TYPE_CHECKING:` block."""
    package = ["lm_probe_widgets", *path.relative_to(CORE.parent.parent).parts[1:-1]]
    found = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - child.level + 1]
                    target = [*base, *(child.module.split(".") if child.module else [])]
                    # `from . import events`: the names are modules
                    targets = (
                        [[*target, a.name] for a in child.names] if not child.module else [target]
                    )
                else:
                    targets = [child.module.split(".")]
                found.extend((t, inner) for t in targets if t[0] == "lm_probe_widgets")
            elif isinstance(child, ast.Import):
                found.extend(
                    (a.name.split("."), inner)
                    for a in child.names
                    if a.name.startswith("lm_probe_widgets")
                )
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def test_core_imports_follow_the_layout():
    modules = sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)
    assert {p.parent.name for p in modules} == {"core", "engine", "methods", "io"}
    wrong = []
    for path in modules:
        part = _part(path)
        for target, lazy in _imports(path):
            where = f"{path.relative_to(CORE)} imports {'.'.join(target)}"
            if target[1] in ("display", "widgets"):
                # the notebook layer: only the display conveniences, inside a method
                if target[1] == "widgets" or not lazy:
                    wrong.append(where)
                continue
            assert target[1] == "core", where
            name = target[2] if len(target) > 2 else ""
            if name == "runner" and part in ("engine", "methods") and lazy:
                continue  # type checking, or an isinstance inside a function
            if name not in ALLOWED[part]:
                wrong.append(where)
    assert not wrong, wrong


def test_importing_core_loads_no_notebook_code():
    code = (
        "import sys, pkgutil, importlib, lm_probe_widgets.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'lm_probe_widgets.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.startswith(('lm_probe_widgets.display',"
        " 'lm_probe_widgets.widgets'))]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=CORE.parents[1]
    )
    assert done.returncode == 0, done.stderr
