"""The final fit's L2 search past the grid's edge (core.engine.l2_search): a held-out
choice on the edge looks a decade further, again while that wins, at most EXTENSIONS
times; the record keeps what was searched, and the metrics note says the best may lie
beyond only when the last extension still chose the edge."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from lm_probe_widgets import ProbeConfig
from lm_probe_widgets.core.engine import l2_search
from lm_probe_widgets.core.engine import probe as probe_module
from lm_probe_widgets.core.engine.l2_note import l2_note
from lm_probe_widgets.core.engine.probe import LinearProbe, refine_many
from lm_probe_widgets.core.engine.regression import RidgeProbe

DEFAULT = ProbeConfig("m.output").l2


def _planted(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose CV-best strength is known: "strong" (few rows, many features, a faint
    signal: past the default grid's strong edge), "inside" (0.01: inside the default
    grid, past the weak edge of 0.1..10); "none" (labels that ignore the features) and
    "separable" (few features, a clear signal), whose choices stay on the edge through
    the last extension, strong and weak."""
    n, d, signal = {
        "strong": (40, 60, 0.5),
        "inside": (300, 10, 1.0),
        "none": (40, 60, 0.0),
        "separable": (3000, 4, 3.0),
    }[kind]
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (n, d)) * rng.uniform(0.5, 5, d) + 3.0
    logit = signal * (x - 3.0) @ rng.normal(0, 1, d) / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return x.astype(np.float32), y


def _probe(x, y, l2=DEFAULT, cls=LinearProbe, **kw):
    """A probe whose scaler has seen `x` (online steps do not matter to the final fit's
    choice: every strength and fold is fitted to convergence)."""
    probe = cls(ProbeConfig("m.output", [0, 1], l2=l2, **kw), x.shape[1])
    probe.scaler.update(x)
    probe.scaler.frozen = True
    if cls is RidgeProbe:
        probe.target_scaler.update(np.asarray(y, dtype=np.float64)[:, None])
    return probe


def _same_fit(a, b, x, atol=1e-3):
    ra, rb = a.record, b.record
    assert rb.best_l2 == ra.best_l2
    assert rb.refined_val_loss == pytest.approx(ra.refined_val_loss, rel=1e-4)
    out = (lambda p: p.predict(x)) if isinstance(a, RidgeProbe) else (lambda p: p.predict_proba(x))
    np.testing.assert_allclose(out(b), out(a), atol=atol)  # to where `tol` stops them


@pytest.fixture(scope="module")
def planted():
    return {k: _planted(k) for k in ("strong", "inside", "none", "separable")}


@pytest.mark.parametrize("kind, grid", [("strong", DEFAULT), ("inside", (0.1, 1.0, 10.0))])
def test_an_edge_choice_extends_the_grid_to_an_interior_choice(planted, kind, grid):
    """Past the grid's strong (default grid) or weak edge the search finds an interior
    strength, and ends where a fit given the wider grid explicitly ends (both solved
    tightly: from their different starts they agree to the solver's tolerance)."""
    x, y = planted[kind]
    tight = dict(tol=1e-7, max_iter=5000)
    probe = _probe(x, y, l2=grid)
    probe.refine(x, y, **tight)
    rec = probe.record
    searched = rec.l2_searched
    assert len(searched) > len(grid) and set(grid) < set(searched)
    beyond = max(searched) > max(grid) if kind == "strong" else min(searched) < min(grid)
    assert beyond and rec.best_l2 not in grid  # the choice lies past the old edge
    assert searched[0] < rec.best_l2 < searched[-1]  # ... and inside what was searched
    wide = _probe(x, y, l2=tuple(searched))
    wide.refine(x, y, **tight)
    assert wide.record.l2_searched == searched  # an interior choice: nothing to extend
    _same_fit(wide, probe, x, atol=1e-4)
    note = l2_note(probe.config, rec)
    assert "extending the grid to" in note and "may lie beyond" not in note


def test_an_interior_choice_searches_the_grid_alone(planted, monkeypatch):
    x, y = planted["inside"]
    calls = []
    real = probe_module.fit_many
    monkeypatch.setattr(probe_module, "fit_many", lambda q, **kw: calls.append(q) or real(q, **kw))
    probe = _probe(x, y)
    probe.refine(x, y)
    assert len(calls) == 1  # no further solve
    assert probe.record.l2_searched == sorted(DEFAULT)
    assert probe.record.best_l2 in DEFAULT[1:-1]
    assert l2_note(probe.config, probe.record) is None


@pytest.mark.parametrize("kind", ["none", "separable"])
def test_the_note_says_the_best_may_lie_beyond_only_when_the_search_ends_on_its_edge(planted, kind):
    x, y = planted[kind]
    probe = _probe(x, y)
    probe.refine(x, y)
    rec = probe.record
    steps = range(1, l2_search.EXTENSIONS + 1)
    if kind == "none":  # the prior wins, ever stronger
        beyond = [max(DEFAULT) * 10**k for k in steps]
        assert rec.l2_searched == sorted(DEFAULT) + beyond
    else:  # separable: ever weaker, down to the floor
        floor = l2_search.WEAKEST
        beyond = [
            pytest.approx(min(DEFAULT) / 10**k) for k in steps if min(DEFAULT) / 10**k >= floor
        ]
        assert beyond and rec.l2_searched == beyond[::-1] + sorted(DEFAULT)
    assert rec.best_l2 == beyond[-1]  # the last extension still chose the edge
    edge = "strongest" if kind == "none" else "weakest"
    note = l2_note(probe.config, rec)
    assert f"extended grid's {edge} strength: the best may lie beyond" in note


def test_ridge_extends_its_grid_as_the_logistic_probe_does():
    rng = np.random.default_rng(1)
    n, d = 40, 30  # few rows, many features, a faint signal: more shrinkage wins
    x = (rng.normal(0, 1, (n, d)) + 2).astype(np.float32)
    t = 0.3 * x @ rng.normal(0, 1, d) / np.sqrt(d) + rng.normal(0, 1, n)
    probe = _probe(x, t, cls=RidgeProbe, task="regression")
    probe.refine(x, t)
    searched = probe.record.l2_searched
    assert max(searched) > max(DEFAULT) and searched[0] < probe.record.best_l2 < searched[-1]
    wide = _probe(x, t, l2=tuple(searched), cls=RidgeProbe, task="regression")
    wide.refine(x, t)
    _same_fit(wide, probe, x, atol=1e-6)


def test_probes_extended_together_are_each_probes_own(planted, monkeypatch):
    """refine_many: every probe needing an extension in one further batched solve per
    decade, each ending where it ends alone (validation-split choices too)."""
    mixed = []
    for kind in ("strong", "inside", "none", "separable"):
        x, y = planted[kind]
        mixed.append((_probe(x, y), dict(x=x, y_idx=y)))
    x, y = planted["strong"]
    cut = len(y) // 2  # no folds: the validation split chooses, and extends too
    split = dict(x=x[:cut], y_idx=y[:cut], x_val=x[cut:], y_val=y[cut:])
    mixed.append((_probe(x, y, cv_folds=0), split))
    alone = [copy.deepcopy(p) for p, _ in mixed]
    for probe, (_, kw) in zip(alone, mixed, strict=True):
        probe.refine(**kw)
    calls = []
    real = probe_module.fit_many
    spy = lambda q, **kw: calls.append(len(q)) or real(q, **kw)  # noqa: E731
    monkeypatch.setattr(probe_module, "fit_many", spy)
    together = [p for p, _ in mixed]
    refine_many(together, [kw for _, kw in mixed])
    extensions = [len(p.record.l2_searched) - len(DEFAULT) for p in alone]
    assert sorted(set(extensions))[0] == 0 and max(extensions) > 0  # some extend, some not
    # one solve per decade, holding every probe still extending
    assert calls == [len(mixed)] + [sum(e > i for e in extensions) for i in range(max(extensions))]
    for a, b, (_, kw) in zip(alone, together, mixed, strict=True):
        assert b.record.l2_searched == a.record.l2_searched
        _same_fit(a, b, kw["x"])


def test_an_extension_reuses_the_grids_eigendecomposition(planted, monkeypatch):
    """The strength past the edge is fitted on the same rows: their covariance's
    eigendecomposition (the final fit's costliest step) is not computed again."""
    from lm_probe_widgets.core.engine import final_fit

    x, y = planted["none"]
    probe = _probe(x, y)
    eighs = []
    real = final_fit.torch.linalg.eigh
    monkeypatch.setattr(final_fit.torch.linalg, "eigh", lambda a: eighs.append(a) or real(a))
    probe.refine(x, y)
    assert len(probe.record.l2_searched) > len(DEFAULT)  # it extended ...
    assert len(eighs) == 1  # ... on the grid's eigenbasis
