"""Metrics table: sortable columns, best values highlighted, CSV/JSON export.

Data crosses the widget wire as ``columns`` + ``rows`` (plain JSON, NaN as null).
The browser sorts by header clicks and syncs the sort back, so ``table.df``,
``table.to_csv()`` and ``table.to_json()`` in Python export exactly the rows and order
the user sees (every column: exports are data, the compact view is for reading). The
browser's CSV/JSON buttons ask the kernel for that same text and save what it sends:
exports are written here only.

For people, a wide metrics frame (a runner's has ~26 columns) opens in a compact view:
probe, accuracy with its interval, F1, Matthews, test log-loss, state, and the control
and baseline columns when present (``display.columns``), numbers with 3 decimals; the
"All columns" button shows the rest.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..display.columns import (
    COMPACT,
    best_positions,
    better_direction,
    better_hint,
    compact_columns,
    format_ci,
    format_number,
)
from ..display.metrics_table import column_spec
from ._assets import css_text, esm_source
from .snapshot import SnapshotDisplay, with_snapshot

REFRESH_ON = ("probe_finished", "fit_finished")
COMPACT_MIN_COLUMNS = 9  # narrower frames are shown whole


def best_direction(name: str, kind: str) -> str | None:
    """Which value of a column is best: `display.columns.better_direction` (the one
    rule; kept here under the name this module always had)."""
    return better_direction(name, kind)


def _cell(value: Any, kind: str) -> Any:
    """One value as JSON for the wire: NaN/None -> None, numpy scalars -> Python."""
    if value is None:
        return None
    if kind == "number":
        try:
            f = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(f):
            return None
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        return f
    if kind == "bool":
        try:
            if value != value:  # NaN in an object column
                return None
        except Exception:
            pass
        return bool(value)
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        pass
    return str(value)


def _is_frame(data: Any) -> bool:
    import pandas as pd

    return isinstance(data, pd.DataFrame)


def _kind(series: Any) -> str:
    from pandas.api import types

    if types.is_bool_dtype(series):
        return "bool"
    if types.is_numeric_dtype(series):
        return "number"
    return "string"


def frame_to_table(
    df: Any, index_name: str | None = None, best: Mapping[str, str | None] | None = None
) -> tuple[list, list, Any]:
    """``(columns, rows, source)`` for a DataFrame; a named or non-range index becomes the
    first column (its name, or ``index_name``, or "index")."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"MetricsTable needs a pandas DataFrame or a ProbeRunner, got {type(df).__name__}"
        )
    flat = df
    if df.index.name is not None or not isinstance(df.index, pd.RangeIndex):
        name = str(df.index.name or index_name or "index")
        flat = df.reset_index(names=[name]) if df.index.nlevels == 1 else df.reset_index()
    names = [str(c) for c in flat.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate column names in the table: {dupes}")
    best = dict(best or {})
    unknown = set(best) - set(names)
    if unknown:
        raise ValueError(f"`best` names columns that do not exist: {sorted(unknown)}")
    columns = []
    kinds = []
    for name, col in zip(names, flat.columns, strict=True):
        kind = _kind(flat[col])
        spec = column_spec(name, names, kind)  # the static table's rules, one home
        direction = best[name] if name in best else spec["best"]
        if direction not in (None, "min", "max"):
            raise ValueError(f"best[{name!r}] must be 'min', 'max' or None, got {direction!r}")
        direction = direction if kind == "number" else None
        spec.update(best=direction, better=better_hint(direction), compact=False)
        columns.append(spec)
        kinds.append(kind)
    _mark_compact(columns, flat is not df)
    rows = [
        [_cell(v, k) for v, k in zip(rec, kinds, strict=True)]
        for rec in flat.itertuples(index=False, name=None)
    ]
    for j, c in enumerate(columns):  # the browser highlights and sorts as told
        values = [r[j] for r in rows]
        c["best_rows"] = best_positions(values, c["best"])
        c["ascending"], c["descending"] = sort_orders(values)
        c["first_descending"] = c["best"] == "max"  # the first click puts the best first
    return columns, rows, df


def sort_orders(values: Sequence[Any]) -> tuple[list[int], list[int]]:
    """A column's row positions sorted ascending and descending: stable (ties keep
    their order), missing values last both ways. The table's one sort rule: the
    browser shows these orders, and the exports follow the same ones."""
    present = [i for i, v in enumerate(values) if v is not None]
    missing = [i for i, v in enumerate(values) if v is None]
    up = sorted(present, key=lambda i: values[i])
    down = sorted(present, key=lambda i: values[i], reverse=True)
    return up + missing, down + missing


def _mark_compact(columns: list[dict[str, Any]], has_index: bool) -> None:
    """Rank the compact view's columns (the index column first) when the frame is wide
    and looks like metrics; a narrow or other frame keeps every column, in order."""
    names = [c["name"] for c in columns]
    chosen = compact_columns(names)
    if len(names) < COMPACT_MIN_COLUMNS or len([c for c in chosen if c in COMPACT]) < 2:
        chosen = names
    first = [names[0]] if has_index and names and names[0] not in chosen else []
    rank = {n: i + 1 for i, n in enumerate(first + chosen)}
    for c in columns:
        c["compact"] = rank.get(c["name"])  # position in the compact view (1 = first), or None


def _scalar(value: Any) -> str:
    """A number or bool as JSON writes it (shortest round-trip digits, true/false)."""
    return json.dumps(value)


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    text = _scalar(value) if isinstance(value, (bool, int, float)) else str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return _scalar(value)
    return json.dumps(str(value), ensure_ascii=False)


EXPORTS = {"csv": "text/csv;charset=utf-8", "json": "application/json"}


class MetricsTable(SnapshotDisplay, anywidget.AnyWidget):
    """A sortable table of probe metrics with best values highlighted and exports.

    ``MetricsTable(runner.metrics)`` shows a DataFrame; ``MetricsTable(runner)``
    also refreshes itself when probes finish. Click a header to sort; ``table.df``,
    ``table.to_csv()`` and ``table.to_json()`` follow the sort shown in the browser.
    ``best={"col": "min"|"max"|None}`` overrides which value counts as best
    (default: min for names containing loss/mdl/bits, none for counts, else max).
    """

    _esm = esm_source("table")
    _css = css_text("table")

    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows = traitlets.List(traitlets.List()).tag(sync=True)
    sort = traitlets.Dict().tag(sync=True)  # {"column": str, "descending": bool} or {}
    title = traitlets.Unicode("").tag(sync=True)
    filename = traitlets.Unicode("metrics").tag(sync=True)
    max_height = traitlets.Int(480).tag(sync=True)
    show_all = traitlets.Bool(False).tag(sync=True)  # the "All columns" toggle

    def __init__(
        self,
        data: Any,
        *,
        best: Mapping[str, str | None] | None = None,
        sort: Mapping[str, Any] | None = None,
        title: str = "",
        filename: str = "metrics",
        live: bool = True,
        **kwargs: Any,
    ) -> None:
        self._best = dict(best or {})
        self._unsubscribe: Callable[[], None] | None = None
        self._runner = None
        if not _is_frame(data) and hasattr(getattr(data, "events", None), "subscribe"):
            self._runner = data
            frame = self._runner_frame()
            if live:
                self._unsubscribe = data.events.subscribe(self._on_event)
        else:
            frame = data
        columns, rows, source = frame_to_table(frame, "probe", self._best)
        self._source = source
        super().__init__(columns=columns, rows=rows, title=title, filename=filename, **kwargs)
        if sort:
            self.sort = dict(sort)
        self.on_msg(self._on_custom_msg)

    # -- data ---------------------------------------------------------------------------
    def _runner_frame(self) -> Any:
        import pandas as pd

        try:
            frame = self._runner.metrics
        except Exception:  # nothing fitted yet: start empty, fill on the first event
            frame = None
        return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()

    def update(self, df: Any) -> None:
        """Show new data, keeping the current sort when its column still exists (the
        static snapshot in the output follows)."""
        self._set_data(df)
        self.refresh_snapshot()

    def _set_data(self, df: Any) -> None:
        columns, rows, source = frame_to_table(df, "probe", self._best)
        self._source = source
        names = {c["name"] for c in columns}
        with self.hold_sync():
            if self.sort.get("column") not in names:
                self.sort = {}
            self.columns = columns
            self.rows = rows

    def _on_event(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        if kind in REFRESH_ON:
            self._set_data(self._runner_frame())
        if kind == "fit_finished":  # the static copy once per fit, not per probe
            self.refresh_snapshot()

    @traitlets.observe("sort", "show_all")
    def _on_view_change(self, change: dict[str, Any]) -> None:
        """A sort clicked in the browser: the static copy follows (its own output)."""
        self.snapshot_changed()

    def close(self) -> None:
        """Stop following the runner and close the widget."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().close()

    @traitlets.validate("sort")
    def _validate_sort(self, proposal: dict[str, Any]) -> dict[str, Any]:
        value = dict(proposal["value"] or {})
        if not value or value.get("column") in (None, ""):
            return {}
        names = [c["name"] for c in self.columns]
        if value["column"] not in names:
            raise traitlets.TraitError(f"cannot sort by {value['column']!r}: columns are {names}")
        return {"column": str(value["column"]), "descending": bool(value.get("descending"))}

    # -- the current view ---------------------------------------------------------------
    def order(self) -> list[int]:
        """Row positions in display order: stable sort, missing values last."""
        column = next((c for c in self.columns if c["name"] == self.sort.get("column")), None)
        if column is None:
            return list(range(len(self.rows)))
        return list(column["descending" if self.sort.get("descending") else "ascending"])

    @property
    def df(self) -> Any:
        """The source DataFrame in the order shown in the browser (a copy)."""
        return self._source.iloc[self.order()].copy()

    def to_csv(self, path: str | Path | None = None) -> str:
        """The view as CSV (same text as the browser's download); written to `path` if given."""
        names = [c["name"] for c in self.columns]
        lines = [",".join(_csv_field(n) for n in names)]
        lines += [",".join(_csv_field(v) for v in self.rows[i]) for i in self.order()]
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        """The view as a JSON list of records (same text as the browser's download)."""
        names = [json.dumps(c["name"], ensure_ascii=False) for c in self.columns]
        records = []
        for i in self.order():
            pairs = zip(names, self.rows[i], strict=True)
            fields = [f"    {k}: {_json_value(v)}" for k, v in pairs]
            records.append("  {\n" + ",\n".join(fields) + "\n  }" if fields else "  {}")
        text = "[\n" + ",\n".join(records) + "\n]" if records else "[]"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def export_message(self, fmt: str) -> dict[str, str]:
        """What the browser's CSV/JSON button downloads: the text of `to_csv()` or
        `to_json()` for the current view, with its file name and type."""
        if fmt not in EXPORTS:
            raise ValueError(f"export format must be one of {sorted(EXPORTS)}, got {fmt!r}")
        text = self.to_csv() if fmt == "csv" else self.to_json()
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.filename or "metrics")
        return {
            "type": "export",
            "format": fmt,
            "filename": f"{base}.{fmt}",
            "mime": EXPORTS[fmt],
            "text": text,
        }

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "export":
            if content.get("format") in EXPORTS:
                self.send(self.export_message(content["format"]))

    def __repr__(self) -> str:
        return (
            f"MetricsTable({len(self.rows)} rows x {len(self.columns)} columns, "
            f"sort={self.sort or None})"
        )

    def visible_columns(self) -> list[str]:
        """Column names of the view people read (compact unless "All columns")."""
        names = [c["name"] for c in self.columns]
        ranked = sorted((c["compact"], c["name"]) for c in self.columns if c.get("compact"))
        return names if self.show_all or not ranked else [n for _r, n in ranked]

    def summary(self, max_rows: int = 60) -> str:
        """The compact view as aligned plain text (3 decimals, intervals beside their
        metric), in the browser's sort order; fits a terminal."""
        index = {c["name"]: j for j, c in enumerate(self.columns)}
        names = self.visible_columns()
        header = [self.columns[index[n]].get("label", n) for n in names]
        lines = []
        for i in self.order()[:max_rows]:
            cells = []
            for n in names:
                col, value = self.columns[index[n]], self.rows[i][index[n]]
                text = (
                    "–"
                    if value is None
                    else (format_number(value) if col["kind"] == "number" else str(value))
                )
                ci = col.get("ci")
                if ci and value is not None:
                    band = format_ci(self.rows[i][index[ci[0]]], self.rows[i][index[ci[1]]])
                    text += f" {band}" if band else ""
                cells.append(text[:40])
            lines.append(cells)
        widths = [max([len(h)] + [len(r[k]) for r in lines]) for k, h in enumerate(header)]
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
        out += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines
        ]
        if len(self.rows) > max_rows:
            out.append(f"... {len(self.rows) - max_rows} more rows")
        return "\n".join(out)

    def snapshot_html(self) -> str:
        from .snapshot import table_html

        return table_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget, plus a plain-text and an escaped static HTML table of the
        same view for places without a widget manager (nbconvert, GitHub, terminals,
        a notebook reopened without its kernel)."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self)
