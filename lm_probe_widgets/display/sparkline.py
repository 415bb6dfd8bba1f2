"""The loss curve as a tiny inline SVG, hand-built so a repr never imports matplotlib:
used by the runner's probe table and the probe's training summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.engine.states import ProbeState
from .columns import finite
from .html import _e, _record, fmt_value
from .states import ENDED_EARLY, probe_state


def _series(history: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[float, float]], str]:
    """(step, loss) points to draw: validation loss, else training loss."""
    for key in ("val_loss", "train_loss"):
        pts = []
        for h in history:
            s, v = finite(h.get("step")), finite(h.get(key))
            if s is not None and v is not None:
                pts.append((s, v))
        if pts:
            return pts, ("validation loss" if key == "val_loss" else "training loss")
    return [], "validation loss"


def sparkline_svg(
    history: Sequence[Mapping[str, Any]],
    best_step: int | None = None,
    stop_step: int | None = None,
    *,
    stop_state: str = ProbeState.STOPPED.value,
    width: int = 120,
    height: int = 26,
) -> str:
    """A tiny inline SVG of the loss curve (no matplotlib): the best point as a dot,
    an early/forced stop as a tick at the end in the colour of `stop_state`
    (display.states: red only for an error). Empty history -> a dash."""
    pts, what = _series(list(history))
    if not pts:
        return '<span class="lpw-muted">–</span>'
    pad = 3.0
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    sx = (width - 2 * pad) / (x1 - x0) if x1 > x0 else 0.0
    sy = (height - 2 * pad) / (y1 - y0) if y1 > y0 else 0.0

    def xy(s: float, v: float) -> tuple[float, float]:
        x = pad + (s - x0) * sx if sx else width / 2
        y = height - pad - (v - y0) * sy if sy else height / 2
        return round(x, 1), round(y, 1)

    coords = [xy(s, v) for s, v in pts]
    poly = " ".join(f"{x},{y}" for x, y in coords)
    label = (
        f"{what}: {fmt_value(ys[0])} at step {fmt_value(xs[0])} to {fmt_value(ys[-1])} "
        f"at step {fmt_value(xs[-1])}"
    )
    parts = [f'<polyline class="lpw-spark-line" points="{poly}"/>']
    if best_step is not None:
        near = min(range(len(pts)), key=lambda i: abs(pts[i][0] - best_step))
        bx, by = coords[near]
        parts.append(
            f'<circle class="lpw-spark-best" cx="{bx}" cy="{by}" r="2.5" '
            f'data-step="{_e(best_step)}"/>'
        )
        label += f"; best {fmt_value(pts[near][1])} at step {best_step}"
    if stop_step is not None:
        ex = coords[-1][0]
        colour = probe_state(stop_state)["color"]
        parts.append(
            f'<line class="lpw-spark-stop" x1="{ex}" y1="1" x2="{ex}" y2="{height - 1}" '
            f'style="stroke: {_e(colour)}" data-step="{_e(stop_step)}"/>'
        )
        label += f"; stopped at step {stop_step}"
    return (
        f'<svg class="lpw-spark" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
        f"<title>{_e(label)}</title>{''.join(parts)}</svg>"
    )


def _probe_sparkline(probe: Any, **kw: Any) -> str:
    rec = _record(probe)
    if rec is None:
        return '<span class="lpw-muted">–</span>'
    stop = rec.steps if rec.state in ENDED_EARLY else None
    return sparkline_svg(list(rec.history), rec.best_step, stop, stop_state=rec.state, **kw)
