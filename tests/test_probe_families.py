"""Probe families (core.methods.{sparse,mlp,attention}_probe): k-sparse probes recover
planted dimensions in scikit-learn's L1-path order and beat random dimensions of the
same k; MLP probes match a plain torch MLP and report selectivity at the same
capacity; attention probes find a keyword among filler tokens where mean and last
pooling cannot. Bad input is refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.methods.sparse_probe import l1_penalty, rank_dimensions, sparse_curve

PLANTED = (5, 11, 2)  # dimensions carrying the label, strongest first


def _planted(n: int, seed: int, width: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Two classes; dimension PLANTED[i] shifts by a decreasing amount with the label,
    every dimension on its own scale (a ranking must not read scale as signal)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, width))
    for shift, d in zip((2.0, 1.2, 0.7), PLANTED, strict=True):
        x[:, d] += shift * (2 * y - 1)
    return x * rng.uniform(0.1, 10.0, width), y


def _l1_path_order(x: np.ndarray, y: np.ndarray, k: int) -> list[int]:
    """The first k dimensions to enter scikit-learn's L1 logistic path (saga: another
    solver than the library's liblinear), in order, as the penalty weakens."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import l1_min_c

    xs = StandardScaler().fit_transform(x)
    entered: list[int] = []
    for c in l1_min_c(xs, y, loss="log") * np.logspace(0, 3, 40):
        coef = LogisticRegression(**l1_penalty(), solver="saga", C=c, tol=1e-6, max_iter=5000)
        nonzero = np.flatnonzero(np.abs(coef.fit(xs, y).coef_[0]) > 1e-8)
        entered += [int(d) for d in nonzero if d not in entered]
        if len(entered) >= k:
            return entered[:k]
    raise AssertionError("the L1 path never reached k dimensions")


@pytest.mark.parametrize("rank_by", ["mean_diff", "l1"])
def test_sparse_ranking_matches_the_l1_path_of_scikit_learn(rank_by):
    x, y = _planted(400, 0)
    order = rank_dimensions(x, y, rank_by)
    assert sorted(order.tolist()) == list(range(x.shape[1]))
    path = _l1_path_order(x, y, 3)
    assert path == list(PLANTED)  # the planted order: the reference sees the data as made
    for k in (1, 2, 3):  # the same k dimensions (ties: none planted)
        assert set(order[:k].tolist()) == set(path[:k])


def test_sparse_curve_beats_random_dimensions_only_where_they_differ():
    x, y = _planted(400, 0)
    xt, yt = _planted(300, 1)
    curve = sparse_curve(x, y, xt, yt, ks=[1, 3, 16], n_random=3)
    by_k = curve.set_index("k")
    assert by_k.loc[1, "dims"] == (PLANTED[0],)
    assert set(by_k.loc[3, "dims"]) == set(PLANTED)
    assert by_k.loc[1, "verdict"] == by_k.loc[3, "verdict"] == "beats"
    # all 16 dimensions are "random 16" too: the same probe, a tie to float rounding
    assert by_k.loc[16, "verdict"] == "ties"
    assert by_k.loc[16, "accuracy"] == pytest.approx(by_k.loc[16, "random_accuracy"], abs=1e-9)
    assert (curve["low"] <= curve["difference"]).all()
    assert (curve["difference"] <= curve["high"]).all()
    assert (curve["p_holm"] >= curve["p"] - 1e-12).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ks": [0]},
        {"ks": [17]},
        {"ks": [1.5]},
        {"ks": []},
        {"rank_by": "max"},
        {"n_random": 0},
        {"c": 0},
        {"level": 1.5},
        {"seed": -1},
    ],
)
def test_sparse_curve_refuses_bad_input(kwargs):
    x, y = _planted(40, 0)
    with pytest.raises(ProbeError):
        sparse_curve(x, y, x, y, **kwargs)


def _torch_mlp_reference(x, y, xt, width, weight_decay, lr, steps, seed):
    """A plain torch MLP, written here: standardise, Linear-ReLU-Linear, full-batch
    AdamW on cross-entropy, initialised after torch.manual_seed(seed)."""
    import torch

    mu, sd = x.mean(0), x.std(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, 2)
        )
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    xs = torch.tensor((x - mu) / sd, dtype=torch.float32)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xs), torch.tensor(y)).backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(net(torch.tensor((xt - mu) / sd, dtype=torch.float32)), -1).numpy()


def test_mlp_probe_matches_a_plain_torch_mlp_and_round_trips(tmp_path):
    from lm_probe_widgets.core.methods.mlp_probe import MLPProbe

    x, y = _planted(200, 0)
    xt, _ = _planted(50, 1)
    probe = MLPProbe(8, 1e-2, lr=1e-2, steps=60, seed=3).fit(x, y)
    expected = _torch_mlp_reference(x, y, xt, 8, 1e-2, 1e-2, 60, 3)
    np.testing.assert_allclose(probe.predict_proba(xt), expected, atol=1e-5)
    probe.save(tmp_path / "mlp.safetensors")
    loaded = MLPProbe.load(tmp_path / "mlp.safetensors")
    np.testing.assert_allclose(loaded.predict_proba(xt), probe.predict_proba(xt), atol=1e-7)
    assert (loaded.width, loaded.weight_decay, loaded.steps) == (8, 1e-2, 60)


def test_mlp_fit_refused_changes_nothing():
    from lm_probe_widgets.core.methods.mlp_probe import MLPProbe

    x, y = _planted(60, 0)
    probe = MLPProbe(4, steps=5).fit(x, y)
    before = probe.predict_proba(x)
    for bad in ((x[:0], y[:0]), (x, y[:-1]), (np.where(x > 5, np.nan, x), y), (x, y - 1)):
        with pytest.raises(ProbeError):
            probe.fit(*bad)
    np.testing.assert_array_equal(probe.predict_proba(x), before)
    with pytest.raises(ProbeError):
        MLPProbe(-1)


MARK = 6.0  # how far the keyword token stands out from filler (dimension 0)


def _keyword_texts(n: int, seed: int, fillers: int = 60, width: int = 8):
    """Each text: `fillers` noise tokens and one keyword token at a random position.
    Dimension 0 marks the keyword (+MARK), dimension 1 carries the label on the keyword
    alone (±2); every other value is standard noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    texts, where = [], rng.integers(0, fillers + 1, n)
    for label, at in zip(y, where, strict=True):
        t = rng.standard_normal((fillers + 1, width))
        t[at, 0] += MARK
        t[at, 1] += 2.0 * (2 * label - 1)
        texts.append(t)
    return texts, y, where


@pytest.fixture(scope="module")
def keyword_probe():
    from lm_probe_widgets.core.methods.attention_probe import AttentionProbe

    train, y, _ = _keyword_texts(300, 0)
    return AttentionProbe(steps=100, lr=3e-2, seed=0).fit(train, y), train, y


def test_attention_probe_finds_the_keyword_where_mean_and_last_pooling_cannot(keyword_probe):
    from lm_probe_widgets.core.methods.attention_probe import pooling_comparison

    probe, train, y = keyword_probe
    test, yt, where = _keyword_texts(200, 1)
    table = pooling_comparison(probe, train, y, test, yt).set_index("pooling")
    assert (table["verdict"] == "beats").all()  # paired, Holm over mean and last
    weights = probe.token_weights(test)
    assert all(w.shape == (len(t), 1) for w, t in zip(weights, test, strict=True))
    np.testing.assert_allclose([w.sum() for w in weights], 1.0, atol=1e-6)
    hit = np.array([w[:, 0].argmax() for w in weights]) == where
    # one head may read one class's keyword only (its absence then says "the other
    # class"): on the texts of the class it reads, it peaks at the keyword
    assert max(hit[yt == 0].mean(), hit[yt == 1].mean()) > 0.85


def test_attention_probe_round_trips_and_refuses_bad_input(keyword_probe, tmp_path):
    from lm_probe_widgets.core.methods.attention_probe import AttentionProbe

    probe, train, y = keyword_probe
    probe.save(tmp_path / "attention.safetensors")
    loaded = AttentionProbe.load(tmp_path / "attention.safetensors")
    np.testing.assert_allclose(loaded.predict_proba(train[:20]), probe.predict_proba(train[:20]))
    before = probe.predict_proba(train[:20])
    ragged = [train[0][:, :3], *train[1:]]
    for bad in (([], []), (train, y[:-1]), (ragged, y), (train, y + 5.0)):
        with pytest.raises(ProbeError):
            probe.fit(*bad)
    np.testing.assert_array_equal(probe.predict_proba(train[:20]), before)
    with pytest.raises(ProbeError):
        probe.predict([t[:, :3] for t in train[:2]])
    with pytest.raises(ProbeError):
        AttentionProbe(heads=0)


SITE = "transformer.h.1.output"


@pytest.fixture(scope="module")
def unfitted(tiny, sentiment):
    """A runner on the tiny GPT-2 (no fit: the families need only its features) and
    a train/test split of the sentiment texts."""
    from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner

    model, tok = tiny
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts[:120], labels[:120], tok, max_length=32)
    train, test = ds.tt_split(test_size=0.5, seed=0)
    configs = [ProbeConfig(SITE, [0, 1], name="mean"), ProbeConfig(SITE, [0, 1], name="last")]
    configs[1].pooling = "last"
    return ProbeRunner(model, configs), train, test


def test_families_read_the_runners_features(unfitted):
    from lm_probe_widgets.core.methods.attention_probe import token_features
    from lm_probe_widgets.core.methods.compare import VERDICTS

    runner, train, test = unfitted
    # token-level rows split per text: their mean and last row are the pooled features
    tokens = token_features(runner, runner.configs[0], test)
    assert [len(t) for t in tokens] == test.lengths.tolist()
    pooled = runner.get_probe_features(test)
    np.testing.assert_allclose([t.mean(0) for t in tokens], pooled["mean"], atol=1e-5)
    np.testing.assert_allclose([t[-1] for t in tokens], pooled["last"], atol=1e-6)

    curve = runner.sparse_probe("mean", [1, 4], train=train, test=test, n_random=2)
    assert curve["k"].tolist() == [1, 4] and curve["verdict"].isin(VERDICTS).all()
    assert all(len(d) == k and max(d) < 32 for d, k in zip(curve["dims"], curve["k"], strict=True))
    sweep = runner.mlp_probe("mean", widths=(0, 4), train=train, test=test, steps=20)
    assert sweep["selectivity"].to_numpy() == pytest.approx(
        (sweep["accuracy"] - sweep["control_accuracy"]).to_numpy()
    )
    probe, table = runner.attention_probe("mean", train=train, test=test, steps=10)
    assert table["pooling"].tolist() == ["mean", "last"]
    assert len(probe.token_weights(tokens)) == len(test)
    with pytest.raises(ProbeError, match="no probe"):
        runner.sparse_probe("nope", train=train, test=test)
    with pytest.raises(ProbeError, match="train= and test="):
        runner.mlp_probe("mean")


def test_capacity_sweep_is_selective_on_a_planted_concept():
    from lm_probe_widgets.core.methods.mlp_probe import capacity_sweep

    x, y = _planted(300, 0)
    xt, yt = _planted(200, 1)
    rng = np.random.default_rng(0)  # control labels: memorisable, not generalisable
    control, control_test = rng.integers(0, 2, len(y)), rng.integers(0, 2, len(yt))
    sweep = capacity_sweep(x, y, control, xt, yt, control_test, widths=[0, 16], steps=100)
    assert sweep["width"].tolist() == [0, 16]
    assert (sweep["verdict"] == "beats").all()
    assert (sweep["p_holm"] >= sweep["p"] - 1e-12).all()
    with pytest.raises(ProbeError):
        capacity_sweep(x, y, control, xt, yt, control_test, widths=[-1])
    with pytest.raises(ProbeError):
        capacity_sweep(x, y, control[:-1], xt, yt, control_test)


def test_family_plots_mark_only_what_the_tables_claim():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from lm_probe_widgets.display.family_plots import plot_capacity_sweep, plot_sparse_curve

    curve = pd.DataFrame(
        {"k": [1, 2, 4], "accuracy": [0.8, 0.9, 0.9], "random_accuracy": [0.5, 0.6, 0.8]}
        | {"verdict": ["beats", "beats", "ties"]}
    )
    ax = plot_sparse_curve(curve)
    filled = [
        ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_markerfacecolor() != "none"
    ]
    hollow = [ln for ln in ax.lines if ln.get_markerfacecolor() == "none"]
    assert [len(ln.get_xdata()) for ln in filled if len(ln.get_xdata())] == [2]
    assert [list(ln.get_xdata()) for ln in hollow] == [[4]]
    sweep = pd.DataFrame(
        {"width": [0, 16, 0, 16], "weight_decay": [0.01, 0.01, 0.1, 0.1]}
        | {"accuracy": [0.8, 0.9, 0.8, 0.85], "control_accuracy": [0.5, 0.7, 0.5, 0.6]}
        | {"verdict": ["beats", "ties", "beats", "beats"]}
    )
    ax = plot_capacity_sweep(sweep)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["linear", "16"]
    hollow = [ln for ln in ax.lines if ln.get_markerfacecolor() == "none" and len(ln.get_xdata())]
    assert [list(ln.get_ydata()) for ln in hollow] == [[0.9]]  # width 16, decay 0.01
    with pytest.raises(ValueError, match="sparse_probe"):
        plot_sparse_curve(sweep)
    matplotlib.pyplot.close("all")


@settings(max_examples=5)
@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 4), width=st.integers(2, 8))
def test_rankings_order_every_dimension_and_put_a_planted_one_first(seed, n_classes, width):
    rng = np.random.default_rng(seed)
    y = np.arange(40 * n_classes) % n_classes
    x = rng.standard_normal((len(y), width)) * rng.uniform(0.1, 10.0, width)
    planted = int(rng.integers(width))
    x[:, planted] = rng.standard_normal(len(y)) + 3.0 * y  # the classes apart, in order
    for by in ("mean_diff", "l1"):
        order = rank_dimensions(x, y, by)
        assert sorted(order.tolist()) == list(range(width))
        assert order[0] == planted


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("sparse_probe", {"level": 2.0}),
        ("sparse_probe", {"ks": [0]}),
        ("mlp_probe", {"widths": [-1]}),
        ("mlp_probe", {"steps": 0}),
        ("attention_probe", {"heads": 0}),
        ("attention_probe", {"seed": -1}),
    ],
)
def test_family_options_are_refused_before_the_model_runs(unfitted, sentiment, method, options):
    from lm_probe_widgets import ProbeDataset

    runner, _, _ = unfitted
    texts, labels = sentiment
    fresh = ProbeDataset.from_texts(texts[200:], labels[200:], runner.model.tokenizer)
    with pytest.raises(ProbeError):
        getattr(runner, method)("mean", train=fresh, test=fresh, **options)
    key = runner.configs[0].feature_key
    token_key = (*key[:2], "none")
    assert runner.cache.get(runner.data_key(fresh), key) is None
    assert runner.cache.get(runner.data_key(fresh), token_key) is None
