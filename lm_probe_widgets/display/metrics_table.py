"""The static metrics table: one builder for the runner's HTML repr and the metrics
table widget's static copy, so both show the same headings, numbers, intervals, best
marks and sort marks. Columns come as specs (the dicts `MetricsTable` sends its browser
view: name, kind, label, best direction, decimals, interval columns); `column_spec`
makes one from a column name by the rules of `display.columns`.

Only the standard library is imported (a repr must stay cheap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .columns import (
    DECIMALS,
    UNRANKED_PREFIXES,
    best_positions,
    better_direction,
    better_hint,
    ci_columns,
    column_label,
    format_ci,
    format_number,
)
from .html import _e


def column_spec(name: str, names: Sequence[str], kind: str = "number") -> dict[str, Any]:
    """A column's spec by the rules of `display.columns`: heading, which value is
    best, decimals, and its interval columns among `names`."""
    return {
        "name": name,
        "kind": kind,
        "best": better_direction(name, kind),
        "label": column_label(name),
        "decimals": DECIMALS,
        "ci": ci_columns(name, list(names)),
    }


def best_rows(rows: Sequence[Mapping[str, Any]], column: str) -> set[int]:
    """Indices of the rows holding the best value of `column` (ties all marked), by
    the rule of `display.columns.better_direction`."""
    return set(best_positions([r.get(column) for r in rows], better_direction(column)))


def _cell_text(value: Any, spec: Mapping[str, Any]) -> str:
    if spec.get("kind", "number") == "number":
        return format_number(value, int(spec.get("decimals", DECIMALS)))
    return "–" if value is None else str(value)


def _metric_cell(
    row: Mapping[str, Any],
    col: str,
    is_best: bool,
    spec: Mapping[str, Any] | None = None,
    key: bool = False,
) -> str:
    """One cell: the value as text, its interval under it, best marked; `key`: the
    column that names the row (in monospace)."""
    spec = spec if spec is not None else column_spec(col, list(row))
    text = _e(_cell_text(row.get(col), spec))
    ci = spec.get("ci")
    if ci:
        band = format_ci(row.get(ci[0]), row.get(ci[1]), int(spec.get("decimals", DECIMALS)))
        text += f'<span class="lpw-ci">{_e(band)}</span>' if band else ""
    classes = ["lpw-num"] if spec.get("kind", "number") == "number" else []
    classes += ["lpw-mono"] if key else []
    classes += ["lpw-best"] if is_best else []
    cls = f' class="{" ".join(classes)}"' if classes else ""
    title = ' title="best in column"' if is_best else ""
    return f'<td{cls} data-col="{_e(col)}"{title}>{text}</td>'


def _metric_header(spec: Mapping[str, Any], sort: Mapping[str, Any]) -> str:
    """A heading: the label, an arrow for the better direction (its words in the
    tooltip), and the sort mark when the rows are sorted by this column."""
    name, label = str(spec["name"]), str(spec.get("label") or spec["name"])
    number = spec.get("kind", "number") == "number"
    direction = spec.get("best") if number else None
    if direction in ("min", "max"):
        title = f"{name}: {better_hint(direction)}"
        label += " ↓" if direction == "min" else " ↑"
    elif number:
        why = "a reference, not ranked" if name.startswith(UNRANKED_PREFIXES) else "not ranked"
        title = f"{name}: {why}"
    else:  # words for a column whose heading is not its name
        title = name if label != name else ""
    aria = ""
    if sort.get("column") == name:
        aria = f' aria-sort="{"descending" if sort.get("descending") else "ascending"}"'
        label += " ▼" if sort.get("descending") else " ▲"
    cls = ' class="lpw-num"' if number else ""
    tip = f' title="{_e(title)}"' if title else ""
    return f"<th{cls}{tip}{aria}>{_e(label)}</th>"


def metrics_table_html(
    specs: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    cls: str,
    *,
    order: Sequence[int] | None = None,
    sort: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> str:
    """The table of the columns in `specs` (in that order) for `rows` (mappings from
    column name to value; interval columns may be among them, unshown), rows in
    `order`; each column's best values marked (`display.columns.best_positions`, over
    all rows), the sorted column marked by `sort` ({"column", "descending"}). `key`:
    the column naming each row (monospace, and the row's ``data-probe``)."""
    sort = dict(sort or {})
    order = range(len(rows)) if order is None else order
    best = {
        str(s["name"]): set(best_positions([r.get(s["name"]) for r in rows], s.get("best")))
        if s.get("kind", "number") == "number"
        else set()
        for s in specs
    }
    head = "".join(_metric_header(s, sort) for s in specs)
    body = []
    for i in order:
        r = rows[i]
        cells = "".join(
            _metric_cell(r, str(s["name"]), i in best[str(s["name"])], s, s["name"] == key)
            for s in specs
        )
        tag = f'<tr data-probe="{_e(r.get(key))}">' if key is not None else "<tr>"
        body.append(f"{tag}{cells}</tr>")
    return f'<table class="{cls}"><tr>{head}</tr>{"".join(body)}</table>'
