"""Issue 14, capabilities 3, 5 and 7: leakage-safe splits, confound baselines and
operating-point metrics. Each test fails if its capability breaks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import calibration as skc
from sklearn import metrics as skm
from synthetic import FILLER

from lm_probe_widgets import ProbeConfig
from lm_probe_widgets.core.engine import metrics as m
from lm_probe_widgets.core.engine.data import (
    ProbeDataset,
    check_leakage,
    find_duplicates,
    split_indices,
)
from lm_probe_widgets.core.engine.plan import build_plan
from lm_probe_widgets.core.engine.regression import REGRESSION_COLUMNS
from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.methods.confounds import (
    ALPHA_GRID,
    CONFOUNDS,
    BagOfWordsBaseline,
    LengthBaseline,
    TfidfBaseline,
)

# -- leakage-safe splits (capability 3) ------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=2, max_size=25),
    test_size=st.sampled_from([0.1, 0.2, 0.25, 0.5, 0.7]),
    seed=st.integers(0, 2**16),
    n_classes=st.integers(0, 3),  # 0: no labels
    data=st.data(),
)
def test_grouped_splits_never_share_a_group(sizes, test_size, seed, n_classes, data):
    groups = np.repeat(np.arange(len(sizes)), sizes)
    # shuffled, with names rather than 0..g-1: any hashable id works
    groups = np.array([f"src{g}" for g in data.draw(st.permutations(groups.tolist()))])
    n = len(groups)
    labels = None
    if n_classes:
        labels = np.array(
            data.draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
        )
    if int(np.ceil(test_size * n)) >= n:
        return
    train, test = split_indices(n, test_size, seed, labels, groups=groups)
    assert len(train) and len(test)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert not set(groups[train]) & set(groups[test])
    again = split_indices(n, test_size, seed, labels, groups=groups)
    assert np.array_equal(again[1], test)  # seeded


def test_grouped_tt_split_keeps_stratification_and_texts():
    # 60 sources of 4 texts each, one label per source, 30% positive
    groups = np.repeat(np.arange(60), 4)
    labels = (np.arange(60) % 10 < 3).astype(np.int64)[groups]
    ds = ProbeDataset([[1 + g, 2, 3 + i % 4] for i, g in enumerate(groups)], None, labels)
    ds.texts = [f"source {g}" for g in groups]
    for seed in range(5):
        train, test = ds.tt_split(0.25, seed=seed, groups=groups)
        assert abs(len(test) - 60) <= 8
        assert test.labels.mean() == pytest.approx(0.3, abs=0.05)
        train_sources = {t.split()[1] for t in train.texts}
        assert not train_sources & {t.split()[1] for t in test.texts}
    # no labels to stratify by (stratify=False): still grouped
    train, test = ds.tt_split(0.25, seed=0, stratify=False, groups=groups.tolist())
    assert not {t for t in train.texts} & {t for t in test.texts}


def test_grouped_split_errors_say_what_to_do():
    ds = ProbeDataset([[1], [2], [3], [4]], None, [0, 1, 0, 1])
    with pytest.raises(ProbeError, match="at least two groups"):
        ds.tt_split(0.5, groups=["a"] * 4)
    with pytest.raises(ProbeError, match="one per example"):
        ds.tt_split(0.5, groups=["a", "b"])
    with pytest.raises(ProbeError, match="not one string"):
        ds.tt_split(0.5, groups="abcd")


def test_ungrouped_split_unchanged():
    labels = np.arange(40) % 2
    a = split_indices(40, 0.25, 3, labels)
    b = split_indices(40, 0.25, 3, labels, groups=None)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_find_duplicates_across_and_within():
    a = ProbeDataset([[1, 2, 3], [4, 5], [1, 2, 3], [9]], None, [0, 1, 0, 1])
    b = ProbeDataset([[4, 5], [7], [1, 2, 3], [1, 2]], None, [1, 0, 0, 1])
    assert find_duplicates(a, b) == [(0, 2), (1, 0), (2, 2)]
    assert find_duplicates(a) == [(0, 2)]
    assert find_duplicates(a, a) == [(0, 0), (0, 2), (1, 1), (2, 0), (2, 2), (3, 3)]
    assert find_duplicates(b) == []


def test_check_leakage_reports_duplicates(tiny):
    _, tok = tiny
    train = ProbeDataset.from_texts(["a good film", "a bad film", "dull"], [1, 0, 0], tok)
    test = ProbeDataset.from_texts(["superb", "a bad film", "dull", "dull"], [1, 0, 0, 0], tok)
    msg = check_leakage(train, test)
    assert msg.startswith("3 of 4 test examples also appear in the training data")
    assert "test example 1 = training example 1: 'a bad film'" in msg
    assert "groups=" in msg
    assert check_leakage(train, ProbeDataset.from_texts(["superb"], [1], tok)) is None
    no_texts = ProbeDataset([list(range(20))], None, [0])
    assert "token ids [0, 1, 2, 3, 4, 5, 6, 7]..." in check_leakage(no_texts, no_texts)


# -- operating-point metrics (capability 7) -------------------------------------------


def _binary(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1.5, n))))
    return np.column_stack([1 - p1, p1]), y


def _reference_recall(y: np.ndarray, score: np.ndarray, target: float) -> float:
    """Linear interpolation of the ROC curve at `target`, written out by hand: the best
    recall at the last false-positive rate <= target, joined to the worst at the first
    rate above it."""
    fpr, tpr, _ = skm.roc_curve(y, score, drop_intermediate=False)
    lo, hi = fpr <= target, fpr > target
    f0, t0 = fpr[lo].max(), tpr[lo].max()
    if not hi.any():
        return float(t0)
    f1 = fpr[hi].min()
    t1 = tpr[hi & (fpr == f1)].min()
    return float(t0 + (t1 - t0) * (target - f0) / (f1 - f0))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.2])
def test_recall_at_fpr_interpolates_the_roc_curve(seed, target):
    proba, y = _binary(seed)
    assert m.recall_at_fpr(proba, y, target) == pytest.approx(
        _reference_recall(y, proba[:, 1], target)
    )


def test_recall_at_fpr_with_ties_and_exact_points():
    # scores on a coarse grid: many ties, and 5% is reached exactly
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    p1 = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 1)
    proba = np.column_stack([1 - p1, p1])
    for target in (0.01, 0.05, 0.1, 0.3):
        assert m.recall_at_fpr(proba, y, target) == pytest.approx(_reference_recall(y, p1, target))
    perfect = np.column_stack([1 - y, y]).astype(float)
    assert m.recall_at_fpr(perfect, y, 0.0) == 1.0


def test_recall_at_fpr_nan_when_not_binary_or_a_class_is_absent():
    proba, y = _binary(0)
    assert math.isnan(m.recall_at_fpr(proba[y == 1], y[y == 1], 0.05))
    three = np.full((6, 3), 1 / 3)
    assert math.isnan(m.recall_at_fpr(three, np.array([0, 1, 2, 0, 1, 2]), 0.05))


@pytest.mark.parametrize("seed", range(3))
def test_brier_matches_scikit_learn(seed):
    proba, y = _binary(seed)
    assert m.brier(proba, y) == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    rng = np.random.default_rng(seed)
    proba3 = rng.dirichlet(np.ones(3), 300)
    y3 = rng.integers(0, 3, 300)
    # multiclass: the mean of the one-vs-rest Brier scores
    ovr = np.mean([skm.brier_score_loss(y3 == k, proba3[:, k]) for k in range(3)])
    assert m.brier(proba3, y3) == pytest.approx(ovr)


@pytest.mark.parametrize("n_bins", [5, 10])
def test_calibration_curve_matches_scikit_learn(n_bins):
    proba, y = _binary(1)
    mean_pred, frac_pos, count = m.calibration_curve(proba, y, n_bins)
    assert len(mean_pred) == len(frac_pos) == len(count) == n_bins
    assert count.sum() == len(y)
    true_sk, pred_sk = skc.calibration_curve(y, proba[:, 1], n_bins=n_bins)
    full = count > 0
    np.testing.assert_allclose(frac_pos[full], true_sk)
    np.testing.assert_allclose(mean_pred[full], pred_sk)
    assert np.isnan(mean_pred[~full]).all()


def test_classification_metrics_carry_the_operating_points():
    proba, y = _binary(2, n=1200)  # 1% of 500+ negatives: 5 false positives or more
    out = m.classification_metrics(proba, y, 2)
    for col in ("recall_at_1fpr", "recall_at_5fpr", "brier"):
        assert col in m.METRIC_COLUMNS
        assert col in out
    i = m.METRIC_COLUMNS.index("roc_auc")
    assert m.METRIC_COLUMNS[i + 1 : i + 4] == ["recall_at_1fpr", "recall_at_5fpr", "brier"]
    assert out["recall_at_5fpr"] == pytest.approx(m.recall_at_fpr(proba, y, 0.05))
    assert out["recall_at_1fpr"] <= out["recall_at_5fpr"]
    assert out["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))


# -- confound baselines (capability 5) ------------------------------------------------

H0, H1 = "transformer.h.0.output", "transformer.h.1.output"


def _plan(model, configs, train, test, seed=0):
    return build_plan(
        model,
        configs,
        train,
        test,
        num_epoch=1,
        batch_size=8,
        seed=seed,
        validation_size=None,
        validation_set=None,
        bootstrap=100,
        control=False,
        baselines=(),
    )


@pytest.fixture(scope="module")
def one_word_task(tiny, sentiment):
    """The label is decided by one sentiment word; lengths carry no signal."""
    model, tok = tiny
    train, test = ProbeDataset.from_texts(*sentiment, tok, max_length=32).tt_split(0.25)
    # the second probe lists its classes the other way round: its own label space
    configs = [ProbeConfig(H0, [0, 1]), ProbeConfig(H1, [1, 0], name="reversed")]
    plan = _plan(model, configs, train, test)
    return plan, test, {name: cls(plan) for name, cls in CONFOUNDS.items()}


@pytest.fixture(scope="module")
def length_task(tiny):
    """The label IS the length: long texts against short ones, same filler words."""
    model, tok = tiny
    rng = np.random.default_rng(1)
    texts, labels = [], []
    for i in range(200):
        n = int(rng.integers(12, 20)) if i % 2 else int(rng.integers(2, 8))
        texts.append(" ".join(rng.choice(FILLER, size=n)))
        labels.append(i % 2)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    return _plan(model, [ProbeConfig(H0, [0, 1])], train, test), test


def test_bag_of_words_reads_a_one_word_label_and_length_does_not(one_word_task):
    _, test, fitted = one_word_task
    bow, tfidf, length = (
        fitted[k].compute_metrics(test) for k in ("bag_of_words", "tfidf", "length")
    )
    assert (bow["accuracy"] > 0.9).all() and (tfidf["accuracy"] > 0.9).all()
    assert (length["accuracy"] < 0.7).all()
    for df in (bow, tfidf, length):
        assert list(df.index) == [H0, "reversed"]
        assert set(m.METRIC_COLUMNS) <= set(df.columns) and "note" in df.columns
        # same labels, so the same numbers, each computed in the probe's own classes
        # (recall at a false-positive rate and the bootstrap follow the class order)
        cols = ["accuracy", "f1", "matthews", "roc_auc", "brier", "loss"]
        np.testing.assert_allclose(df.loc[H0, cols].astype(float), df.loc["reversed", cols])
        assert df[["accuracy_low", "accuracy_high", "f1_low", "loss"]].notna().all().all()
        assert (df["accuracy_low"] <= df["accuracy"]).all()


def test_confound_probabilities_follow_each_probes_classes(one_word_task):
    _, test, fitted = one_word_task
    bow = fitted["bag_of_words"]
    p0, p1 = bow.predict_proba(H0, test), bow.predict_proba("reversed", test)
    np.testing.assert_allclose(p0, p1[:, ::-1])
    # column k is p(class k): the positive texts get a high p(1) in the first probe
    assert np.mean(p0[test.labels == 1, 1] > 0.5) > 0.9


def test_length_baseline_reads_length(length_task):
    plan, test = length_task
    assert LengthBaseline(plan).compute_metrics(test)["accuracy"].iloc[0] > 0.9


def test_confounds_train_on_train_and_validation_and_are_deterministic(one_word_task):
    plan, test, fitted = one_word_task
    assert plan.val is not None
    scaler = fitted["length"].model.steps[0][1]
    assert scaler.n_samples_seen_ == len(plan.train) + len(plan.val)
    again = BagOfWordsBaseline(plan).compute_metrics(test)
    pd.testing.assert_frame_equal(again, fitted["bag_of_words"].compute_metrics(test))
    names = {"length": LengthBaseline, "bag_of_words": BagOfWordsBaseline, "tfidf": TfidfBaseline}
    assert names == CONFOUNDS
    assert CONFOUNDS["bag_of_words"].name == "bag_of_words"


def test_token_level_probes_are_skipped_with_a_note(tiny):
    model, tok = tiny
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["good", "bad", "the", "film"], 5)) for _ in range(60)]
    enc = [tok(t)["input_ids"] for t in texts]
    good = tok("good")["input_ids"][0]
    ds = ProbeDataset(enc, None, [[int(i == good) for i in ids] for ids in enc])
    train, test = ds.tt_split(0.25, stratify=False)
    plan = _plan(model, [ProbeConfig(H0, [0, 1], pooling="none")], train, test)
    for cls in CONFOUNDS.values():
        df = cls(plan).compute_metrics(test)
        assert df[m.METRIC_COLUMNS].isna().all().all()
        assert "token-level" in df.loc[H0, "note"]


def test_a_class_absent_from_training_gets_probability_zero(tiny, length_task):
    plan, test = length_task
    with pytest.warns(UserWarning, match="no example in the eval_set"):
        wider = _plan(tiny[0], [ProbeConfig(H0, [2, 1, 0], name="wide")], plan.train, test)
    base = LengthBaseline(wider)
    proba = base.predict_proba("wide", test)
    assert proba.shape == (len(test), 3)
    assert (proba[:, 0] == 0).all()
    np.testing.assert_allclose(proba.sum(1), 1)
    assert base.compute_metrics(test)["accuracy"].iloc[0] > 0.9


def test_regression_probes_get_ridge_baselines_beside_the_classifiers(tiny, length_task):
    """One plan, both kinds of probe: the classifier's row holds accuracy (R² NaN), the
    regression probe's row holds R² and the rest of `regression_metrics` (accuracy NaN)."""
    plan, test = length_task
    configs = [ProbeConfig(H0, [0, 1]), ProbeConfig(H1, name="reg", task="regression")]
    mixed = _plan(tiny[0], configs, plan.train, test)
    for cls in CONFOUNDS.values():
        df = cls(mixed).compute_metrics(test)
        assert set(m.METRIC_COLUMNS + REGRESSION_COLUMNS) <= set(df.columns)
        assert df.loc["reg", m.METRIC_COLUMNS].isna().all() and pd.isna(df.loc["reg", "note"])
        assert df.loc[H0, REGRESSION_COLUMNS].isna().all()
        assert df.loc["reg", ["r2", "r2_low", "r2_high", "pearson", "mse", "mae"]].notna().all()
    base = LengthBaseline(mixed)
    df = base.compute_metrics(test)
    assert df.loc[H0, "accuracy"] > 0.9 and df.loc["reg", "r2"] > 0.7  # the label is length
    pred = base.predict("reg", test)
    assert df.loc["reg", "r2"] == pytest.approx(skm.r2_score(test.labels, pred))
    assert df.loc["reg", "mae"] == pytest.approx(skm.mean_absolute_error(test.labels, pred))
    assert df.loc["reg", "r2_low"] <= df.loc["reg", "r2"] <= df.loc["reg", "r2_high"]
    with pytest.raises(ProbeError, match="use predict"):
        base.predict_proba("reg", test)
    with pytest.raises(ProbeError, match="use predict_proba"):
        base.predict(H0, test)


def _regression_task(tiny, target_of, n=200, seed=2):
    """Texts of 2 to 24 filler words (one sentiment word in half of them) and a
    numeric target computed from (dataset, sentiment labels, rng)."""
    model, tok = tiny
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words = rng.choice(FILLER, size=int(rng.integers(2, 25))).tolist()
        if i % 2:
            words.insert(int(rng.integers(0, len(words) + 1)), "great")
        texts.append(" ".join(words))
        labels.append(i % 2)
    ds = ProbeDataset.from_texts(texts, np.zeros(n), tok)
    target = np.asarray(target_of(ds, np.asarray(labels), rng), dtype=np.float64)
    train, test = ProbeDataset.from_texts(texts, target, tok).tt_split(0.25, seed=0)
    plan = _plan(model, [ProbeConfig(H0, task="regression", name="reg")], train, test)
    return plan, test


def test_a_target_that_is_the_token_count_is_read_by_the_length_baseline(tiny):
    plan, test = _regression_task(tiny, lambda ds, labels, rng: ds.lengths)
    r2 = {k: cls(plan).compute_metrics(test).loc["reg", "r2"] for k, cls in CONFOUNDS.items()}
    assert r2["length"] > 0.9, r2
    assert r2["length"] > r2["bag_of_words"]  # which tokens occur, not how many


def test_a_target_independent_of_length_is_not(tiny):
    plan, test = _regression_task(tiny, lambda ds, labels, rng: rng.normal(size=len(ds)))
    df = LengthBaseline(plan).compute_metrics(test)
    assert df.loc["reg", "r2"] < 0.05  # near zero or below: nothing to read


def test_a_target_set_by_one_word_is_read_by_a_bag_of_words_not_by_length(tiny):
    plan, test = _regression_task(
        tiny, lambda ds, labels, rng: 3.0 * labels + rng.normal(0, 0.1, len(ds))
    )
    r2 = {k: cls(plan).compute_metrics(test).loc["reg", "r2"] for k, cls in CONFOUNDS.items()}
    assert r2["bag_of_words"] > 0.9, r2
    # TF-IDF rows are L2-normalised: the word's weight shrinks with the text's length
    assert r2["tfidf"] > 0.6, r2
    assert r2["length"] < 0.1, r2


def test_ridge_alpha_is_chosen_on_training_rows_only(tiny):
    """Fitted on train + validation rows, alpha by 5-fold CV there: another eval set
    changes nothing but the scores; the fit is deterministic."""
    plan, test = _regression_task(
        tiny, lambda ds, labels, rng: ds.lengths + rng.normal(size=len(ds))
    )
    base = LengthBaseline(plan)
    scaler, search = base.regressor.steps[0][1], base.regressor.steps[-1][1]
    assert plan.val is not None
    assert scaler.n_samples_seen_ == len(plan.train) + len(plan.val)
    assert search.cv.get_n_splits() == 5 and search.best_params_["alpha"] in ALPHA_GRID
    # the classifier is not fitted when no probe classifies
    assert base.model is None
    other = dataclasses.replace(plan, eval_set=plan.train)
    for cls in CONFOUNDS.values():
        a, b = cls(plan), cls(other)
        np.testing.assert_array_equal(a.predict("reg", test), b.predict("reg", test))
        pd.testing.assert_frame_equal(a.compute_metrics(test), b.compute_metrics(test))


def test_validity_reads_each_probes_confounds_in_its_own_metric():
    """The card compares accuracy with `baseline_<name>` and R² with
    `baseline_<name>_r2`; a probe whose confounds have no numbers (token-level) is
    told so rather than given a gap of NaN."""
    from types import SimpleNamespace

    from lm_probe_widgets.core.engine.metrics import baseline_column
    from lm_probe_widgets.core.methods.compare import Comparison
    from lm_probe_widgets.core.methods.validity import validity_table

    nan = math.nan
    configs = [
        ProbeConfig(H0, [0, 1], name="cls"),
        ProbeConfig(H1, name="reg", task="regression"),
        ProbeConfig(H0, [0, 1], name="tok", pooling="none"),
    ]
    metrics = pd.DataFrame(
        {
            "accuracy": [0.9, nan, 0.8],
            "r2": [nan, 0.5, nan],
            "baseline_length": [0.6, nan, nan],
            "baseline_length_r2": [nan, 0.7, nan],
            "baseline_tfidf": [0.95, nan, nan],
            "baseline_tfidf_r2": [nan, 0.2, nan],
        },
        index=pd.Index(["cls", "reg", "tok"], name="probe"),
    )

    def compare(a: str, b: str, level: float = 0.95) -> Comparison:
        """A clear-cut paired comparison from the table's numbers (token-level: none)."""
        if a == "tok":
            raise ProbeError("token-level probe: confound baselines score whole texts")
        score = "r2" if a == "reg" else "accuracy"
        mine = metrics.loc[a, score]
        theirs = metrics.loc[a, baseline_column(b, score)]
        d = mine - theirs
        return Comparison(
            a, b, score, mine, theirs, d, d - 0.01, d + 0.01, 1e-4, 1e-4, level, 60, 60
        )

    runner = SimpleNamespace(
        metrics=metrics,
        configs=configs,
        probes={c.name: None for c in configs},
        spread=None,
        baselines={"length": None, "tfidf": None},
        control=None,
        compare=compare,
    )
    card = validity_table(runner)
    assert card.loc["cls", "strongest_confound"] == "tfidf"
    assert card.loc["cls", "gap_confound"] == pytest.approx(-0.05)
    assert "loses to tfidf by 5.0 points" in card.loc["cls", "reading"]
    assert card.loc["cls", "flag"] == "loses to tfidf"
    assert card.loc["reg", "strongest_confound"] == "length"
    assert card.loc["reg", "gap_confound"] == pytest.approx(-0.2)
    assert "loses to length by 0.200 R²" in card.loc["reg", "reading"]
    assert np.isnan(card.loc["tok", "gap_confound"])
    assert "confounds: no numbers for this probe" in card.loc["tok", "reading"]
