"""Numbers people can trust (issue 13): every reported figure comes from data that
was computed, a fit is all-or-nothing, and a stopped fit resumes to the result it
would have reached uninterrupted. Each case the issue lists has a test here."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.core.engine.data import split_indices

H1 = "transformer.h.1.output"
H0 = "transformer.h.0.output"


@pytest.fixture(scope="module")
def small(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(96, seed=1)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    train, test = ds.tt_split(0.25)
    return model, tok, train, test


def _configs():
    return [
        ProbeConfig(H1, [0, 1], patience=6, warmup_steps=2),
        ProbeConfig(H0, [0, 1], pooling="last", name="h0-last", patience=1000),
    ]


def _fit(model, train, test, **kw):
    runner = ProbeRunner(model, _configs())
    kw = {"num_epoch": 3, "batch_size": 8, "progress": None, "bootstrap": 50, **kw}
    runner.fit_probes(train, test, **kw)
    return runner


def _outcome(runner):
    """Everything a user reads of a fit: weights, records, the metrics table."""
    weights = {n: (p.coef_.copy(), p.intercept_.copy()) for n, p in runner.probes.items()}
    records = {
        n: (p.record.steps, p.record.best_step, p.state, p.record.refined, p.record.epochs_done)
        for n, p in runner.probes.items()
    }
    return weights, records, runner.metrics.drop(columns=["stop_reason"])


def _assert_same(a, b):
    wa, ra, ma = a
    wb, rb, mb = b
    assert ra == rb
    for name in wa:
        np.testing.assert_array_equal(wa[name][0], wb[name][0])
        np.testing.assert_array_equal(wa[name][1], wb[name][1])
    pd.testing.assert_frame_equal(ma, mb)


@pytest.fixture(scope="module")
def uninterrupted(small):
    model, _, train, test = small
    return _outcome(_fit(model, train, test))


# -- interrupt anywhere, resume to the same result ---------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    events=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=3),
    kinds=st.lists(st.sampled_from(["stop", "interrupt"]), min_size=3, max_size=3),
)
def test_stop_or_interrupt_anywhere_resumes_to_the_uninterrupted_result(
    small, uninterrupted, events, kinds
):
    """Stops land in every phase (validation extraction, first pass, later epochs,
    final fit, evaluation) by counting events; however many, resuming reaches the
    same weights, records and metrics as a fit that never stopped."""
    model, _, train, test = small
    runner = ProbeRunner(model, _configs())
    targets = sorted(set(events))
    count = {"n": 0}

    def stopper(e):
        count["n"] += 1
        if targets and count["n"] >= targets[0]:
            targets.pop(0)
            if kinds[len(targets) % 3] == "stop":
                runner.request_stop()
            else:
                raise KeyboardInterrupt

    runner.events.subscribe(stopper)
    resume = False
    for _ in range(10):
        try:
            _fit_kw = {"num_epoch": 3, "batch_size": 8, "progress": None, "bootstrap": 50}
            runner.fit_probes(train, test, resume=resume, **_fit_kw)
        except KeyboardInterrupt:
            assert runner.state == "interrupted"
        resume = True
        if runner.state == "fitted":
            break
        # whatever was stopped, the numbers shown are of computed data only
        assert all(np.isfinite(p.coef_).all() for p in runner.probes.values())
    assert runner.state == "fitted"
    _assert_same(_outcome(runner), uninterrupted)


def test_stop_in_the_first_pass_then_resume_matches(small, uninterrupted):
    """The case seen: a stop in the first pass, then resume=True, used to train on
    cache rows never written and skip the final fit."""
    model, _, train, test = small
    runner = ProbeRunner(model, _configs())

    def stop_early(e):
        if (
            e.kind == ev.BATCH
            and e.data["phase"] == "extract-train"
            and e.data["examples_done"] > 20
        ):
            runner.request_stop()

    unsubscribe = runner.events.subscribe(stop_early)
    runner.fit_probes(train, test, num_epoch=3, batch_size=8, progress=None, bootstrap=50)
    assert runner.state == "stopped"
    assert all(not p.record.refined for p in runner.probes.values())
    unsubscribe()
    runner.fit_probes(
        train, test, num_epoch=3, batch_size=8, progress=None, bootstrap=50, resume=True
    )
    _assert_same(_outcome(runner), uninterrupted)
    assert all(p.record.refined for p in runner.probes.values())


def test_resume_with_other_settings_is_refused_and_changes_nothing(small):
    model, _, train, test = small
    runner = _fit(model, train, test, num_epoch=2)
    before = runner.metrics.copy()
    with pytest.raises(ProbeError, match="resume=True continues the last fit"):
        runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, resume=True)
    pd.testing.assert_frame_equal(runner.metrics, before)


# -- a failed fit changes nothing --------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"num_epoch": 2.5},
        {"num_epoch": 0},
        {"batch_size": 0},
        {"batch_size": "32"},
        {"seed": -1},
        {"bootstrap": -5},
        {"validation_size": "0.2"},
        {"baselines": ["bag_of_letters"]},
    ],
)
def test_bad_arguments_fail_before_anything_changes(small, bad):
    model, _, train, test = small
    runner = _fit(model, train, test, num_epoch=1)
    before, probes = runner.metrics.copy(), dict(runner.probes)
    kw = {"num_epoch": 1, "batch_size": 8, "progress": None, **bad}
    with pytest.raises(ProbeError):
        runner.fit_probes(train, test, **kw)
    pd.testing.assert_frame_equal(runner.metrics, before)
    assert runner.probes == probes and runner.state == "fitted"


def test_a_fit_that_fails_midway_leaves_the_runner_as_it_was(small, monkeypatch):
    from lm_probe_widgets.core.engine.fit import FitLoop

    model, _, train, test = small
    runner = _fit(model, train, test, num_epoch=2)
    before = runner.metrics.copy()
    weights = {n: p.coef_.copy() for n, p in runner.probes.items()}
    records = {n: p.record.steps for n, p in runner.probes.items()}
    record_step = FitLoop._record_step  # after every step, stacked or alone

    def failing_step(self, cfg, probe, *a, **k):
        if probe.record.steps == 20:
            raise RuntimeError("boom")
        return record_step(self, cfg, probe, *a, **k)

    monkeypatch.setattr(FitLoop, "_record_step", failing_step)
    with pytest.raises(RuntimeError, match="boom"):  # a fresh refit, in a later epoch
        runner.fit_probes(train, test, num_epoch=4, batch_size=8, progress=None)
    pd.testing.assert_frame_equal(runner.metrics, before)
    assert runner.state == "fitted"
    for n, p in runner.probes.items():
        np.testing.assert_array_equal(p.coef_, weights[n])
        assert p.record.steps == records[n]


def test_one_fit_at_a_time(small):
    model, _, train, test = small
    runner = ProbeRunner(model, _configs())
    inside, release = threading.Event(), threading.Event()

    def hold(e):
        if e.kind == ev.STEP and not inside.is_set():
            inside.set()
            release.wait(30)

    runner.events.subscribe(hold)
    errors = []
    t = threading.Thread(
        target=lambda: runner.fit_probes(train, test, num_epoch=1, batch_size=8, progress=None)
    )
    t.start()
    assert inside.wait(30)
    try:
        with pytest.raises(ProbeError, match="another fit_probes is running"):
            runner.fit_probes(train, test, num_epoch=1, batch_size=8, progress=None)
    except Exception as e:  # pragma: no cover - keep the thread from hanging
        errors.append(e)
    finally:
        release.set()
        t.join(60)
    assert not errors and runner.state == "fitted"
    assert runner[H1].record.steps == math.ceil(len(runner.train_part) / 8)


# -- labels mean the same thing in every dataset -----------------------------------------


def test_string_labels_keep_their_meaning_across_separately_built_datasets(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(200, seed=2)
    names = np.where(labels == 1, "pos", "neg")
    train = ProbeDataset.from_texts(texts[:150], names[:150], tok)
    only_pos = [i for i in range(150, 200) if names[i] == "pos"]
    test = ProbeDataset.from_texts([texts[i] for i in only_pos], names[only_pos], tok)
    both = ProbeDataset.from_texts(texts[150:], names[150:], tok)
    runner = ProbeRunner(model, [ProbeConfig(H0, classes=None, pooling="mean")])
    runner.fit_probes(train, both, num_epoch=8, batch_size=16, progress=None)
    assert runner.configs[0].classes == ("neg", "pos")  # from the training data, sorted
    on_both = runner.metrics.loc[H0, "accuracy"]
    with pytest.warns(UserWarning, match=r"classes \['neg'\] have no example"):
        acc_pos = runner.compute_metrics(test).loc[H0, "accuracy"]
    x = runner.get_probe_features(test)[H0]
    pred = runner[H0].predict(x)
    assert np.mean(pred == "pos") == pytest.approx(acc_pos)
    assert on_both > 0.8 and acc_pos > 0.7  # "pos" is still "pos" (was 0.00)


def test_labels_outside_the_classes_are_an_error_before_fitting(small, tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(40)
    ds = ProbeDataset.from_texts(texts, np.where(labels == 1, "pos", "neg"), tok)
    runner = ProbeRunner(model, [ProbeConfig(H0, [0, 1])])
    with pytest.raises(ProbeError, match="labels are names"):
        runner.fit_probes(ds, num_epoch=1, progress=None)
    assert runner.state == "not fitted" and not runner.probes


def test_class_order_does_not_depend_on_the_hash_seed():
    code = (
        "from lm_probe_widgets import ProbeConfig\n"
        "labels = ['positive', 'negative', 'neutral', 'mixed']\n"
        "print(ProbeConfig('a.output', classes=set(labels)).classes)\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert outs == {"('mixed', 'negative', 'neutral', 'positive')\n"}


def test_digit_string_classes_predict_strings(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(120)
    y = labels.astype(str)
    train, test = ProbeDataset.from_texts(texts, y, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig(H0, classes={"0", "1"})])
    runner.fit_probes(train, test, num_epoch=6, batch_size=16, progress=None)
    pred = runner[H0].predict(runner.get_probe_features(test)[H0])
    assert pred.dtype == object and set(pred) <= {"0", "1"}
    assert np.mean(pred == test.label_values) == pytest.approx(runner.metrics.loc[H0, "accuracy"])


def test_declared_classes_absent_from_the_data_are_reported_not_averaged(small):
    from sklearn.metrics import f1_score

    model, _, train, test = small
    runner = ProbeRunner(model, [ProbeConfig(H1, classes=[0, 1, 2])])
    with pytest.warns(UserWarning, match=r"classes \[2\] have no example"):
        runner.fit_probes(train, test, num_epoch=3, batch_size=8, progress=None, bootstrap=0)
    row = runner.metrics.loc[H1]
    pred = runner[H1].predict(runner.get_probe_features(test)[H1])
    assert row["classes_scored"] == "0, 1"
    assert row["f1"] == pytest.approx(f1_score(test.labels, pred, labels=[0, 1], average="macro"))


# -- control probes and baselines share the probes' plan ---------------------------------


def test_control_and_baselines_use_the_fits_splits_and_settings(small):
    model, _, train, test = small
    val = test.subset(np.arange(12))
    runner = ProbeRunner(model, [ProbeConfig(H1, [0, 1])])
    runner.fit_probes(
        train,
        test,
        num_epoch=2,
        batch_size=8,
        progress=None,
        validation_set=val,
        control=True,
        baselines=("majority", "embeddings"),
        bootstrap=0,
    )
    twin, emb = runner.control, runner.baselines["embeddings"]
    for other in (twin, emb):
        assert len(other.validation_set) == len(val) == len(runner.validation_set)
        assert len(other.train_part) == len(runner.train_part) == len(train)
        assert other.bootstrap == 0
    assert np.isnan(twin.metrics.loc[H1, "accuracy_low"])  # bootstrap=0 means no resamples
    assert np.isnan(emb.metrics.loc[H1, "accuracy_low"])
    assert not np.isnan(runner.metrics.loc[H1, "selectivity"])


# -- features follow the model -----------------------------------------------------------


def test_features_follow_the_weights_and_ignore_dropout(tiny_llama):
    from lm_probe_widgets.core.io.tiny import tiny_hf_model

    hf, tok = tiny_hf_model("gpt2", seed=3)
    hf.config.resid_pdrop = hf.config.embd_pdrop = 0.5
    for m in hf.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.5
    texts, labels = sentiment_texts(20)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    runner = ProbeRunner(hf, [ProbeConfig(H1, [0, 1])], tokenizer=tok)
    hf.train()  # left in training mode: dropout must not reach the features
    a = runner.get_probe_features(ds)[H1]
    runner.cache.clear()
    b = runner.get_probe_features(ds)[H1]
    np.testing.assert_array_equal(a, b)
    assert hf.training and all(m.training for m in hf.modules())  # put back as it was
    with torch.no_grad():
        w = hf.transformer.h[0].mlp.c_fc.weight
        w.add_(torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))
    c = runner.get_probe_features(ds)[H1]
    assert not np.allclose(a, c)  # changed weights: the cache is not served
    fresh = ProbeRunner(hf, [ProbeConfig(H1, [0, 1])], tokenizer=tok)
    np.testing.assert_array_equal(c, fresh.get_probe_features(ds)[H1])


# -- inputs the model cannot take fail early ---------------------------------------------


def test_inputs_the_model_cannot_take_fail_before_any_forward(tiny):
    model, tok = tiny
    runner = ProbeRunner(model, [ProbeConfig(H0, [0, 1])])
    long = ProbeDataset(torch.ones(4, 300, dtype=torch.long), None, [0, 1, 0, 1])
    with pytest.raises(ProbeError, match="takes at most 256"):
        runner.fit_probes(long, num_epoch=1, progress=None)
    oov = ProbeDataset(torch.full((4, 5), 10_000), None, [0, 1, 0, 1])
    with pytest.raises(ProbeError, match="outside the model's vocabulary"):
        runner.fit_probes(oov, num_epoch=1, progress=None)
    with pytest.raises(ProbeError, match="outside the model's vocabulary"):
        runner.get_probe_features(oov)
    with pytest.raises(ProbeError, match="no texts"):
        ProbeDataset.from_texts([], [], tok)
    assert runner.state == "not fitted"


# -- the original lm_probe flow ----------------------------------------------------------


def test_the_original_lm_probe_flow_works(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(80)
    enc = tok(texts, padding="max_length", truncation=True, return_tensors="pt")
    assert enc["input_ids"].shape[1] == 256  # the model's positions, not 1e30
    ds = ProbeDataset(enc["input_ids"], enc["attention_mask"], torch.as_tensor(labels))
    train_set, test_set = ds.tt_split(test_size=0.25)
    docs = test_set[0:5]
    assert (
        docs["input_ids"].shape[0] == 5 and docs["attention_mask"].shape == docs["input_ids"].shape
    )
    assert set(test_set[[1, 4]]) == {"input_ids", "attention_mask", "labels"}
    loader = torch.utils.data.DataLoader(test_set, batch_size=7, collate_fn=ProbeDataset.collate)
    first = next(iter(loader))
    assert first["input_ids"].shape[0] == 7 and first["labels"].shape == (7,)
    runner = ProbeRunner(model, [ProbeConfig(H1, classes=set(labels.tolist()))])
    runner.fit_probes(train_set, test_set, batch_size=8, num_epoch=2, progress=None)
    feats = runner.get_probe_features(docs["input_ids"], docs["attention_mask"])
    assert runner[H1].predict(feats[H1]).shape == (5,)


@pytest.mark.parametrize("side", ["left", "right"])
def test_items_of_a_padded_dataset_come_back_as_given_and_stack(tiny, side):
    """The original's habit: torch.stack([test[i]["input_ids"] for i in ...])."""
    _, tok = tiny
    texts, labels = sentiment_texts(12)
    tok.padding_side = side
    try:
        enc = tok(texts, padding="max_length", max_length=40, return_tensors="pt")
    finally:
        tok.padding_side = "right"
    ds = ProbeDataset(enc["input_ids"], enc["attention_mask"], torch.as_tensor(labels))
    train, test = ds.tt_split(test_size=0.5, seed=1)
    stacked = torch.stack([test[i]["input_ids"] for i in range(len(test))])
    assert stacked.shape == (len(test), 40)
    rows = split_indices(len(ds), 0.5, 1, ds.labels)[1].tolist()  # the test side's examples
    assert torch.equal(stacked, enc["input_ids"][rows])
    assert torch.equal(test[0:3]["attention_mask"], enc["attention_mask"][rows[:3]])
    assert test[[0, 2]]["labels"].tolist() == [labels[rows[0]], labels[rows[2]]]
    loaded = next(iter(torch.utils.data.DataLoader(test, batch_size=4, collate_fn=test.collate)))
    assert torch.equal(loaded["attention_mask"], enc["attention_mask"][rows[:4]])
    # the probes still read real tokens only: the same tokens as a dataset built unpadded
    assert [t.tolist() for t in ds.tokens] == tok(texts)["input_ids"]


# -- datasets built in several ways mean the same thing ---------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    label_kind=st.sampled_from(["int", "str", "bool", "tensor"]),
    padding=st.sampled_from(["left", "right", "none"]),
    batch_size=st.integers(1, 9),
    seed=st.integers(0, 3),
)
def test_datasets_built_any_way_give_the_same_features_and_labels(
    tiny, label_kind, padding, batch_size, seed
):
    model, tok = tiny
    texts, labels = sentiment_texts(24, seed=seed)
    values = {
        "int": labels,
        "str": np.where(labels == 1, "b", "a"),
        "bool": labels.astype(bool),
        "tensor": torch.as_tensor(labels),
    }[label_kind]
    if padding == "none":
        ds = ProbeDataset.from_texts(texts, values, tok)
    else:
        tok.padding_side = padding
        enc = tok(texts, padding=True, return_tensors="pt")
        ds = ProbeDataset(enc["input_ids"], enc["attention_mask"], values)
    reference = ProbeDataset.from_texts(texts, labels, tok)
    runner = ProbeRunner(
        model, [ProbeConfig(H1, [0, 1], pooling="last"), ProbeConfig(H0, [0, 1], name="m")]
    )
    got = runner.get_probe_features(ds, batch_size=batch_size)
    want = ProbeRunner(model, runner.configs).get_probe_features(reference, batch_size=32)
    for name in got:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)
    expected = {"int": labels, "str": np.where(labels == 1, "b", "a"), "bool": labels}[
        "int" if label_kind == "tensor" else label_kind
    ]
    assert list(ds.label_values) == list(expected)


def test_no_warnings_on_a_plain_fit(small):
    model, _, train, test = small
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _fit(model, train, test, num_epoch=1)


# -- does the result hold up? ------------------------------------------------------------


def test_confound_baselines_evaluate_transfer_stability_and_validity(small, tiny):
    model, tok, train, test = small
    runner = ProbeRunner(model, [ProbeConfig(H0, [0, 1]), ProbeConfig(H1, [0, 1])])
    runner.fit_probes(
        train,
        test,
        num_epoch=3,
        batch_size=8,
        progress=None,
        control=True,
        baselines=("random_init", "length", "bag_of_words"),
    )
    m = runner.metrics
    assert {"baseline_length", "baseline_bag_of_words", "baseline_random_init"} <= set(m)
    assert m["baseline_bag_of_words"].iloc[0] > 0.85  # one word decides: a bag of words sees it
    before = m.copy()
    texts, labels = sentiment_texts(60, seed=9)
    other = ProbeDataset.from_texts(texts, labels, tok)
    tidy = runner.evaluate({"test": test, "other": other})
    assert set(tidy["dataset"]) == {"test", "other"} and set(tidy["probe"]) == {H0, H1}
    acc = tidy.query("dataset == 'test' and metric == 'accuracy'").set_index("probe")["value"]
    np.testing.assert_allclose(acc.loc[[H0, H1]].to_numpy(), before.loc[[H0, H1], "accuracy"])
    pd.testing.assert_frame_equal(runner.metrics, before)  # evaluate changes nothing
    matrix = runner.transfer({"a": (train, test), "b": (other, test)}, num_epoch=2, batch_size=8)
    assert len(matrix) == 2 * 2 * 2  # probes x train sets x test sets
    spread = runner.stability(seeds=2, num_epoch=2)
    assert spread.loc[H0, ("accuracy", "std")] >= 0
    card = runner.validity()
    assert {"selectivity", "gap_random_init", "gap_confound", "ci_width", "refit_std"} <= set(card)
    assert "bag of words" in card.loc[H0, "reading"] and "control task" in card.loc[H0, "reading"]


def test_duplicate_texts_across_splits_are_reported(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(60, seed=3)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    leaky = ProbeDataset.from_texts(texts[:20], labels[:20], tok)
    runner = ProbeRunner(model, [ProbeConfig(H0, [0, 1])])
    with pytest.warns(UserWarning, match="also appear in the training data"):
        runner.fit_probes(ds, leaky, num_epoch=1, batch_size=8, progress=None)


def test_printed_metrics_fit_a_terminal_and_stay_a_full_dataframe(small):
    model, _, train, test = small
    runner = _fit(model, train, test, num_epoch=1)
    table = runner.metrics
    assert isinstance(table, pd.DataFrame) and len(table.columns) > 25
    text = table.to_string(line_width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert all(c in text for c in ("accuracy", "selectivity" if "selectivity" in table else "f1"))
    assert type(table.sort_values("accuracy")) is pd.DataFrame


def test_fit_started_announces_every_phase_the_fit_goes_through(small):
    model, _, train, test = small
    runner = ProbeRunner(model, _configs())
    seen = []
    runner.events.subscribe(seen.append)
    runner.fit_probes(
        train, test, num_epoch=2, batch_size=8, progress=None, control=True, baselines=("length",)
    )
    (started,) = [e for e in seen if e.kind == ev.FIT_STARTED]
    planned = [p["phase"] for p in started.data["phases"]]
    ran = list(dict.fromkeys(e.data["phase"] for e in seen if e.kind == ev.BATCH))
    assert ran == [p for p in planned if p in ran]  # in the announced order
    assert set(planned) - set(ran) <= {"baseline-length"}  # no model, no batches
    (finished,) = [e for e in seen if e.kind == ev.FIT_FINISHED]
    assert finished.data["seconds"] > 0 and seen[-1] is finished


def test_compute_metrics_failing_part_way_changes_no_table(small, tiny, monkeypatch):
    """The control probes and the first baseline are measured before a later baseline
    fails: no column may then describe the new dataset beside the old ones."""
    model, tok, train, test = small
    runner = ProbeRunner(model, [ProbeConfig(H1, [0, 1])])
    runner.fit_probes(
        train,
        test,
        num_epoch=1,
        batch_size=8,
        progress=None,
        control=True,
        baselines=("length", "random_init"),
    )
    before = runner.metrics.copy()
    texts, labels = sentiment_texts(60, seed=21)
    other = ProbeDataset.from_texts(texts, labels, tok)

    def fail(*args, **kwargs):
        raise RuntimeError("random-init model failed")

    monkeypatch.setattr(runner.baselines["random_init"], "_measure", fail)
    with pytest.raises(RuntimeError, match="random-init model failed"):
        runner.compute_metrics(other)
    pd.testing.assert_frame_equal(runner.metrics, before)
    monkeypatch.undo()
    after = runner.compute_metrics(other)
    assert not after["control_accuracy"].equals(before["control_accuracy"]) or not after[
        "accuracy"
    ].equals(before["accuracy"])


def test_a_resumed_fit_that_fails_in_a_baseline_leaves_the_control_probes_as_they_were(
    small, monkeypatch
):
    """Resuming a fit stopped among its control probes finishes them, then a baseline
    fails: the control runner must be put back too, not left a fit ahead."""
    model, _, train, test = small
    runner = ProbeRunner(model, [ProbeConfig(H1, [0, 1])])

    def stop_in_control(e):
        if e.kind == "batch" and e.data.get("phase") == "control":
            runner.request_stop()

    unsubscribe = runner.events.subscribe(stop_in_control)
    kw = dict(num_epoch=2, batch_size=8, progress=None, control=True, baselines=("embeddings",))
    runner.fit_probes(train, test, **kw)
    unsubscribe()
    control = runner.control
    assert str(control.state) == "stopped"
    steps = {name: p.record.steps for name, p in control.probes.items()}
    metrics = control.metrics.copy()

    def fail(*args, **kwargs):
        raise RuntimeError("no embeddings today")

    monkeypatch.setattr("lm_probe_widgets.core.methods.fit_extras.input_embedding_path", fail)
    with pytest.raises(RuntimeError, match="no embeddings today"):
        runner.fit_probes(train, test, resume=True, **kw)
    assert runner.control is control and str(control.state) == "stopped"
    assert {name: p.record.steps for name, p in control.probes.items()} == steps
    pd.testing.assert_frame_equal(control.metrics, metrics)
    monkeypatch.undo()
    runner.fit_probes(train, test, resume=True, **kw)  # and it still resumes
    assert str(runner.state) == "fitted" and str(runner.control.state) == "fitted"
