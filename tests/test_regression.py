"""Regression probes (issue 14): continuous targets, trained beside classification
probes in the same pass, with honest metrics, a control task, save and load."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.regression import RidgeProbe, regression_metrics

SITE = "transformer.h.1.output"


@pytest.fixture(scope="module")
def linear_task(tiny):
    """A target that is a linear function of the pooled features (plus a little noise)."""
    model, tok = tiny
    texts, labels = sentiment_texts(400, seed=5)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    feats = ProbeRunner(model, [ProbeConfig(SITE)]).get_probe_features(ds)[SITE]
    rng = np.random.default_rng(0)
    z = (feats - feats.mean(0)) / feats.std(0)
    target = z @ rng.normal(size=z.shape[1]) + rng.normal(0, 0.3, len(z)) + 10.0
    reg = ProbeDataset.from_texts(texts, target, tok)
    train, test = reg.tt_split(0.25, seed=0)
    return model, tok, texts, labels, train, test


def test_a_linear_target_is_recovered_and_its_control_is_not(linear_task):
    model, _, _, _, train, test = linear_task
    runner = ProbeRunner(model, [ProbeConfig(SITE, task="regression")])
    runner.fit_probes(train, test, num_epoch=5, batch_size=16, progress=None, control=True)
    row = runner.metrics.loc[SITE]
    assert row["r2"] > 0.9, row[["r2", "control_r2"]]
    # the control (targets shuffled per token type) is partly learnable: this tiny
    # model's few word types are nearly linear in mean-pooled features; still below
    assert row["control_r2"] < 0.9 and row["selectivity"] > 0.05
    assert row["r2_low"] <= row["r2"] <= row["r2_high"]
    assert np.isnan(row["compression"])  # no code length for continuous targets
    probe = runner[SITE]
    assert isinstance(probe, RidgeProbe) and probe.record.cross_validated
    pred = probe.predict(runner.get_probe_features(test)[SITE])
    assert row["r2"] == pytest.approx(r2_score(test.labels, pred))
    assert row["mse"] == pytest.approx(mean_squared_error(test.labels, pred))
    assert row["mae"] == pytest.approx(mean_absolute_error(test.labels, pred))
    assert row["pearson"] == pytest.approx(pearsonr(test.labels, pred)[0])
    with pytest.raises(ProbeError, match="use predict"):
        probe.predict_proba(runner.get_probe_features(test)[SITE])


def test_float_labels_infer_regression_with_a_warning_and_share_the_pass(linear_task):
    model, tok, texts, labels, train, test = linear_task
    runner = ProbeRunner(model, [ProbeConfig(SITE, name="reg"), ProbeConfig(SITE, name="reg2")])
    with pytest.warns(UserWarning, match="regression probe"):
        runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    assert runner.configs[0].task == "regression" and "r2" in runner.metrics
    # classification and regression probes in one runner: one trace per batch for both
    cls_ds = ProbeDataset.from_texts(texts, labels, tok)
    with pytest.raises(ProbeError, match="non-integer numbers"):
        ProbeRunner(model, [ProbeConfig(SITE, task="classification")]).fit_probes(
            train, num_epoch=1, progress=None
        )
    with pytest.raises(ProbeError, match="numeric targets"):
        names = np.where(labels == 1, "a", "b")
        ProbeRunner(model, [ProbeConfig(SITE, task="regression")]).fit_probes(
            ProbeDataset.from_texts(texts, names, tok), num_epoch=1, progress=None
        )
    del cls_ds


def test_integer_targets_with_task_regression(tiny):
    """Word counts are integers: task='regression' says they are a quantity."""
    model, tok = tiny
    texts, _ = sentiment_texts(200, seed=6)
    counts = np.array([len(t.split()) for t in texts])
    train, test = ProbeDataset.from_texts(texts, counts, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", task="regression")])
    runner.fit_probes(train, test, num_epoch=4, batch_size=16, progress=None, control=True)
    row = runner.metrics.iloc[0]
    assert row["r2"] > 0.3  # mean pooling dilutes length; still clearly learnable
    assert np.isfinite(row["control_r2"])


def test_regression_probes_save_and_load(linear_task, tmp_path):
    model, _, _, _, train, test = linear_task
    runner = ProbeRunner(model, [ProbeConfig(SITE, task="regression")])
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    runner.save(tmp_path / "reg.safetensors")
    loaded = ProbeRunner.load(tmp_path / "reg.safetensors", model)
    x = runner.get_probe_features(test)[SITE]
    np.testing.assert_allclose(loaded[SITE].predict(x), runner[SITE].predict(x), rtol=1e-6)
    assert loaded.metrics.loc[SITE, "r2"] == pytest.approx(runner.metrics.loc[SITE, "r2"])


def test_regression_metrics_intervals_are_seeded_and_cover():
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    pred = y + rng.normal(0, 0.5, 300)
    a = regression_metrics(pred, y, n_boot=500, seed=3)
    b = regression_metrics(pred, y, n_boot=500, seed=3)
    assert a == b
    assert a["r2_low"] < a["r2"] < a["r2_high"] and a["mse_low"] < a["mse"] < a["mse_high"]
    off = regression_metrics(pred, y, n_boot=0)
    assert np.isnan(off["r2_low"]) and off["r2"] == pytest.approx(r2_score(y, pred))
