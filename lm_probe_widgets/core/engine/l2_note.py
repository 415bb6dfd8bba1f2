"""What a reader of a probe's chosen L2 strength must know (the metrics' `l2_note`
and the probe's repr). Imports nothing, so a repr stays light (core.engine.l2_search
is where the strengths are searched)."""

from __future__ import annotations

from typing import Any


def l2_note(cfg: Any, rec: Any) -> str | None:
    """What a reader of a probe's chosen `l2` (its config `cfg`, its record `rec`) must
    know, for the metrics' `l2_note` and the probe's repr: it was chosen on the test
    set (validation="eval" without CV: the metrics are optimistic), after the final
    fit extended the grid past an edge it chose, or still on the edge of what was
    searched (the best strength may lie beyond it)."""
    if rec is None or not rec.refined or rec.best_l2 is None:
        return None
    notes = []
    if cfg.validation == "eval" and not rec.cross_validated:
        notes.append("chosen on the test set (validation='eval', cv_folds=0): optimistic")
    grid = sorted(cfg.l2)
    searched = sorted(getattr(rec, "l2_searched", None) or grid)  # older saved records: none
    extended = searched != grid
    if extended:
        notes.append(f"chosen after extending the grid to {searched[0]:g}..{searched[-1]:g}")
    edges = (searched[0], searched[-1])
    if len(set(searched)) > 1 and rec.best_l2 in edges and rec.best_l2 != 0:
        edge = "weakest" if rec.best_l2 == searched[0] else "strongest"
        where = "the extended grid's" if extended else "the grid's"
        notes.append(f"{where} {edge} strength: the best may lie beyond; widen l2=")
    return "; ".join(notes) or None
