"""Plots of the methodology (issue 14): regression predictions, reliability, and the
generalisation heatmap, drawn from real fits on the tiny model."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from synthetic import sentiment_texts  # noqa: E402

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner  # noqa: E402
from lm_probe_widgets.display.diagnostic_plots import plot_generalisation  # noqa: E402

SITE = "transformer.h.1.output"


@pytest.fixture(scope="module")
def fitted(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(200, seed=11)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig(SITE), ProbeConfig(SITE, name="last", pooling="last")])
    runner.fit_probes(train, test, num_epoch=3, batch_size=16, progress=None, bootstrap=0)
    return runner, tok, texts, train, test


def test_reliability_diagram_plots_the_calibration_bins(fitted):
    runner, *_, test = fitted
    ax = runner.plot_calibration(SITE, test, n_bins=5)
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "calibration"]
    xs, ys = line.get_data()
    assert 1 <= len(xs) <= 5 and np.all((ys >= 0) & (ys <= 1))
    assert "perfectly calibrated" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_generalisation_heatmap_from_evaluate(fitted):
    runner, tok, texts, _, test = fitted
    other = ProbeDataset.from_texts(texts[:40], [i % 2 for i in range(40)], tok)
    table = runner.evaluate({"test": test, "shuffled labels": other})
    ax = plot_generalisation(table, "accuracy")
    (im,) = [a for a in ax.get_images() if a.get_gid() == "generalisation"]
    assert im.get_array().shape == (2, 2)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["shuffled labels", "test"]
    with pytest.raises(ValueError, match="no 'r2' values"):
        plot_generalisation(table, "r2")


def test_predictions_scatter_for_a_regression_probe(tiny):
    model, tok = tiny
    texts, _ = sentiment_texts(120, seed=12)
    counts = [float(len(t.split())) + 0.5 for t in texts]
    train, test = ProbeDataset.from_texts(texts, counts, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", task="regression")])
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    ax = runner.plot_predictions("transformer.h.0.output", test)
    assert "R²" in ax.get_title()
    (points,) = [c for c in ax.collections if c.get_gid() == "predictions"]
    assert len(points.get_offsets()) == len(test)
    with pytest.raises(ValueError, match="classification probe"):
        ProbeRunner(model, [ProbeConfig(SITE)]).fit_probes(
            *ProbeDataset.from_texts(texts, [i % 2 for i in range(120)], tok).tt_split(0.25),
            num_epoch=1,
            progress=None,
        ).plot_predictions(SITE, test)


def test_selectivity_sweep_has_the_paired_band_of_the_validity_card(tiny):
    """Selectivity by layer (from the runner) carries a band: the paired interval of
    task minus control from `validity()`, so named in the legend; without a control
    nothing is invented."""
    model, tok = tiny
    texts, labels = sentiment_texts(120, seed=3)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    sites = [f"transformer.h.{i}.output" for i in range(2)]
    runner = ProbeRunner(model, [ProbeConfig(s) for s in sites])
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, control=True)
    card = runner.validity()
    ax = runner.plot_layer_sweep("selectivity", baselines=None)
    bands = [c for c in ax.collections if str(c.get_gid()).startswith("band:")]
    assert len(bands) == 1
    ys = np.concatenate([p.vertices[:, 1] for p in bands[0].get_paths()])
    lows, highs = card.loc[sites, "selectivity_low"], card.loc[sites, "selectivity_high"]
    assert np.isclose(ys.min(), lows.min()) and np.isclose(ys.max(), highs.max())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95% interval (paired bootstrap vs control)" in legend
    plain = runner.plot_layer_sweep("selectivity", baselines=None, ci=False)
    assert not [c for c in plain.collections if str(c.get_gid()).startswith("band:")]
