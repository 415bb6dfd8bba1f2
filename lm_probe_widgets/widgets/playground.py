"""Probe playground: type a sentence, see what every layer's probe thinks of it, and why.

``ProbePlayground(runner, text="the film was great")`` shows, for the typed sentence:

* a strip along the layers: one cell per fitted probe (``runner.configs`` order) with
  its predicted class and that class's probability (colour intensity), and a small bar
  per class;
* for one chosen probe, a per-token heatmap: each token coloured by the probe applied
  to that token's own activation (token-level features of the same read site), on a
  fixed diverging scale centred at the decision boundary.

Python computes everything, colours included (widgets.playground_view); the browser
only lays out ``result``. The browser sends the text (debounced as you type) through
the synced ``text`` trait; an exception while computing becomes the ``error`` trait,
shown in the widget, never a crash.

A static HTML copy of the current result (widgets.playground_html) is shown beside the
live view (its own output, see ``widgets.snapshot``), for a notebook reopened without
its kernel or exported with nbconvert; typing and changes made in Python refresh it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anywidget
import traitlets

from ..display.columns import format_number
from ._assets import css_text, esm_source
from .playground_html import playground_html
from .playground_view import TOKEN_NOTE, best_probe, compute, token_values
from .snapshot import SnapshotDisplay, with_snapshot


class ProbePlayground(SnapshotDisplay, anywidget.AnyWidget):
    """Type a sentence; see every probe's prediction along the layers and, for one
    probe, a per-token heatmap of its score on each token's activation.

    ``probe`` names the probe whose heatmap is shown (default: the one with the best
    held-out accuracy, else the first fitted one); ``target`` the class it is coloured
    for (default "": the last class). ``class_names`` ({value: name} or a list indexed
    by integer classes, e.g. ``["negative", "positive"]``) shows names, not 0/1. ``result``
    holds everything drawn (also handy in Python); ``error`` the last failure's message.
    ``refresh()`` computes again for the same text, e.g. once the runner is refitted.
    """

    _esm = esm_source("playground")
    _css = css_text("playground")

    text = traitlets.Unicode("").tag(sync=True)
    result = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    probe = traitlets.Unicode("").tag(sync=True)
    target = traitlets.Unicode("").tag(sync=True)
    debounce_ms = traitlets.Int(300).tag(sync=True)
    note = traitlets.Unicode(TOKEN_NOTE).tag(sync=True)

    def __init__(
        self,
        runner: Any,
        text: str = "",
        class_names: Mapping[Any, str] | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.runner = runner
        self.class_names = class_names
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_msg)
        self._update(text)
        self.text = text

    # -- computing ----------------------------------------------------------------------
    def _update(self, text: str) -> None:
        try:
            result = compute(self.runner, text, self.class_names)
            error = ""
        except Exception as exc:  # shown in the widget; the kernel keeps going
            result = {"text": text, "tokens": [], "probes": [], "skipped": [], "truncated": False}
            error = f"{type(exc).__name__}: {exc}"
        names = [p["name"] for p in result["probes"]]
        with self.hold_sync():
            self.result = result
            self.error = error
            if names and self.probe not in names:
                self.probe = best_probe(self.runner, names) or names[0]

    def refresh(self) -> None:
        """Compute the current text again (e.g. after the runner fitted more probes)."""
        self._update(self.text)
        self.refresh_snapshot()

    @traitlets.observe("text")
    def _on_text(self, change: dict[str, Any]) -> None:
        if change["new"] != self.result.get("text"):
            self._update(change["new"])
        self.snapshot_changed()

    @traitlets.observe("probe", "target")
    def _on_choice(self, change: dict[str, Any]) -> None:
        self.snapshot_changed()

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # the view lost focus: now the snapshot may re-render it
        if isinstance(content, dict) and content.get("type") == "commit":
            self.catch_up_snapshot()

    # -- reading ------------------------------------------------------------------------
    def chosen(self) -> tuple[dict[str, Any] | None, int]:
        """(the heatmap's probe entry of ``result``, its class index), or (None, -1)."""
        entries = self.result.get("probes") or []
        entry = next((p for p in entries if p["name"] == self.probe), None)
        if entry is None and entries:
            entry = entries[0]
        if entry is None:
            return None, -1
        classes = entry["classes"]
        index = classes.index(self.target) if self.target in classes else len(classes) - 1
        return entry, index

    def summary(self) -> str:
        """The result as plain text: one line per probe, then the chosen heatmap."""
        lines = [f"ProbePlayground: {self.result.get('text', self.text)!r}"]
        if self.error:
            lines.append(f"error: {self.error}")
        for p in self.result.get("probes") or []:
            top = p["top"]
            if p.get("task") == "regression":
                value = p.get("value")
                shown = format_number(value) if value is not None else "–"
                lines.append(f"  {p['name']}: predicted {shown}")
                continue
            lines.append(
                f"  {p['name']}: {p['classes'][top]} ({format_number(p['proba'][top] or 0.0)})"
            )
        entry, c = self.chosen()
        if entry is not None and self.result.get("tokens"):
            values, _ = token_values(entry, c)
            words = [
                f"{t['text']!r}:{format_number(v) if v is not None else '–'}"
                for t, v in zip(self.result["tokens"], values, strict=True)
            ]
            shows = entry.get("legend_label") or f"toward {entry['classes'][c]}"
            lines.append(f"  tokens ({entry['name']}, {shows}): " + " ".join(words))
        return "\n".join(lines)

    def snapshot_html(self) -> str:
        return playground_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget plus a static, escaped HTML snapshot of the current result."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self)

    def __repr__(self) -> str:
        n = len(self.result.get("probes") or [])
        return f"ProbePlayground({n} probes, text={self.text!r})"
