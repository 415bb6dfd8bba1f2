"""report.html: one standalone page (no external files) with the run's settings, the
layer sweep as an inline PNG and the metrics table.
"""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Any

from ..display.columns import format_number

_PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em;background:#fff;color:#222}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;"
    "border-bottom:1px solid #ddd}img.sweep{max-width:100%;height:auto}"
)

_H_NAME = re.compile(r"h(\d+)")


def sweep_frame(metrics: Any) -> tuple[Any, bool]:
    """The metrics to plot, on h[i] when every probe is one of `--layers`' numbered
    layers (h0 = the embeddings, h5 = the output of block 5: the table's names), not
    on the submodules' own block indices (embeddings at -1, h5 at 4). True if so."""
    ids = [_H_NAME.fullmatch(str(name)) for name in metrics.index]
    if not ids or not all(ids):
        return metrics, False
    return metrics.assign(submodule=[f"h[{m.group(1)}]" for m in ids]), True


def _draw_sweep(ax: Any, metrics: Any) -> None:
    """The library's layer-sweep plot; a plain accuracy-per-probe line if it fails, so a
    change in the display layer never costs the report its picture."""
    try:
        from ..display.sweep_plot import plot_layer_sweep

        frame, numbered = sweep_frame(metrics)
        plot_layer_sweep(frame, "accuracy", ax=ax)
        if numbered:
            ax.set_xlabel("layer i of h[i] (0 = embeddings, i = output of block i)")
    except Exception:
        ax.clear()
        acc = metrics["accuracy"].astype(float)
        ax.plot(range(len(acc)), acc.to_numpy(), marker="o")
        ax.set_xticks(range(len(acc)), [str(i) for i in acc.index], rotation=45, ha="right")
        ax.set_xlabel("probe")
        ax.set_ylabel("held-out accuracy")
        ax.grid(True, alpha=0.3)


def sweep_png(metrics: Any) -> str | None:
    """Held-out accuracy by layer as a base64 PNG, or None when no accuracy was measured.

    Drawn on a bare Agg Figure (not pyplot): nothing registers it globally, so nothing
    needs closing and no window or backend switch can happen in a terminal."""
    if "accuracy" not in metrics.columns or not metrics["accuracy"].astype(float).notna().any():
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.6), layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    _draw_sweep(fig.add_subplot(), metrics)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, facecolor="white")
    fig.clear()
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _sweep_alt(metrics: Any) -> str:
    """Alt text that carries the numbers, for readers who cannot see the plot."""
    acc = metrics["accuracy"].astype(float).dropna()
    values = ", ".join(f"{name} {format_number(v)}" for name, v in list(acc.items())[:40])
    return f"Line plot of held-out accuracy by layer: {values}"


def _sweep_section(metrics: Any) -> str:
    png = sweep_png(metrics)
    if png is None:
        return "<p>No held-out accuracy was measured, so there is no layer plot.</p>"
    alt = html.escape(_sweep_alt(metrics))
    return f'<img class="sweep" alt="{alt}" src="data:image/png;base64,{png}">'


def _metrics_section(runner: Any, metrics: Any) -> str:
    """The runner's own HTML repr when the display layer provides one, else an escaped
    metrics table with the table's number format."""
    repr_html = getattr(runner, "_repr_html_", None)
    if callable(repr_html):
        try:
            body = repr_html()
        except Exception:  # the report must not fail the run
            body = None
        if body:
            return body
    return metrics.to_html(escape=True, float_format=format_number, na_rep="")


def report_html(runner: Any, metrics: Any, info: dict[str, Any], command: str = "demo") -> str:
    """A standalone page (no external files): run info, the layer sweep, the table."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in info.items()
    )
    title = html.escape(f"lm-probe {command}: {info.get('model')} on {info.get('data')}")
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_PAGE_STYLE}</style></head><body>"
        f'<h1>{title}</h1><table class="run-info">{rows}</table>'
        f"<h2>Held-out accuracy by layer</h2>{_sweep_section(metrics)}"
        f"<h2>Per-layer metrics</h2>{_metrics_section(runner, metrics)}</body></html>\n"
    )
