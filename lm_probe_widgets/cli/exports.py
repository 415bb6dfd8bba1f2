"""The output folder: metrics.csv and metrics.json are the metrics table's own exports
(`MetricsTable.to_csv` / `to_json`: the text a notebook's CSV and JSON buttons give,
every number at full precision, missing values empty or null), metrics.json with the
run's settings beside them, and report.html.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..display.columns import finite
from .errors import CLIError
from .report import report_html

FILES = ("metrics.csv", "metrics.json", "report.html")


def _jsonable(v: Any) -> Any:
    """A run setting as JSON: non-finite numbers as null (`display.columns.finite`,
    the rule the table's exports follow), everything else as it is."""
    if isinstance(v, float):
        return finite(v)
    return v


def export_texts(metrics: Any, info: dict[str, Any]) -> tuple[str, str]:
    """(metrics.csv, metrics.json) for a metrics frame and the run's settings."""
    from ..widgets.table import MetricsTable

    table = MetricsTable(metrics)
    try:
        records = json.loads(table.to_json())
        csv = table.to_csv()
    finally:
        table.close()
    run = {k: _jsonable(v) for k, v in info.items()}
    return csv, json.dumps({"run": run, "metrics": records}, indent=1)


def write_outputs(out: Path, runner: Any, info: dict[str, Any], command: str) -> None:
    """metrics.csv, metrics.json (run info + one record per probe) and report.html,
    each made in full before any is written."""
    metrics = runner.metrics
    csv, data = export_texts(metrics, info)
    page = report_html(runner, metrics, info, command)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in zip(FILES, (csv, data, page), strict=True):
            (out / name).write_text(text, encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot write the results to {out}: {e}") from e
    print(f"wrote {', '.join(str(out / name) for name in FILES)}")
