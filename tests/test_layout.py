"""core/'s layout holds: each subpackage imports only what its __init__ says it may."""

from __future__ import annotations

import ast
import functools
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


@functools.cache  # both tests walk the same files
def _imports(path: Path) -> tuple:
    """(target module under lm_probe_widgets, where) for every import in `path`; where
    is "top" (runs at import time), "function" (inside a function) or "typing" (an
    `if TYPE_CHECKING:` block, never run). `from .engine import events` targets the
    module `engine.events`."""
    package = ["lm_probe_widgets", *path.relative_to(CORE.parent.parent).parts[1:-1]]
    found = []

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and where == "top":
                inner = "function"
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "typing"
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - child.level + 1]
                    target = [*base, *(child.module.split(".") if child.module else [])]
                    # `from . import events`, `from .engine import events`: modules
                    targets = [
                        [*target, a.name]
                        if not child.module or _is_module([*target, a.name])
                        else target
                        for a in child.names
                    ]
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

    visit(ast.parse(path.read_text()), "top")
    return tuple(found)


def _is_module(target: list[str]) -> bool:
    where = CORE.parent.joinpath(*target[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _core_modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def test_core_imports_follow_the_layout():
    modules = _core_modules()
    assert {p.parent.name for p in modules} == {"core", "engine", "methods", "io"}
    wrong = []
    for path in modules:
        part = _part(path)
        for target, kind in _imports(path):
            lazy = kind != "top"
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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_import_graph() -> dict[str, set[str]]:
    """core's modules and what each imports when it runs: at import time or inside a
    function (`if TYPE_CHECKING:` blocks never run, and are left out)."""
    paths = {_module_name(p): p for p in _core_modules()}
    graph = {}
    for name, path in paths.items():
        targets = {".".join(t) for t, kind in _imports(path) if kind != "typing"}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (a path that comes back to its start), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_core_has_no_import_circle():
    graph = core_import_graph()
    assert "lm_probe_widgets.core.engine.events" in graph["lm_probe_widgets.core.runner"]
    cycle = import_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
    # the finder sees a circle closed inside a function: steering naming ProbeRunner
    # in `steer`, as it once did (runner -> methods -> erasure -> steering -> runner)
    graph["lm_probe_widgets.core.methods.steering"].add("lm_probe_widgets.core.runner")
    cycle = import_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and "lm_probe_widgets.core.runner" in cycle


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
