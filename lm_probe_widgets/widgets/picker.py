"""Submodule picker: choose which activations to probe from the model's module tree.

The tree (names, module classes, output shapes from a dry run) is computed once in
Python and sent to the browser; the selection comes back as a list of submodule
strings such as ``"transformer.h.3.mlp.output"`` that ``ProbeConfig`` accepts.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

import anywidget
import traitlets

from ._assets import css_text, esm_source
from .snapshot import SnapshotDisplay, with_snapshot

SUFFIXES = (".output", ".input")


def _module_tree(model: Any) -> list[dict[str, Any]]:
    """The core's module tree: names, classes, dry-run output shapes, whether each runs."""
    from lm_probe_widgets.core.engine.submodules import module_tree

    return list(module_tree(model))


def _jsonable_shape(shape: Any) -> list[int] | None:
    if shape is None:
        return None
    try:
        return [int(d) for d in shape]
    except (TypeError, ValueError):
        return None


def normalise_tree(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in pre-order with name/type/depth/parent/shape/runs; the root ("") dropped.

    Depth and parent are derived from the dotted name so a tree from any source
    (core, a saved list, a synthetic test tree) renders the same way.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        name = str(row.get("name", ""))
        if not name or name in seen:
            continue
        seen.add(name)
        runs = row.get("runs")
        out.append(
            {
                "name": name,
                "type": str(row.get("type", "")),
                "depth": name.count("."),
                "parent": name.rsplit(".", 1)[0] if "." in name else "",
                "shape": _jsonable_shape(row.get("shape")),
                "runs": None if runs is None else bool(runs),
            }
        )
    # Parents must precede children for the collapsible view; keep order otherwise.
    index = {r["name"]: i for i, r in enumerate(out)}
    for r in out:
        p = r["parent"]
        if p and p in index and index[p] > index[r["name"]]:
            return _preorder(out)
    return out


def _preorder(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    children: dict[str, list[dict[str, Any]]] = {}
    names = {r["name"] for r in rows}
    for r in rows:
        parent = r["parent"]
        while parent and parent not in names:  # gaps in the tree: attach higher up
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        children.setdefault(parent, []).append(r)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children.get("", [])))
    while stack:
        r = stack.pop()
        ordered.append(r)
        stack.extend(reversed(children.get(r["name"], [])))
    return ordered


def layer_pattern(name: str) -> str:
    """The name with every numeric part (a layer index) replaced by ``*``."""
    return ".".join("*" if part.isdigit() else part for part in name.split("."))


def layer_groups(names: Sequence[str]) -> list[dict[str, Any]]:
    """ "All layers' X" shortcuts: names sharing a pattern such as ``model.layers.*.mlp``."""
    groups: dict[str, list[str]] = {}
    for name in names:
        pattern = layer_pattern(name)
        if pattern != name:
            groups.setdefault(pattern, []).append(name)
    return [{"pattern": p, "members": m} for p, m in groups.items() if len(m) >= 2]


class SubmodulePicker(SnapshotDisplay, anywidget.AnyWidget):
    """Pick submodules to probe from a model's module tree.

    ``picker.selected`` is the list of chosen submodule strings (``"<module>.output"``),
    synced both ways with the browser; ``picker.to_configs(classes, ...)`` turns it
    into ``ProbeConfig`` objects with shared settings.

    A static copy of the selection is shown beside the live view (for a notebook
    reopened without its kernel); clicks and changes made in Python refresh it.
    """

    _esm = esm_source("picker")
    _css = css_text("picker")

    tree = traitlets.List(traitlets.Dict()).tag(sync=True)
    groups = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    height = traitlets.Int(360).tag(sync=True)

    def __init__(
        self,
        model: Any = None,
        selected: Iterable[str] = (),
        *,
        tree: Iterable[dict[str, Any]] | None = None,
        height: int = 360,
        **kwargs: Any,
    ) -> None:
        if (model is None) == (tree is None):
            raise TypeError("SubmodulePicker needs exactly one of `model` or `tree=`")
        rows = normalise_tree(_module_tree(model) if tree is None else tree)
        if not rows:
            raise ValueError("the model has no submodules to pick from")
        self._names = [r["name"] for r in rows]
        self._order = {n: i for i, n in enumerate(self._names)}
        super().__init__(tree=rows, groups=layer_groups(self._names), height=height, **kwargs)
        self.selected = list(selected)

    # -- validation -------------------------------------------------------------------
    def _split(self, item: str) -> tuple[str, str]:
        for suffix in SUFFIXES:
            if item.endswith(suffix) and item[: -len(suffix)] in self._order:
                return item[: -len(suffix)], suffix
        if item in self._order:  # a bare module name means its output
            return item, ".output"
        close = difflib.get_close_matches(item, [n + ".output" for n in self._names], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise traitlets.TraitError(
            f"{item!r} is not a submodule of this model (expected '<module>.output'){hint}"
        )

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> list[str]:
        if not hasattr(self, "_order"):
            return list(proposal["value"])
        items = {}
        for item in proposal["value"]:
            name, suffix = self._split(str(item))
            items[name + suffix] = (self._order[name], suffix)
        return sorted(items, key=lambda k: items[k])

    @traitlets.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self.snapshot_changed()

    # -- Python-side selection helpers ------------------------------------------------
    @property
    def modules(self) -> list[str]:
        """Module names of the selection, without the ``.output`` suffix."""
        self.catch_up_snapshot()
        return [self._split(s)[0] for s in self.selected]

    def select(self, *patterns: str, suffix: str = ".output") -> SubmodulePicker:
        """Add modules matching glob patterns (``"model.layers.*.mlp"``) to the selection."""
        if suffix not in SUFFIXES:
            raise ValueError(f"suffix must be one of {SUFFIXES}, got {suffix!r}")
        chosen = list(self.selected)
        for pattern in patterns:
            base = pattern[: -len(suffix)] if pattern.endswith(suffix) else pattern
            hits = [n for n in self._names if fnmatch.fnmatchcase(n, base)]
            if not hits:
                raise ValueError(f"no submodule matches {pattern!r}")
            chosen += [n + suffix for n in hits]
        self.selected = chosen
        return self

    def clear(self) -> SubmodulePicker:
        """Empty the selection."""
        self.selected = []
        return self

    def to_configs(self, classes: Sequence[Any], **shared: Any) -> list[Any]:
        """One ``ProbeConfig`` per selected submodule, all with ``classes`` and ``shared``."""
        self.catch_up_snapshot()
        if not self.selected:
            raise ValueError("nothing is selected in the picker; click some submodules first")
        from lm_probe_widgets.core.config import ProbeConfig

        return [ProbeConfig(s, classes=list(classes), **shared) for s in self.selected]

    def __repr__(self) -> str:
        return f"SubmodulePicker({len(self.tree)} modules, selected={self.selected!r})"

    def summary(self) -> str:
        lines = [f"SubmodulePicker: {len(self.tree)} modules, {len(self.selected)} selected"]
        lines += [f"  {s}" for s in self.selected]
        return "\n".join(lines)

    def snapshot_html(self) -> str:
        from .snapshot import picker_html

        return picker_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self)
