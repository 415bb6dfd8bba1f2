"""Issue 7: the probing methodology (control tasks, baselines, MDL, CIs, pooling,
directions and steering, L2 sweep) on the tiny GPT-2. Each test asserts behaviour
that breaks if the capability breaks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine.uncertainty import accuracy_f1, bootstrap_ci, confusion
from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.methods import steering
from lm_probe_widgets.core.methods.baselines import input_embedding_path, random_init_model
from lm_probe_widgets.core.methods.control_tasks import ControlTask

LAYERS = ["transformer.h.0.output", "transformer.h.1.output"]
FIT = dict(num_epoch=4, batch_size=16, progress=None)
# 180 training texts are few: a faster first pass lets the online code show what it learns.
FAST = 1e-2


def _split(tok, texts, labels):
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=32)
    return ds.tt_split(test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def learnable(tiny, sentiment):
    """Probes on a learnable task, with control probes and every baseline."""
    model, tok = tiny
    train, test = _split(tok, *sentiment)
    runner = ProbeRunner(model, [ProbeConfig(s, [0, 1], first_pass_lr=FAST) for s in LAYERS])
    runner.fit_probes(
        train, test, control=True, baselines=("majority", "embeddings", "random_init"), **FIT
    )
    return runner, train, test


@pytest.fixture(scope="module")
def random_labels(tiny):
    """Texts with labels that carry no information (480, so the test split has 120)."""
    from synthetic import sentiment_texts

    model, tok = tiny
    texts, labels = sentiment_texts(480, seed=1)
    noise = np.random.default_rng(123).permutation(labels)
    train, test = _split(tok, texts, noise)
    runner = ProbeRunner(model, [ProbeConfig(s, [0, 1], first_pass_lr=FAST) for s in LAYERS])
    return runner.fit_probes(train, test, control=True, **FIT)


# -- control tasks and selectivity -----------------------------------------------------------
def test_control_labels_are_consistent_per_type_seeded_and_keep_the_distribution():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 50, size=rng.integers(2, 8)) for _ in range(600)]
    labels = (rng.random(600) < 0.3).astype(int)  # 30% positives
    ds = ProbeDataset(seqs, labels=labels)
    task = ControlTask.fit(ds, seed=5)
    ctrl = task.relabel(ds).labels
    assert abs(ctrl.mean() - labels.mean()) < 0.07  # class distribution kept
    assert not np.array_equal(ctrl, labels)
    # Same sequence, same control label, in any dataset; another seed gives other labels.
    again = task.relabel(ProbeDataset([seqs[3], seqs[3], seqs[10]], labels=[0, 1, 1])).labels
    assert again[0] == again[1] == ctrl[3] and again[2] == ctrl[10]
    assert np.array_equal(ControlTask.fit(ds, seed=5).relabel(ds).labels, ctrl)
    assert not np.array_equal(ControlTask.fit(ds, seed=6).relabel(ds).labels, ctrl)

    # Token level: one label per token id; ignored tokens stay ignored.
    tok_labels = [np.where(s % 7 == 0, -100, s % 2) for s in seqs]
    tds = ProbeDataset(seqs, labels=tok_labels)
    tctrl = ControlTask.fit(tds, seed=1).relabel(tds)
    flat_ids, flat_ctrl = np.concatenate(tds.tokens), np.concatenate(tctrl.token_labels)
    assert np.array_equal(flat_ctrl == -100, np.concatenate(tok_labels) == -100)
    for t in np.unique(flat_ids[flat_ctrl != -100]):
        assert len(np.unique(flat_ctrl[(flat_ids == t) & (flat_ctrl != -100)])) == 1
    assert tctrl.tokens is tds.tokens  # same tokens: the feature cache is reused


def test_pooled_control_labels_come_from_token_types_and_are_learnable_held_out(tiny):
    """Pooled probes' control labels depend only on which token types a text holds,
    so a memorising probe (mean-pooled embeddings) learns them on held-out texts:
    control accuracy well above chance. A label per whole text could not be."""
    from synthetic import sentiment_texts

    model, tok = tiny
    texts, labels = sentiment_texts(480, seed=4)
    train, test = _split(tok, texts, labels)
    task = ControlTask.fit(train, seed=0)
    shuffled = ProbeDataset([np.random.default_rng(0).permutation(t) for t in train.tokens])
    assert np.array_equal(task.sequence_labels(shuffled.tokens), task.sequence_labels(train.tokens))
    runner = ProbeRunner(model, [ProbeConfig("transformer.wte.output", [0, 1], first_pass_lr=FAST)])
    runner.fit_probes(train, test, control=True, num_epoch=20, batch_size=16, progress=None)
    ctrl = runner.metrics["control_accuracy"].iloc[0]
    assert ctrl > 0.75, runner.metrics[["accuracy", "control_accuracy"]]


def test_selectivity_is_near_zero_on_random_labels(random_labels):
    m = random_labels.metrics
    assert {"control_accuracy", "selectivity"} <= set(m.columns)
    assert np.allclose(m["selectivity"], m["accuracy"] - m["control_accuracy"])
    # Noise labels: the task is at chance, the control (token types) is not, so a probe
    # on noise shows no selectivity at all.
    assert (m["accuracy"] < 0.65).all(), m[["accuracy", "control_accuracy"]]
    assert (m["selectivity"] < 0.05).all(), m[["accuracy", "control_accuracy"]]


def test_selectivity_is_positive_on_a_learnable_task(learnable):
    runner, _, test = learnable
    m = runner.metrics
    # The task itself is lexical (one word decides), so the type-based control explains
    # much of it; the probe still beats it.
    assert m["selectivity"].min() > 0.05, m[["accuracy", "control_accuracy"]]
    # Control probes read the same cached features, and are evaluated on control labels.
    assert runner.control.cache is runner.cache
    ctrl_test = runner.control_task.relabel(test)
    name = LAYERS[0]
    x = runner.get_probe_features(test)[name]
    acc = runner.control[name].score(x, ctrl_test.labels)
    assert m.loc[name, "control_accuracy"] == pytest.approx(acc)


def test_control_needs_an_eval_set(tiny, sentiment):
    model, tok = tiny
    train, _ = _split(tok, *sentiment)
    with pytest.raises(ProbeError, match="eval_set"):
        ProbeRunner(model, ProbeConfig(LAYERS[0])).fit_probes(train, control=True, **FIT)
    with pytest.raises(ProbeError, match="unknown baselines"):
        ProbeRunner(model, ProbeConfig(LAYERS[0])).fit_probes(train, baselines=("nope",), **FIT)


# -- MDL and the online Adam code ------------------------------------------------------------------
def test_mdl_well_below_uniform_when_learnable_and_near_it_for_noise(learnable, random_labels):
    """The block-wise online code (Voita & Titov) of `runner.mdl()`: well below the
    uniform code on a learnable task, about at it on shuffled labels; `metrics` carries
    it from then on, and the first pass's Adam bits keep a name that says what they are."""
    runner, train, _ = learnable
    plan = runner.last_plan
    m = runner.mdl()
    n_train = len(plan.train) + (0 if plan.val is None else len(plan.val))
    assert (m["uniform_bits"] == n_train).all()  # 1 bit per binary label
    assert m["compression"].max() > 1.2, m
    pd.testing.assert_series_equal(runner.metrics["compression"], m["compression"])
    low, high = runner.metrics["compression_low"], runner.metrics["compression_high"]
    assert (low < m["compression"]).all() and (m["compression"] < high).all()
    noise = random_labels.mdl()
    assert noise["compression"].between(0.8, 1.05).all(), noise
    adam = runner.metrics["online_adam_code_bits"]
    assert (adam > 0).all() and "code_length_bits" not in runner.metrics


def test_code_length_is_prequential_first_pass_only(tiny, sentiment):
    model, tok = tiny
    train, test = _split(tok, *sentiment)
    cfg = dict(classes=[0, 1], validation="none")

    def code(num_epoch, batch_size):
        r = ProbeRunner(model, ProbeConfig(LAYERS[1], **cfg))
        r.fit_probes(train, test, num_epoch=num_epoch, batch_size=batch_size, progress=None)
        return r.probes[LAYERS[1]].record

    # One batch holding everything: it is scored by the untrained probe, before the update.
    one = code(1, len(train))
    assert one.code_length_bits == pytest.approx(one.uniform_bits, rel=0.01)
    # Later epochs never add to the code: it describes the first pass only.
    assert code(1, 16).code_length_bits == pytest.approx(code(3, 16).code_length_bits)


# -- pooling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["last", "mean", "first", "max"])
def test_pooling_agrees_under_left_and_right_padding(tiny, sentiment, pooling):
    model, tok = tiny
    texts = sentiment[0][:12]
    runner = ProbeRunner(model, ProbeConfig(LAYERS[1], pooling=pooling))
    feats = []
    for side in ("left", "right"):
        tok.padding_side = side
        enc = tok(texts, padding=True, return_tensors="pt")
        assert (enc["attention_mask"] == 0).any()
        feats.append(runner.get_probe_features(enc["input_ids"], enc["attention_mask"])[LAYERS[1]])
    tok.padding_side = "left"
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-5)
    # Against the unpadded texts one by one.
    solo = [runner.get_probe_features(tok([t], return_tensors="pt")["input_ids"]) for t in texts]
    np.testing.assert_allclose(np.concatenate([s[LAYERS[1]] for s in solo]), feats[1], atol=1e-5)


def test_last_pooling_inside_a_left_padded_trace(tiny, sentiment):
    """The in-trace pooling on a left-padded batch (nnsight derives the positions from
    the mask) matches the right-padded batch."""
    from lm_probe_widgets.core.engine.extract import pooled_trace

    model, tok = tiny
    runner = ProbeRunner(model, ProbeConfig(LAYERS[1], pooling="last"))
    ex = runner.extractor([runner.configs[0].feature_key])
    texts = sentiment[0][:8]
    out = []
    for side in ("left", "right"):
        tok.padding_side = side
        enc = tok(texts, padding=True, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        (h,) = pooled_trace(runner.model, ex.reads, ex.hows, ex._envoy_paths, ids, mask)
        out.append(h.numpy())
    tok.padding_side = "left"
    np.testing.assert_allclose(out[0], out[1], atol=1e-4)


# -- uncertainty -------------------------------------------------------------------------------
def test_bootstrap_ci_contains_the_estimate_narrows_with_data_and_is_seeded():
    rng = np.random.default_rng(0)

    def data(n):
        y = rng.integers(0, 3, n)
        pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
        return y, pred

    y, pred = data(200)
    ci = bootstrap_ci(y, pred, 3, n_boot=1000, seed=0)
    acc, f1 = accuracy_f1(confusion(y, pred, 3))
    assert acc == pytest.approx(np.mean(y == pred))
    assert f1 == pytest.approx(f1_score(y, pred, average="macro", labels=[0, 1, 2]))
    assert ci["accuracy_low"] < acc < ci["accuracy_high"]
    assert ci["f1_low"] < f1 < ci["f1_high"]
    big = bootstrap_ci(*data(3200), 3, n_boot=1000, seed=0)
    width = ci["accuracy_high"] - ci["accuracy_low"]
    assert big["accuracy_high"] - big["accuracy_low"] < 0.4 * width  # ~1/sqrt(16)
    assert bootstrap_ci(y, pred, 3, seed=0) == bootstrap_ci(y, pred, 3, seed=0)
    assert bootstrap_ci(y, pred, 3, seed=0) != bootstrap_ci(y, pred, 3, seed=1)
    assert all(math.isnan(v) for v in bootstrap_ci(y, pred, 3, n_boot=0).values())


def test_runner_metrics_carry_cis_and_roc_auc(learnable):
    runner, _, test = learnable
    m = runner.metrics
    assert (m["accuracy_low"] <= m["accuracy"]).all() and (
        m["accuracy"] <= m["accuracy_high"]
    ).all()
    assert (m["f1_low"] <= m["f1"]).all() and (m["f1"] <= m["f1_high"]).all()
    # ROC AUC has its interval too, by the same resampling rule (core/engine/uncertainty.py)
    assert (m["roc_auc_low"] <= m["roc_auc"]).all() and (m["roc_auc"] <= m["roc_auc_high"]).all()
    name = LAYERS[1]
    x = runner.get_probe_features(test)[name]
    assert m.loc[name, "roc_auc"] == pytest.approx(
        roc_auc_score(test.labels, runner[name].predict_proba(x)[:, 1])
    )
    again = runner.compute_metrics(test, bootstrap=200, seed=1)
    assert again.loc[name, "accuracy"] == m.loc[name, "accuracy"]
    assert again["accuracy_low"].tolist() == runner.compute_metrics(test)["accuracy_low"].tolist()
    off = runner.compute_metrics(test, bootstrap=0)
    assert off["accuracy_low"].isna().all()
    runner.compute_metrics(test, bootstrap=1000, seed=0)  # restore for other tests


# -- baselines ---------------------------------------------------------------------------------
def test_baselines_side_by_side(learnable):
    runner, train, test = learnable
    m = runner.metrics
    for col in ("baseline_majority", "baseline_embeddings", "baseline_random_init"):
        assert m[col].between(0, 1).all(), col
    majority = np.bincount(train.labels).argmax()
    assert (m["baseline_majority"] == np.mean(test.labels == majority)).all()
    assert runner.baselines["majority"].metrics["loss"].iloc[0] == pytest.approx(
        math.log(2), abs=0.02
    )
    emb = runner.baselines["embeddings"]
    assert {c.submodule for c in emb.configs} == {"transformer.wte.output"}
    assert list(emb.metrics.index) == LAYERS  # keyed by the probe each one stands beside
    assert input_embedding_path(runner.model) == "transformer.wte"


def test_random_init_baseline_is_a_different_seeded_model(learnable):
    runner, _, test = learnable
    rand = runner.baselines["random_init"]
    assert type(rand.model._module) is type(runner.model._module)
    a = runner.get_probe_features(test)[LAYERS[1]]
    b = rand.get_probe_features(test)[LAYERS[1]]
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)
    # Seeded, and the global RNG is left alone.
    state = torch.get_rng_state()
    m1, m2 = random_init_model(runner.model, 7), random_init_model(runner.model, 7)
    assert torch.equal(torch.get_rng_state(), state)
    p1, p2 = m1._module.state_dict(), m2._module.state_dict()
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    p0 = runner.model._module.state_dict()
    assert not torch.equal(
        p1["transformer.h.0.mlp.c_fc.weight"], p0["transformer.h.0.mlp.c_fc.weight"]
    )


# -- regularisation sweep and directions ---------------------------------------------------------
def test_l2_strength_is_chosen_on_validation(tiny, sentiment):
    model, tok = tiny
    train, test = _split(tok, *sentiment)
    runner = ProbeRunner(model, ProbeConfig(LAYERS[0], l2=(1e-4, 1e3)))
    runner.fit_probes(train, test, **FIT)
    assert runner.probes[LAYERS[0]].record.best_l2 == pytest.approx(1e-4)
    assert runner.metrics.loc[LAYERS[0], "l2"] == pytest.approx(1e-4)
    crushed = ProbeRunner(model, ProbeConfig(LAYERS[0], l2=(1e3,))).fit_probes(train, test, **FIT)
    assert crushed.metrics.loc[LAYERS[0], "loss"] > runner.metrics.loc[LAYERS[0], "loss"]


def test_directions_probe_and_mass_mean(learnable):
    runner, train, _ = learnable
    probe = runner[LAYERS[0]]
    d = probe.direction()
    coef = probe.coef_
    assert np.linalg.norm(d) == pytest.approx(1, abs=1e-5)
    assert d @ (coef[1] - coef[0]) / np.linalg.norm(coef[1] - coef[0]) == pytest.approx(1, abs=1e-5)
    feats = runner.get_probe_features(runner.train_part)[LAYERS[0]]
    y = runner.train_part.labels
    raw = feats[y == 1].mean(0) - feats[y == 0].mean(0)
    mm = steering.mass_mean_direction(runner, LAYERS[0], normalize=False)
    np.testing.assert_allclose(mm, raw, rtol=1e-4, atol=1e-6)
    dirs = steering.directions(runner)
    assert dirs[LAYERS[0]]["cosine"] > 0.3  # the probe and the class means roughly agree


# -- steering ----------------------------------------------------------------------------------
def test_steering_moves_the_probe_and_the_output(learnable):
    runner, _, _ = learnable
    name = LAYERS[1]
    texts = ["the movie was bad", "a dull film and the plot", "great story"]
    up = steering.steer(runner, name, texts, 2.0)
    down = steering.steer(runner, name, texts, -2.0)

    # log-odds, not probabilities: a confident probe saturates near 0 or 1
    def log_odds(res, when):
        p = np.clip(getattr(res, f"proba_{when}")[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    moved_up = log_odds(up, "after") - log_odds(up, "before")
    moved_down = log_odds(down, "after") - log_odds(down, "before")
    assert (moved_up > 0.2).all() and (moved_down < -0.2).all(), (moved_up, moved_down)
    assert (up.delta > 0).all() and (down.delta < 0).all()
    np.testing.assert_allclose(up.proba_before, down.proba_before)
    assert (up.kl > 0).all() and len(up.top_after) == 3 and len(up.top_after[0]) == 5
    zero = steering.steer(runner, name, texts, 0.0)
    np.testing.assert_allclose(zero.delta, 0, atol=1e-6)
    np.testing.assert_allclose(zero.kl, 0, atol=1e-6)
    mm = steering.steer(runner, name, texts[0], 2.0, direction="mass_mean", positions="last")
    assert mm.delta[0] > 0
    gen = steering.steer(runner, name, texts[0], 8.0, generate=True, max_new_tokens=4)
    assert len(gen.text_before) == len(gen.text_after) == 1
    assert gen.text_before != gen.text_after  # a large push changes the greedy continuation
    assert "P(1)" in repr(gen)


def test_token_level_control_is_per_token_type(tiny, sentiment):
    """At the input embeddings a token-level probe can memorise any per-type labelling:
    the control task is learnable there, so selectivity is low even for a real task."""
    model, tok = tiny
    texts = sentiment[0][:120]
    enc = tok(texts)
    vowel = {i for i in range(len(tok)) if tok.decode([i])[:1] in "aeiou"}
    labels = [
        [int(i in vowel) if k else -100 for k, i in enumerate(ids)] for ids in enc["input_ids"]
    ]
    ds = ProbeDataset(enc["input_ids"], labels=labels)
    train, test = ds.tt_split(test_size=0.25, seed=0)
    name = "transformer.wte.output"
    runner = ProbeRunner(model, ProbeConfig(name, [0, 1], pooling="none"))
    runner.fit_probes(train, test, control=True, **FIT)
    assert runner.control_task.token_level
    m = runner.metrics.loc[name]
    assert m["control_accuracy"] > 0.8, m  # types seen in training are memorised
    ctrl = np.concatenate(runner.control_task.relabel(test).token_labels)
    assert np.array_equal(ctrl == -100, np.concatenate(test.token_labels) == -100)


def test_saved_runner_keeps_control_and_baseline_columns(learnable, tmp_path):
    runner, _, test = learnable
    path = tmp_path / "probes.safetensors"
    runner.save(path)
    loaded = ProbeRunner.load(path, runner.model)
    cols = [
        "accuracy",
        "control_accuracy",
        "selectivity",
        "baseline_majority",
        "baseline_embeddings",
        "baseline_random_init",
    ]
    pd.testing.assert_frame_equal(loaded.metrics[cols], runner.metrics[cols])
    # re-evaluated on other data they would mislead, so they go
    loaded.compute_metrics(test, bootstrap=0)
    assert "selectivity" not in loaded.metrics and "baseline_majority" not in loaded.metrics
