"""Pooled features do not depend on batch, padding side or amount; token-level
probes ignore padding and null labels; labels keep their values."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner

POOLINGS = ["mean", "last", "first", "max"]


def _padded(tok, texts, side, extra=0):
    """Tensors padded to the longest text + `extra`, on the given side."""
    ids = [tok(t)["input_ids"] for t in texts]
    width = max(map(len, ids)) + extra
    out = torch.full((len(ids), width), 7)  # a real token id as padding: the mask must matter
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        if side == "right":
            out[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        else:
            out[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return out, mask


@pytest.mark.parametrize(
    "arch,layer",
    [
        ("tiny", "transformer.h.2.output"),
        ("tiny_llama", "model.layers.1.output"),
        ("tiny_bert", "encoder.layer.1.output"),
    ],
)
def test_pooled_features_ignore_padding_side_amount_and_batch(arch, layer, request, sentiment):
    model, tok = request.getfixturevalue(arch)
    texts = sentiment[0][:24]
    configs = [ProbeConfig(layer, [0, 1], name=p, pooling=p) for p in POOLINGS]
    runner = ProbeRunner(model, configs)
    reference = runner.get_probe_features(*_padded(tok, texts, "right"), batch_size=24)
    variants = [
        runner.get_probe_features(*_padded(tok, texts, "left", extra=9), batch_size=5),
        runner.get_probe_features(*_padded(tok, texts, "right", extra=3), batch_size=1),
        runner.get_probe_features(*_padded(tok, texts[::-1], "left"), batch_size=7),
    ]
    for p in POOLINGS:
        for i, v in enumerate(variants):
            got = v[p][::-1] if i == 2 else v[p]
            np.testing.assert_allclose(got, reference[p], rtol=1e-4, atol=1e-5, err_msg=p)
    # Each text alone, unpadded, gives the same vector as inside a padded batch.
    alone = runner.get_probe_features(ProbeDataset([tok(texts[3])["input_ids"]]))
    np.testing.assert_allclose(alone["last"][0], reference["last"][3], rtol=1e-4, atol=1e-5)


def test_pooling_definitions(tiny, sentiment):
    model, tok = tiny
    texts = sentiment[0][:6]
    runner = ProbeRunner(
        model,
        [
            ProbeConfig("transformer.h.1.output", [0, 1], name=p, pooling=p)
            for p in [*POOLINGS, "none"]
        ],
    )
    ds = ProbeDataset.from_texts(texts, None, tok)
    feats = runner.get_probe_features(ds)
    tokens = feats["none"]
    assert tokens.shape == (int(ds.lengths.sum()), 32)
    start = 0
    for i, n in enumerate(ds.lengths):
        rows = tokens[start : start + n]
        np.testing.assert_allclose(feats["mean"][i], rows.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(feats["last"][i], rows[-1], rtol=1e-6)
        np.testing.assert_allclose(feats["first"][i], rows[0], rtol=1e-6)
        np.testing.assert_allclose(feats["max"][i], rows.max(0), rtol=1e-6)
        start += n


def test_token_level_probe_drops_padding_and_null_labels(tiny):
    model, tok = tiny
    rng = np.random.default_rng(0)
    # Label each token by whether it is one of two ids; mark every third token ignored.
    texts = [" ".join(rng.choice(["good", "bad", "the", "film", "was"], 6)) for _ in range(120)]
    enc = [tok(t)["input_ids"] for t in texts]
    good = tok("good")["input_ids"][0]
    token_labels = []
    for ids in enc:
        lab = [int(i == good) for i in ids]
        for j in range(0, len(lab), 3):
            lab[j] = -100
        token_labels.append(lab)
    ds = ProbeDataset(enc, None, token_labels)
    assert ds.is_token_level and len(ds) == 120
    train, test = ds.tt_split(0.25, stratify=False)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1], pooling="none")])
    runner.fit_probes(train, test, num_epoch=5, batch_size=16, progress=None)
    row = runner.metrics.iloc[0]
    expected = sum(int(np.sum(np.asarray(t) != -100)) for t in test.token_labels)
    assert row["n"] == expected  # ignored tokens are in no metric
    assert row["accuracy"] > 0.9  # the token's own embedding decides the label


def test_labels_keep_any_int_value_and_strings_map(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    big = np.where(labels == 1, 200, -5)
    ds = ProbeDataset.from_texts(texts, big, tok)
    assert ds.labels.dtype == np.int64 and set(ds.labels) == {200, -5}
    train, test = ds.tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [-5, 200])])
    runner.fit_probes(train, test, num_epoch=3, batch_size=16, progress=None)
    x = runner.get_probe_features(test)["transformer.h.0.output"]
    assert set(runner["transformer.h.0.output"].predict(x)) <= {-5, 200}

    names = np.where(labels == 1, "fresh", "rotten")
    ds2 = ProbeDataset.from_texts(texts, names, tok)
    assert ds2.label_names == ["fresh", "rotten"] and ds2.labels.dtype == np.int64
    train2, test2 = ds2.tt_split(0.25)
    runner2 = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", ["rotten", "fresh"])])
    runner2.fit_probes(train2, test2, num_epoch=3, batch_size=16, progress=None)
    pred = runner2["transformer.h.0.output"].predict(
        runner2.get_probe_features(test2)["transformer.h.0.output"]
    )
    assert set(pred) <= {"rotten", "fresh"}


def test_unlabelled_dataset_has_length_and_features(tiny, sentiment):
    model, tok = tiny
    ds = ProbeDataset.from_texts(sentiment[0][:10], None, tok)
    assert len(ds) == 10 and not ds.has_labels
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1])])
    assert runner.get_probe_features(ds)["transformer.h.0.output"].shape == (10, 32)


def test_bucketing_keeps_padding_small(sentiment, tiny):
    _, tok = tiny
    ds = ProbeDataset.from_texts(sentiment[0], None, tok)
    batches = list(ds.batches(16, seed=0))
    padded = sum(b.padded_tokens for b in batches)
    real = sum(b.real_tokens for b in batches)
    assert real == int(ds.lengths.sum())
    assert padded / real < 1.1
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == list(range(len(ds)))


def test_traces_from_threads_are_serialised(tiny, sentiment):
    model, tok = tiny
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.2.output", [0, 1])])
    ds = ProbeDataset.from_texts(sentiment[0][:64], None, tok)
    expected = runner.get_probe_features(ds, batch_size=8)["transformer.h.2.output"]
    results, errors = [], []

    def work():
        try:
            other = ProbeRunner(model, [ProbeConfig("transformer.h.2.output", [0, 1])])
            results.append(other.get_probe_features(ds, batch_size=8)["transformer.h.2.output"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-6)


def test_save_load_predicts_identically(tiny, sentiment, tmp_path):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    cfgs = [
        ProbeConfig("transformer.h.1.output", [0, 1]),
        ProbeConfig("transformer.h.1.output", [0, 1], name="h1-last", pooling="last"),
    ]
    runner = ProbeRunner(model, cfgs)
    runner.fit_probes(train, test, num_epoch=3, batch_size=16, progress=None)
    path = tmp_path / "probes.safetensors"
    runner.save(path)
    loaded = ProbeRunner.load(path, model)
    x = runner.get_probe_features(test)
    for name in ["transformer.h.1.output", "h1-last"]:
        np.testing.assert_array_equal(loaded[name].predict(x[name]), runner[name].predict(x[name]))
        np.testing.assert_allclose(
            loaded[name].predict_proba(x[name]), runner[name].predict_proba(x[name]), rtol=1e-6
        )
    cols = ["accuracy", "loss", "steps", "best_step", "stop_reason", "val_loss", "l2", "refined"]
    assert loaded.metrics[cols].equals(runner.metrics[cols])
    assert loaded["h1-last"].config.pooling == "last"
