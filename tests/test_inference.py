"""Issue 24: conclusions that hold. Every comparison the library states rests on a
paired interval over test texts, a p-value and a verdict in three words, Holm-corrected
across the validity card; token-level intervals resample whole texts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine.uncertainty import bootstrap_ci
from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.methods.compare import (
    Outcomes,
    compare_outcomes,
    comparison_frame,
    holm,
)

LAYERS = ["transformer.h.0.output", "transformer.h.2.output"]
WEAK = "first-token"


def _acc(correct: np.ndarray, clusters: np.ndarray | None = None) -> Outcomes:
    correct = np.asarray(correct, np.float64)
    texts = np.arange(len(correct)) if clusters is None else clusters
    return Outcomes("accuracy", correct, np.zeros(len(correct)), texts)


@pytest.fixture(scope="module")
def fitted(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(240, seed=0)
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=32)
    train, test = ds.tt_split(0.25, seed=0)
    weak = ProbeConfig(LAYERS[0], [0, 1], pooling="first", name=WEAK)  # cannot see the word
    runner = ProbeRunner(model, [*(ProbeConfig(s, [0, 1]) for s in LAYERS), weak])
    runner.fit_probes(
        train,
        test,
        num_epoch=3,
        batch_size=16,
        progress=None,
        control=True,
        baselines=("random_init", "bag_of_words", "length"),
    )
    return runner, test


# -- paired comparisons as values ---------------------------------------------------------
def test_compare_reads_the_tables_numbers_and_pairs_them(fitted):
    """runner.compare gives the difference the metrics table implies (probe vs probe,
    vs control = selectivity, vs a baseline = its gap), with an interval around it."""
    runner, _ = fitted
    m = runner.metrics
    h0, h2 = LAYERS
    c = runner.compare(h2, h0)
    assert c.difference == pytest.approx(m.loc[h2, "accuracy"] - m.loc[h0, "accuracy"])
    assert c.n_texts == len(runner.last_plan.eval_set)
    ctrl = runner.compare(h2, "control")
    assert ctrl.difference == pytest.approx(m.loc[h2, "selectivity"])
    for name in ("random_init", "bag_of_words", "length"):
        gap = runner.compare(h0, name)
        assert gap.difference == pytest.approx(
            m.loc[h0, "accuracy"] - m.loc[h0, f"baseline_{name}"]
        )
    for comp in (c, ctrl, gap):
        assert comp.low <= comp.difference <= comp.high and 0 <= comp.p <= 1
        assert comp.verdict in ("beats", "ties", "loses")
    # the length confound is far behind: a clear win, stated without a double negative
    assert runner.compare(h0, "length").verdict == "beats"
    assert runner.compare(h0, "length").reading().startswith("beats length by ")
    frame = comparison_frame([c, ctrl])
    assert list(frame["verdict"]) == [c.verdict, ctrl.verdict]
    assert {"a", "b", "difference", "low", "high", "p", "level"} <= set(frame)
    with pytest.raises(ProbeError, match="neither a fitted probe"):
        runner.compare(h0, "nope")
    with pytest.raises(ProbeError, match="not itself"):
        runner.compare(h0, h0)


def test_overlapping_intervals_can_hide_a_clear_paired_difference():
    """Lesson 1's mistake: both probes' 95% intervals overlap, yet on the same texts one
    is right wherever the other is, and on 12 more: the paired interval excludes 0."""
    rng = np.random.default_rng(0)
    b = (rng.random(120) < 0.7).astype(float)
    a = b.copy()
    a[np.flatnonzero(b == 0)[:12]] = 1.0  # a = b, plus 12 texts b gets wrong
    y = np.zeros(120, int)
    ci_a = bootstrap_ci(y, 1 - a.astype(int), 2, seed=0)
    ci_b = bootstrap_ci(y, 1 - b.astype(int), 2, seed=0)
    assert ci_a["accuracy_low"] < ci_b["accuracy_high"]  # the intervals overlap
    c = compare_outcomes(_acc(a), _acc(b), "a", "b")
    assert c.low > 0 and c.verdict == "beats"


def test_a_win_by_one_text_ties():
    a = np.ones(60)
    b = a.copy()
    b[0] = 0.0
    c = compare_outcomes(_acc(a), _acc(b), "a", "b")
    assert c.difference == pytest.approx(1 / 60)
    assert c.verdict == "ties" and c.low <= 0 <= c.high
    assert c.reading("bag of words").startswith("ties with bag of words: +1.7 points [95% CI")


def test_a_clear_difference_survives_holm_over_a_large_card():
    """When no permutation is as extreme as the data, p is not stuck at the Monte Carlo
    floor 2 / (resamples + 1): Holm over 200 comparisons (floor x 200 > 0.05) still
    finds a difference of 20 points on 200 texts."""
    from lm_probe_widgets.core.methods.compare import holm_family

    b = np.ones(200)
    b[:40] = 0.0
    c = compare_outcomes(_acc(np.ones(200)), _acc(b), "a", "b")
    assert c.p < 1e-6
    family = holm_family([c] * 200)
    assert family[0].verdict == "beats" and family[0].family == 200


def test_identical_sides_tie_exactly():
    c = compare_outcomes(_acc(np.ones(30)), _acc(np.ones(30)), "a", "b")
    assert (c.difference, c.low, c.high, c.p, c.verdict) == (0.0, 0.0, 0.0, 1.0, "ties")


def test_a_loss_reads_as_a_loss():
    a, b = np.zeros(80), np.ones(80)
    a[:40] = 1  # a is right on half the texts b gets all right
    c = compare_outcomes(_acc(a), _acc(b), "a", "b")
    assert c.verdict == "loses"
    assert c.reading("its control task").startswith("loses to its control task by 50.0 points")


def test_regression_difference_is_the_r2_gap():
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    pa, pb = y + rng.normal(0, 0.3, 200), y + rng.normal(0, 1.0, 200)
    texts = np.arange(200)
    a = Outcomes("r2", -((pa - y) ** 2), y, texts)
    b = Outcomes("r2", -((pb - y) ** 2), y, texts)
    from sklearn.metrics import r2_score

    c = compare_outcomes(a, b, "a", "b")
    assert c.difference == pytest.approx(r2_score(y, pa) - r2_score(y, pb))
    assert c.verdict == "beats" and c.low > 0


def test_sides_on_other_rows_are_refused():
    with pytest.raises(ProbeError, match="same rows"):
        compare_outcomes(_acc(np.ones(10)), _acc(np.ones(11)), "a", "b")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_is_monotone_bounded_and_at_least_the_raw_p(ps):
    q = holm(ps)
    assert np.all(q >= np.asarray(ps) - 1e-12) and np.all(q <= 1)
    order = np.argsort(ps)
    assert np.all(np.diff(q[order]) >= -1e-12)  # the step-down keeps the order
    assert q[order[0]] == pytest.approx(min(1.0, len(ps) * min(ps)))


# -- the validity card -------------------------------------------------------------------------
def test_the_card_says_ties_for_a_one_text_win_and_flags_a_loss(fitted, monkeypatch):
    """A confound that matches the probe on every test text but one: the card says
    "ties", not "beats". A random-init model that is right everywhere: the card says
    the probe loses to it and flags the probe. Verdicts are Holm-corrected together."""
    import copy

    from lm_probe_widgets.core.engine.plan import scored_labels

    runner, test = fitted
    h0, h2 = LAYERS
    probe, cfg = runner[h2], runner[h2].config
    x = runner.features(test, [cfg.feature_key])[cfg.feature_key]
    own = probe.predict_proba(x)
    _, y = scored_labels(cfg, test)
    right = np.flatnonzero(own.argmax(1) == y)

    def one_text_worse(cfg, dataset, n_rows):
        out = probe.predict_proba(runner.features(dataset, [cfg.feature_key])[cfg.feature_key])
        out[right[0]] = out[right[0], ::-1]  # wrong on one text the probe gets right
        return out

    def perfect(cfg, dataset, n_rows):
        return np.eye(2)[scored_labels(cfg, dataset)[1]]

    oracle = copy.copy(runner.baselines["length"])
    with monkeypatch.context() as mp:
        mp.setattr(runner.baselines["bag_of_words"], "proba", one_text_worse)
        mp.setattr(oracle, "proba", perfect)
        mp.setitem(runner.baselines, "random_init", oracle)
        runner.compute_metrics(test)
        card = runner.validity()
        row = card.loc[h2]
        assert row["strongest_confound"] == "bag_of_words"
        assert row["gap_confound"] == pytest.approx(1 / len(test))
        assert row["vs_confound"] == "ties"
        assert "ties with bag of words: +" in row["reading"]
        assert "beats bag of words" not in row["reading"]
        weak = card.loc[WEAK]
        assert weak["vs_random_init"] == "loses" and "random init" in weak["flag"]
        assert "loses to a random-init model by " in weak["reading"]
        assert "does not beat" not in " ".join(card["reading"])
        assert "Holm p=" in row["reading"]
    runner.compute_metrics(test)  # the fixture's own numbers back


def test_the_sweep_marks_layers_that_tie_with_the_cv_choice(fitted):
    """ "Best" is the lowest cross-validated loss, never the test score; the others are
    compared with it, paired and Holm-corrected, and the plot rings those that tie."""
    import matplotlib

    matplotlib.use("Agg")
    from lm_probe_widgets.core.methods.compare import ties_with_best
    from lm_probe_widgets.display.sweep_plot import plot_layer_sweep

    runner, _ = fitted
    best, comps = ties_with_best(runner)
    assert best == runner.metrics["val_loss"].idxmin()
    assert set(comps) == set(runner.probes) - {best}
    assert comps[WEAK].verdict == "beats"  # the best beats first-token pooling, blind to the word
    assert all(c.family == len(comps) for c in comps.values())
    ax = plot_layer_sweep(runner, "accuracy", best=True, baselines=None)
    marks = {line.get_gid(): line for line in ax.get_lines()}
    assert list(marks["best"].get_ydata()) == [runner.metrics.loc[best, "accuracy"]]
    ties = [n for n, c in comps.items() if c.verdict == "ties"]
    assert len(marks["ties"].get_xdata()) == len(ties) if ties else "ties" not in marks


# -- token-level intervals resample texts ---------------------------------------------------
def test_token_level_intervals_resample_whole_texts():
    """Each text's tokens are all right or all wrong: 50 texts are the evidence, not
    1000 tokens. Drawing texts gives an interval about sqrt(20) times wider."""
    rng = np.random.default_rng(0)
    right = rng.random(50) < 0.6
    texts = np.repeat(np.arange(50), 20)
    y = np.zeros(1000, int)
    pred = np.where(right[texts], 0, 1)
    tokens = bootstrap_ci(y, pred, 2, seed=0)
    whole = bootstrap_ci(y, pred, 2, seed=0, clusters=texts)
    narrow = tokens["accuracy_high"] - tokens["accuracy_low"]
    wide = whole["accuracy_high"] - whole["accuracy_low"]
    assert wide > 3 * narrow
    # the text bootstrap equals the example bootstrap on one row per text
    per_text = bootstrap_ci(np.zeros(50, int), np.where(right, 0, 1), 2, seed=0)
    assert wide == pytest.approx(per_text["accuracy_high"] - per_text["accuracy_low"], abs=0.05)
    a = compare_outcomes(_acc(right[texts], texts), _acc(np.zeros(1000), texts), "a", "b")
    flat = compare_outcomes(_acc(right[texts]), _acc(np.zeros(1000)), "a", "b")
    assert a.n_texts == 50 and flat.n_texts == 1000
    assert a.high - a.low > 3 * (flat.high - flat.low)


def test_a_token_level_probe_reports_text_level_intervals(tiny):
    model, tok = tiny
    texts, _ = sentiment_texts(80, seed=3)
    ds = ProbeDataset.from_texts(texts, np.zeros(len(texts)), tok, max_length=32)
    rng = np.random.default_rng(0)
    # one label per text, repeated on its tokens: tokens of a text are not independent
    token_labels = [np.full(len(t), int(rng.random() < 0.5)) for t in ds.tokens]
    tds = ProbeDataset(ds.tokens, labels=token_labels)
    train, test = tds.tt_split(0.5, seed=0, stratify=False)
    cfg = ProbeConfig("transformer.h.1.output", [0, 1], pooling="none")
    runner = ProbeRunner(model, [cfg]).fit_probes(
        train, test, num_epoch=2, batch_size=16, progress=None
    )
    row = runner.metrics.iloc[0]
    keep_texts = np.repeat(np.arange(len(test)), [len(t) for t in test.tokens])
    probe = runner[cfg.name]
    x = runner.features(test, [cfg.feature_key])[cfg.feature_key]
    pred = probe.predict_proba(x).argmax(1)
    y = np.concatenate(test.token_labels)
    expected = bootstrap_ci(y, pred, 2, seed=0, clusters=keep_texts, classes=np.unique(y))
    assert row["accuracy_low"] == pytest.approx(expected["accuracy_low"])
    assert row["accuracy_high"] == pytest.approx(expected["accuracy_high"])


# -- MDL as published (Voita & Titov 2020) ----------------------------------------------------
def test_mdl_blocks_are_voita_and_titovs_fractions():
    from lm_probe_widgets.core.methods.mdl import block_ends

    assert block_ends(10_000).tolist() == [10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10_000]
    assert block_ends(100).tolist() == [1, 2, 3, 6, 12, 25, 50, 100]  # equal counts merge
    with pytest.raises(ProbeError, match="at least 2"):
        block_ends(1)


def test_each_block_is_coded_by_a_converged_probe_on_the_blocks_before():
    """held_out_bits = scikit-learn's converged logistic regression on the fit rows
    (same penalty: mean loss + l2/2 |W|² is C = 2 / (n l2) on the binary logit), scored
    in bits on the coded rows."""
    from sklearn.linear_model import LogisticRegression

    from lm_probe_widgets.core.engine.final_fit import held_out_bits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    blocks = [(np.arange(40), np.arange(40, 80)), (np.arange(150), np.arange(150, 300))]
    l2 = [0.01, 1.0]
    bits = held_out_bits(x, y, 2, l2, np.zeros(5), np.ones(5), blocks, tol=1e-7)
    for i, strength in enumerate(l2):
        for j, (fit, coded) in enumerate(blocks):
            ref = LogisticRegression(C=2 / (len(fit) * strength), tol=1e-10, max_iter=10_000)
            p = ref.fit(x[fit], y[fit]).predict_proba(x[coded])[np.arange(len(coded)), y[coded]]
            assert bits[i, j] == pytest.approx(-np.log2(p).sum(), rel=1e-3)


def test_mdl_does_not_move_with_the_first_pass_learning_rate(fitted):
    """Same features, first_pass_lr 3e-4 .. 3e-2: compression within 5% (the online
    Adam code of the first pass moved 1.02-1.81 on such a sweep)."""
    runner, test = fitted
    plan = runner.last_plan
    out = []
    for lr in (3e-4, 3e-3, 3e-2):
        sib = runner.sibling([ProbeConfig(LAYERS[1], [0, 1], first_pass_lr=lr)])
        sib.fit_probes(plan.train, test, num_epoch=2, batch_size=16, progress=None)
        out.append(float(sib.mdl()["compression"].iloc[0]))
    assert max(out) / min(out) < 1.05, out
    assert min(out) > 1.1, out  # and it sees the learnable task


# -- groups all the way -----------------------------------------------------------------------
AUTHORS = ["apple", "river", "stone", "cloud", "tiger", "piano", "garden", "silver"]
AUTHORS += ["window", "rocket", "castle", "pencil", "forest", "bridge", "candle", "mirror"]
AUTHORS += ["rabbit", "violin", "desert", "anchor", "orange", "planet", "marble", "jacket"]


@pytest.fixture(scope="module")
def authors(tiny):
    """Each author's texts carry the author's name and the author's label, and nothing
    else about it: a probe can only remember authors, which new authors defeat."""
    from synthetic import FILLER

    model, tok = tiny
    rng = np.random.default_rng(0)
    label_of = rng.permutation(np.arange(len(AUTHORS)) % 2)
    texts, labels, groups = [], [], []
    for i in range(480):
        a = i % len(AUTHORS)
        words = rng.choice(FILLER, size=int(rng.integers(3, 10))).tolist()
        texts.append(" ".join([AUTHORS[a], *words, AUTHORS[a]]))
        labels.append(int(label_of[a]))
        groups.append(AUTHORS[a])
    ds = ProbeDataset.from_texts(texts, np.array(labels), tok, max_length=32)
    return ds, groups


def test_grouped_cv_loss_tracks_the_test_loss_on_an_author_confound(tiny, authors):
    """Groups survive tt_split into the validation split and the CV folds: the
    cross-validated loss (val_loss) is about the test loss on unseen authors, and CV
    picks strong L2, past the grid, not the weakest (ungrouped: CV 0.12 vs test 3.9)."""
    model, _ = tiny
    ds, groups = authors
    train, test = ds.tt_split(0.25, seed=0, groups=groups)
    assert train.groups is not None and not set(train.groups) & set(test.groups)
    cfg = ProbeConfig("transformer.h.0.output", [0, 1], pooling="mean")
    runner = ProbeRunner(model, [cfg]).fit_probes(
        train, test, num_epoch=3, batch_size=32, progress=None, baselines=("bag_of_words",)
    )
    assert not set(runner.validation_set.groups) & set(runner.train_part.groups)
    row = runner.metrics.iloc[0]
    assert row["loss"] > 0.6  # unseen authors: nothing to go on
    assert 0.5 < row["val_loss"] / row["loss"] < 2, row[["val_loss", "loss"]]
    # past the grid's strongest edge: the final fit extended the grid, and says so
    assert row["l2"] > max(cfg.l2) and "after extending the grid to" in row["l2_note"]
    # the bag-of-words confound chooses its strength on grouped folds too
    search = runner.baselines["bag_of_words"].model.steps[-1][1]
    for fit_rows, held_out in search.cv:
        all_groups = np.concatenate([runner.train_part.groups, runner.validation_set.groups])
        assert not set(all_groups[fit_rows]) & set(all_groups[held_out])


def test_a_grouped_split_far_from_the_size_asked_says_so(authors):
    ds, groups = authors
    few = [g if g in AUTHORS[:2] else AUTHORS[2] for g in groups]  # 3 groups, sizes 1:1:22
    with pytest.warns(UserWarning, match="the test set holds"):
        ds.tt_split(0.25, seed=0, groups=few)


# -- stability on resampled training sets -------------------------------------------------------
def test_stability_refits_on_subsamples_that_keep_groups(tiny, authors, monkeypatch):
    from lm_probe_widgets.core.methods import validity

    model, _ = tiny
    ds, groups = authors
    train, test = ds.tt_split(0.25, seed=0, groups=groups)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1])])
    runner.fit_probes(train, test, num_epoch=2, batch_size=32, progress=None)
    seen = []
    real = validity._subsample

    def spy(ds, fraction, seed):
        part = real(ds, fraction, seed)
        seen.append(part)
        return part

    monkeypatch.setattr(validity, "_subsample", spy)
    spread = runner.stability(seeds=3, num_epoch=2)
    assert len(seen) == 3
    whole = len(train)
    for part in seen:  # about 80%, whole groups: a group is all in or all out
        assert 0.7 * whole <= len(part) <= 0.95 * whole
        for g in np.unique(train.groups):
            assert np.sum(part.groups == g) in (0, np.sum(train.groups == g))
    assert len({tuple(np.unique(p.groups)) for p in seen}) == 3  # other groups each time
    # the refits differ: in held-out loss (their accuracy need not: on unseen authors CV
    # shrinks them past the grid's strong edge, to nearly the same majority guess)
    assert spread.loc[runner.configs[0].name, ("loss", "std")] > 0
    with pytest.raises(ProbeError, match="subsample"):
        runner.stability(seeds=2, subsample=0)


# -- the grid and the test set ----------------------------------------------------------------
def test_l2_chosen_on_the_test_set_is_marked(tiny, authors):
    model, _ = tiny
    ds, groups = authors
    train, test = ds.tt_split(0.25, seed=0, groups=groups)
    configs = [
        ProbeConfig(LAYERS[0], [0, 1], validation="eval", cv_folds=0, name="on-test"),
        ProbeConfig(LAYERS[0], [0, 1], name="cv"),
    ]
    runner = ProbeRunner(model, configs).fit_probes(
        train, test, num_epoch=2, batch_size=32, progress=None
    )
    notes = runner.metrics["l2_note"]
    assert "chosen on the test set" in notes["on-test"]
    assert notes["cv"] is None or "test set" not in notes["cv"]


def test_recall_at_one_percent_fpr_needs_enough_negatives():
    from lm_probe_widgets.core.engine.metrics import classification_metrics

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)  # 100 negatives: 1% is one text
    p1 = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    out = classification_metrics(np.column_stack([1 - p1, p1]), y, 2)
    assert np.isnan(out["recall_at_1fpr"]) and not np.isnan(out["recall_at_5fpr"])
    assert "recall_at_1fpr: NaN, 100 negatives (need 500" in out["operating_note"]


# -- steering against a null distribution ---------------------------------------------------
def test_steering_is_read_against_many_random_directions(fitted):
    """The probe's own direction moves its read-out beyond the band of 20 random
    directions of the same norm (a small push: the tiny model's standardised features
    make large ones saturate every direction); one draw is refused."""
    from lm_probe_widgets.core.methods import steering

    runner, _ = fitted
    name = LAYERS[1]
    texts = ["the film was", "a movie and it", "the plot is", "it was the story"]
    null = steering.steering_null(runner, name, texts, scale=0.002, n_random=20, seed=0)
    assert len(null.null) == len(null.null_kl) == 20
    assert null.low <= null.high and null.observed_low <= null.observed <= null.observed_high
    assert null.observed > null.high and null.p == pytest.approx(1 / 21)
    again = steering.steering_null(runner, name, texts, scale=0.002, n_random=20, seed=0)
    np.testing.assert_allclose(again.null, null.null)
    with pytest.raises(ProbeError, match="at least 20"):
        steering.steering_null(runner, name, texts, n_random=1)
    assert null.match == "norm" and np.all(null.null_scale == 1.0)
    assert np.ptp(null.null_kl) > 0.1 * null.kl  # the same length, not the same disruption


def test_steering_null_can_match_random_directions_by_kl(fitted):
    """match="kl": each random direction is rescaled until its mean next-token KL to the
    unchanged run is the tested direction's (within kl_rtol), so the band compares
    pushes of the same disruption; the tested KL has its interval over the texts."""
    from lm_probe_widgets.core.methods import steering

    runner, _ = fitted
    name = LAYERS[1]
    texts = ["the film was", "a movie and it", "the plot is", "it was the story"]
    with pytest.raises(ProbeError, match="match must be one of"):
        steering.steering_null(runner, name, texts, match="disruption")
    null = steering.steering_null(runner, name, texts, scale=0.002, match="kl", kl_rtol=0.05)
    assert null.match == "kl" and len(null.null_scale) == len(null.null_kl) == 20
    np.testing.assert_allclose(null.null_kl, null.kl, rtol=0.05)
    assert not np.allclose(null.null_scale, 1.0)  # the same length was not the same KL
    assert null.kl_low <= null.kl <= null.kl_high and null.kl_low < null.kl_high
