"""A Stop in any phase of a fit with control probes and baselines (issue 25): the
methods that did not finish have blank columns and say so, never numbers from
half-trained probes; `validity()` flags them; resume=True finishes them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.engine import events as ev

H0, H1 = "transformer.h.0.output", "transformer.h.1.output"
BASELINES = ("majority", "random_init", "length", "bag_of_words")
KW = dict(num_epoch=2, batch_size=8, progress=None, bootstrap=0, control=True, baselines=BASELINES)
METHOD_COLUMNS = {
    "control": ["control_accuracy", "selectivity"],
    **{f"baseline_{b}": [f"baseline_{b}"] for b in BASELINES},
}


@pytest.fixture(scope="module")
def small(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(64, seed=1)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    train, test = ds.tt_split(0.25)
    return model, train, test


def _runner(model):
    return ProbeRunner(model, [ProbeConfig(H0, [0, 1]), ProbeConfig(H1, [0, 1], name="h1")])


def _stop_in(runner, phase, detail=None):
    """Stop at the first batch event of `phase` (and of its inner `detail` phase)."""

    def stopper(e):
        if e.kind == ev.BATCH and e.data["phase"] == phase:
            if detail is None or e.data.get("detail") == detail:
                runner.request_stop()

    return runner.events.subscribe(stopper)


# (phase, inner phase, the methods left unfinished)
CASES = [
    ("extract-train", None, ["control", *(f"baseline_{b}" for b in BASELINES)]),
    ("extract-eval", None, ["control", *(f"baseline_{b}" for b in BASELINES)]),
    ("control", "extract-train", ["control", *(f"baseline_{b}" for b in BASELINES)]),
    (
        "baseline-random_init",
        "extract-train",
        ["baseline_random_init", "baseline_length", "baseline_bag_of_words"],
    ),
]


@pytest.mark.parametrize(("phase", "detail", "unfinished"), CASES)
def test_a_stop_leaves_blank_columns_with_a_note_never_partial_numbers(
    small, phase, detail, unfinished
):
    model, train, test = small
    runner = _runner(model)
    unsubscribe = _stop_in(runner, phase, detail)
    runner.fit_probes(train, test, **KW)
    unsubscribe()
    assert str(runner.state) == "stopped"
    assert list(runner.incomplete) == unfinished
    m = runner.metrics
    for method, columns in METHOD_COLUMNS.items():
        for col in columns:
            assert col in m, col  # the next cells can read every planned column
            if method in unfinished:
                assert m[col].isna().all(), (col, m[col])
            else:
                assert m[col].notna().all(), (col, m[col])
    assert m.attrs["incomplete"] == runner.incomplete
    assert "resume=True" in runner.resume_note()
    assert "resume=True" in m.to_string() and unfinished[0] in m.to_string()
    with pytest.warns(UserWarning, match="resume=True"):
        card = runner.validity()
    assert all("not finished" in r and "resume=True" in r for r in card["reading"])
    # a stopped method's card columns are there (lesson 1's next cell selects them), blank
    sides = {"control": "control", "baseline_random_init": "random_init"}
    sides.update({f"baseline_{c}": "confound" for c in ("length", "bag_of_words")})
    for method, side in sides.items():
        if method in unfinished:
            gap = "selectivity" if side == "control" else f"gap_{side}"
            for col in (gap, f"{gap}_low", f"{gap}_high", f"vs_{side}"):
                assert col in card and card[col].isna().all(), (col, card.get(col))
    if "control" in unfinished:
        assert not any("fit with control=True" in r for r in card["reading"])
    if "baseline_random_init" in unfinished:
        # no comparison from half-trained probes
        with pytest.raises(ProbeError, match="resume=True"):
            runner.compare(card.index[0], "random_init")
    # the plots: a blank method is not drawn, and a blank metric says why, not raises
    import matplotlib.pyplot as plt

    from lm_probe_widgets.display.sweep_plot import plot_layer_sweep

    ax = plot_layer_sweep(runner, "accuracy")
    drawn = {line.get_gid() or "" for line in ax.get_lines()}
    random_init_drawn = any("random-init" in g for g in drawn)
    assert random_init_drawn == ("baseline_random_init" not in unfinished)
    if "control" in unfinished:
        ax = plot_layer_sweep(runner, "selectivity")
        assert ax.get_title().endswith("not measured")
        assert "resume=True" in ax.texts[0].get_text()
    plt.close("all")


def test_resume_after_a_stop_in_a_baseline_finishes_every_method(small):
    model, train, test = small
    runner = _runner(model)
    unsubscribe = _stop_in(runner, "baseline-random_init", "extract-train")
    runner.fit_probes(train, test, **KW)
    unsubscribe()
    assert runner.incomplete
    runner.fit_probes(train, test, resume=True, **KW)
    assert str(runner.state) == "fitted" and runner.incomplete == {}
    m = runner.metrics
    columns = [c for cols in METHOD_COLUMNS.values() for c in cols]
    assert np.isfinite(m[columns].to_numpy(dtype=float)).all()
    assert "incomplete" not in m.attrs and runner.resume_note() == ""
    uninterrupted = _runner(model).fit_probes(train, test, **KW).metrics
    for col in ("baseline_random_init", "baseline_bag_of_words", "accuracy"):
        np.testing.assert_allclose(m[col], uninterrupted[col])
    assert not math.isnan(runner.validity()["gap_random_init"].iloc[0])
