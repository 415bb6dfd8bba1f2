"""Regression probes (issue 14): continuous targets, trained beside classification
probes in the same pass, with honest metrics, a control task, save and load."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.engine.regression import RidgeProbe, regression_metrics

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


CONFOUND_NAMES = ("length", "bag_of_words", "tfidf")


def test_mixed_probes_each_get_their_own_kind_of_baseline_numbers(tiny):
    """A classification and a regression probe in one fit, every baseline: the table's
    `baseline_<name>` columns hold accuracy, `baseline_<name>_r2` R², each NaN on the
    other kind's row, equal to `runner.baselines[name].metrics`; the validity card
    reads each in its own units."""
    model, tok = tiny
    texts, labels = sentiment_texts(200, seed=8)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25, seed=0)
    configs = [ProbeConfig(SITE, [0, 1], name="cls"), ProbeConfig(SITE, task="regression")]
    runner = ProbeRunner(model, configs)
    names = ("majority", "embeddings", *CONFOUND_NAMES)
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, baselines=names)
    m = runner.metrics
    for name in names:
        table = runner.baselines[name].metrics
        acc, r2 = f"baseline_{name}", f"baseline_{name}_r2"
        assert m.loc["cls", acc] == pytest.approx(table.loc["cls", "accuracy"])
        assert m.loc[SITE, r2] == pytest.approx(table.loc[SITE, "r2"])
        assert np.isnan(m.loc[SITE, acc]) and np.isnan(m.loc["cls", r2])
        assert np.isfinite(m.loc["cls", acc]) and np.isfinite(m.loc[SITE, r2]), name
    # the label is one word: a bag of words reads it as a class and as a number
    assert m.loc["cls", "baseline_bag_of_words"] > 0.9
    assert m.loc[SITE, "baseline_bag_of_words_r2"] > 0.7
    assert m.loc[SITE, "baseline_length_r2"] < 0.1
    # the training mean as a prediction: R² near zero (not above it by more than noise)
    assert m.loc[SITE, "baseline_majority_r2"] < 0.05
    majority = runner.baselines["majority"]
    assert majority.metrics.loc[SITE, "training_mean"] == pytest.approx(
        np.mean(runner.last_plan.train.labels)
    )
    card = runner.validity()
    r2s = {k: m.loc[SITE, f"baseline_{k}_r2"] for k in CONFOUND_NAMES}
    best = max(r2s, key=r2s.get)
    assert card.loc[SITE, "strongest_confound"] == best
    assert card.loc[SITE, "gap_confound"] == pytest.approx(m.loc[SITE, "r2"] - r2s[best])
    assert f"{best.replace('_', ' ')} by" in card.loc[SITE, "reading"]
    assert "R²" in card.loc[SITE, "reading"].split(best.replace("_", " "))[1]
    accs = {k: m.loc["cls", f"baseline_{k}"] for k in CONFOUND_NAMES}
    best = max(accs, key=accs.get)
    assert card.loc["cls", "gap_confound"] == pytest.approx(m.loc["cls", "accuracy"] - accs[best])
    assert "points" in card.loc["cls", "reading"]
    # compute_metrics on other data recomputes the R² columns too
    other_texts, other_labels = sentiment_texts(60, seed=9)
    other = ProbeDataset.from_texts(other_texts, other_labels, tok)
    again = runner.compute_metrics(other, bootstrap=0)
    pred = runner.baselines["tfidf"].predict(SITE, other)
    assert again.loc[SITE, "baseline_tfidf_r2"] == pytest.approx(r2_score(other.labels, pred))


def test_a_token_count_target_is_flagged_by_the_length_baseline(tiny):
    """Target = the text's length in tokens: the length baseline gets R² > 0.9, and the
    validity card names it as the confound to beat."""
    model, tok = tiny
    texts, _ = sentiment_texts(200, seed=10)
    lengths = ProbeDataset.from_texts(texts, np.zeros(len(texts)), tok).lengths
    ds = ProbeDataset.from_texts(texts, lengths.astype(np.float64), tok)
    train, test = ds.tt_split(0.25, seed=0)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", task="regression")])
    runner.fit_probes(
        train, test, num_epoch=2, batch_size=16, progress=None, baselines=CONFOUND_NAMES
    )
    row = runner.metrics.iloc[0]
    assert row["baseline_length_r2"] > 0.9
    assert not any(c in runner.metrics for c in ("baseline_length", "baseline_tfidf"))
    card = runner.validity().iloc[0]
    assert card["strongest_confound"] == "length"
    assert card["gap_confound"] == pytest.approx(row["r2"] - row["baseline_length_r2"])
