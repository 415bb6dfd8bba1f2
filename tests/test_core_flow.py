"""The original lm_probe README flow, unchanged apart from model loading, and the
runner's main guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import events as ev


def _fit(tiny, sentiment, configs, **kw):
    model, tok = tiny
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=32)
    train, test = ds.tt_split(test_size=0.25, seed=0)
    runner = ProbeRunner(model, configs)
    kw.setdefault("num_epoch", 4)
    runner.fit_probes(train, test, batch_size=16, progress=None, **kw)
    return runner, train, test


def test_original_readme_flow(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    enc = tok(texts, padding="max_length", truncation=True, max_length=24, return_tensors="pt")
    ds = ProbeDataset(enc["input_ids"], enc["attention_mask"], torch.tensor(labels))
    train, test = ds.tt_split(test_size=0.5)
    subs = ["transformer.h.2.output", "transformer.h.1.mlp.output", "transformer.h.0.attn.output"]
    configs = [ProbeConfig(s, [0, 1], test_size=0.5, patience=10, warmup_steps=25) for s in subs]
    runner = ProbeRunner(model, configs)
    runner.fit_probes(train, test, batch_size=8, progress=None)
    m = runner.metrics.sort_values(by=["loss", "matthews"], ascending=[True, False])
    assert list(runner.metrics.index) == subs
    for col in [
        "loss",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "matthews",
        "steps",
        "examples_seen",
        "stop_reason",
    ]:
        assert col in m.columns
    feats = runner.get_probe_features(test[0]["input_ids"][None], test[0]["attention_mask"][None])
    assert set(feats) == set(subs) and feats[subs[0]].shape == (1, 32)
    pred = runner[subs[0]].predict(feats[subs[0]])
    assert pred.shape == (1,) and pred[0] in (0, 1)
    # The task is learnable from the sentiment word's embedding: a real probe beats chance.
    assert m["accuracy"].max() > 0.7


def test_metrics_are_honest_and_reproducible(tiny, sentiment):
    cfg = [ProbeConfig("transformer.h.1.output", [0, 1], seed=3)]
    r1, _, test = _fit(tiny, sentiment, cfg)
    r2, _, _ = _fit(tiny, sentiment, [ProbeConfig("transformer.h.1.output", [0, 1], seed=3)])
    assert r1.metrics.drop(columns=["stop_reason"]).equals(r2.metrics.drop(columns=["stop_reason"]))
    probe = r1["transformer.h.1.output"]
    x = r1.get_probe_features(test)["transformer.h.1.output"]
    proba = probe.predict_proba(x)
    row = r1.metrics.loc["transformer.h.1.output"]
    # loss is the log-loss of calibrated probabilities, not of 0/1 predictions
    assert row["loss"] == pytest.approx(log_loss(test.labels, proba, labels=[0, 1]), rel=1e-5)
    assert 0.05 < row["loss"] < 2.0
    assert row["accuracy"] == pytest.approx(probe.score(x, test.labels))
    assert row["examples_seen"] > 0 and row["steps"] > 0


def test_different_seed_changes_training(tiny, sentiment):
    r1, _, _ = _fit(tiny, sentiment, [ProbeConfig("transformer.h.1.output", [0, 1], seed=0)])
    r2, _, _ = _fit(
        tiny, sentiment, [ProbeConfig("transformer.h.1.output", [0, 1], seed=0)], seed=1
    )
    assert r1.metrics["loss"].iloc[0] != r2.metrics["loss"].iloc[0]


def test_early_stopping_restores_best_weights(tiny, sentiment):
    cfg = ProbeConfig(
        "transformer.h.2.output",
        [0, 1],
        patience=3,
        warmup_steps=1,
        lr=0.2,
        l2=[0.0],
        refine=False,
    )
    runner, _, _ = _fit(tiny, sentiment, [cfg], num_epoch=30)
    probe = runner["transformer.h.2.output"]
    rec = probe.record
    assert rec.state == "early-stopped" and "validation loss" in rec.stop_reason
    assert rec.best_step < rec.steps
    val = runner.validation_set
    xv = runner.get_probe_features(val)["transformer.h.2.output"]
    loss_now = log_loss(val.labels, probe.predict_proba(xv), labels=[0, 1])
    # the weights in use are those of the best step, on the real held-out split
    assert loss_now == pytest.approx(rec.best_val_loss, rel=1e-4)
    assert min(h["val_loss"] for h in rec.history) == pytest.approx(rec.best_val_loss)


def test_raw_space_coefficients_match_predictions(tiny, sentiment):
    runner, _, test = _fit(tiny, sentiment, [ProbeConfig("transformer.h.0.output", [0, 1])])
    probe = runner["transformer.h.0.output"]
    x = runner.get_probe_features(test)["transformer.h.0.output"]
    np.testing.assert_allclose(
        x @ probe.coef_.T + probe.intercept_, probe.decision_function(x), rtol=1e-4, atol=1e-3
    )
    assert probe.direction().shape == (32,)
    assert np.linalg.norm(probe.direction()) == pytest.approx(1.0)


def test_probes_sharing_a_submodule_keep_their_own_results(tiny, sentiment):
    cfgs = [
        ProbeConfig("transformer.h.2.output", [0, 1], name="mean"),
        ProbeConfig("transformer.h.2.output", [0, 1], name="last", pooling="last"),
        ProbeConfig("transformer.h.2.output", [0, 1], name="max", pooling="max"),
    ]
    runner, _, test = _fit(tiny, sentiment, cfgs)
    feats = runner.get_probe_features(test)
    assert not np.allclose(feats["mean"], feats["last"])
    assert len(set(runner.metrics["loss"])) == 3
    assert list(runner.metrics["pooling"]) == ["mean", "last", "max"]


def test_events_tell_the_story(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.1.output", [0, 1])])
    seen = []
    runner.events.subscribe(lambda e: seen.append(e))
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None)
    kinds = [e.kind for e in seen]
    assert kinds[0] == ev.FIT_STARTED and kinds[-1] == ev.FIT_FINISHED
    assert ev.STEP in kinds and ev.EVALUATED in kinds and ev.PROBE_FINISHED in kinds
    phases = [e.data["phase"] for e in seen if e.kind == ev.BATCH]
    assert phases.index("extract-val") < phases.index("extract-train") < phases.index("train")
    assert phases[-1] == "extract-eval"
    assert seen[-1].data["reason"] == "completed"
    steps = [e.data["step"] for e in seen if e.kind == ev.STEP]
    assert steps == list(range(1, len(steps) + 1))


def test_stop_request_ends_cleanly_and_still_evaluates(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.1.output", [0, 1], patience=1000)])

    def stop_after_20(e):
        if e.kind == ev.STEP and e.data["step"] == 20:
            runner.request_stop()

    runner.events.subscribe(stop_after_20)
    runner.fit_probes(train, test, num_epoch=50, batch_size=16, progress=None)
    row = runner.metrics.iloc[0]
    assert runner.state == "stopped" and row["state"] == "stopped"
    assert 20 <= row["steps"] < 40 and "stopped by user" in row["stop_reason"]
    assert not math.isnan(row["accuracy"])
    assert not row["refined"]  # a Stop means "now": no final fit


def test_keyboard_interrupt_keeps_probes_and_resumes(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.1.output", [0, 1], patience=1000)])

    def interrupt(e):
        if e.kind == ev.STEP and e.data["step"] == 15:
            raise KeyboardInterrupt

    unsubscribe = runner.events.subscribe(interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.fit_probes(train, test, num_epoch=5, batch_size=16, progress=None)
    probe = runner["transformer.h.1.output"]
    assert probe.state == "interrupted" and probe.record.steps == 15
    x = runner.get_probe_features(test)["transformer.h.1.output"]
    assert probe.predict(x).shape == (len(test),)  # usable after the interrupt
    assert runner.metrics.loc["transformer.h.1.output", "state"] == "interrupted"
    unsubscribe()
    assert not probe.record.refined
    runner.fit_probes(train, test, num_epoch=5, batch_size=16, progress=None, resume=True)
    assert probe.state == "finished" and probe.record.steps > 15
    assert probe.record.refined  # converged once training really ended
    assert runner["transformer.h.1.output"] is probe
    assert not math.isnan(runner.metrics.iloc[0]["accuracy"])


def test_plain_hf_model_is_wrapped(sentiment):
    from lm_probe_widgets.core.io.tiny import tiny_hf_model

    hf, tok = tiny_hf_model("llama")
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    runner = ProbeRunner(hf, [ProbeConfig("model.layers.1.output", [0, 1])], tokenizer=tok)
    runner.fit_probes(train, test, num_epoch=1, batch_size=32, progress=None)
    assert runner.metrics["accuracy"].iloc[0] > 0


def test_plain_torch_module():
    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(20, 8)
            self.block = torch.nn.Linear(8, 8)

        def forward(self, input_ids):
            return self.block(self.emb(input_ids))

    torch.manual_seed(0)
    ids = torch.randint(2, 8, (80, 6))  # 6 token types in 8 dims: linearly separable
    labels = (ids[:, 0] > 4).long()
    ds = ProbeDataset(ids, None, labels)
    train, test = ds.tt_split(0.25)
    runner = ProbeRunner(Toy(), [ProbeConfig("block.output", [0, 1], pooling="first")])
    runner.fit_probes(train, test, num_epoch=20, batch_size=8, progress=None)
    assert runner.metrics["accuracy"].iloc[0] > 0.8
