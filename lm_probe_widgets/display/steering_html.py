"""A `SteeringResult` as static HTML: the push, the probe's read-out before and after,
the next tokens unchanged and steered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .html import _e, _wrap


def _tokens(top: Sequence[tuple[str, float]], k: int = 3) -> str:
    return ", ".join(f'<span class="lpw-mono">{_e(repr(t))}</span> {p:.3g}' for t, p in top[:k])


def steering_html(result: Any) -> str:
    """A `SteeringResult` as a reader wants it: how hard the push was (against the mean
    activation), the probe's read-out before and after, and per input the likeliest next
    tokens unchanged and steered with the KL between them (and the generated texts)."""
    push = result.scale * result.direction_norm
    rel = (
        f" ({push / result.activation_norm:.2f}× the mean activation norm)"
        if (result.activation_norm)
        else ""
    )
    facts = [
        ("site", f'<span class="lpw-mono">{_e(result.submodule)}</span>'),
        ("push", _e(f"scale {result.scale:g} × |direction| {result.direction_norm:.3g}{rel}")),
    ]
    delta = result.delta
    if delta is not None:
        i = result.classes.index(result.positive)
        before, after = result.proba_before[:, i].mean(), result.proba_after[:, i].mean()
        facts.append(
            (
                f"probe P({result.positive})",
                _e(f"{before:.3f} → {after:.3f} ({after - before:+.3f}, mean of {len(delta)})"),
            )
        )
    if result.kl is not None and len(result.kl):
        facts.append(("next-token KL", _e(f"{float(result.kl.mean()):.4g} nats (mean)")))
    parts = [
        '<div class="lpw-head"><span class="lpw-title">SteeringResult</span></div>',
        '<dl class="lpw-facts">',
        *(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts),
        "</dl>",
    ]
    rows = []
    for k, (b, a) in enumerate(zip(result.top_before, result.top_after, strict=False)):
        kl = f"{result.kl[k]:.4f}" if result.kl is not None else "–"
        rows.append(
            f'<tr><td class="lpw-num">{k}</td><td>{_tokens(b)}</td><td>{_tokens(a)}</td>'
            f'<td class="lpw-num">{_e(kl)}</td></tr>'
        )
    if rows:
        parts.append(
            '<h4>Next token, per input</h4><table class="lpw-metrics"><tr>'
            '<th class="lpw-num">input</th><th>unchanged (top 3)</th><th>steered (top 3)</th>'
            '<th class="lpw-num">KL (nats)</th></tr>' + "".join(rows) + "</table>"
        )
    texts = list(zip(result.text_before or [], result.text_after or [], strict=False))
    if texts:
        cells = "".join(
            f'<tr><td class="lpw-num">{k}</td><td class="lpw-wrap">{_e(b)}</td>'
            f'<td class="lpw-wrap">{_e(a)}</td></tr>'
            for k, (b, a) in enumerate(texts)
        )
        parts.append(
            '<h4>Generated</h4><table class="lpw-metrics"><tr><th class="lpw-num">input</th>'
            f"<th>unchanged</th><th>steered</th></tr>{cells}</table>"
        )
    return _wrap(repr(result), "".join(parts), "steering")
