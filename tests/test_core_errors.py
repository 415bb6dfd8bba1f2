"""Bad input gets a clear error, early, and loses nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner, SubmoduleError


@pytest.fixture()
def forward_counter(tiny):
    model, _ = tiny
    calls = []
    handle = model._module.register_forward_hook(lambda *a: calls.append(1))
    yield calls
    handle.remove()


def test_wrong_submodule_fails_before_any_forward_and_suggests(tiny, forward_counter):
    model, _ = tiny
    with pytest.raises(SubmoduleError) as err:
        ProbeRunner(model, [ProbeConfig("transformer.h.1.mpl.output", [0, 1])])
    msg = str(err.value)
    assert "transformer.h.1" in msg  # longest valid prefix
    assert "mlp" in msg and "attn" in msg  # its children
    assert "transformer.h.1.mlp.output" in msg  # close match
    assert forward_counter == []


def test_parameter_and_unused_module_are_rejected(tiny):
    model, _ = tiny
    with pytest.raises(SubmoduleError, match="parameter"):
        ProbeRunner(model, [ProbeConfig("transformer.h.0.mlp.c_fc.weight", [0, 1])])

    class WithUnused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)
            self.unused = torch.nn.Linear(4, 4)

        def forward(self, input_ids):
            return self.emb(input_ids)

    with pytest.raises(SubmoduleError, match="never runs"):
        ProbeRunner(WithUnused(), [ProbeConfig("unused.output", [0, 1])])


def test_input_reads_and_nnsight_renamed_modules_work(tiny, tiny_bert, sentiment):
    model, tok = tiny
    ds = ProbeDataset.from_texts(sentiment[0][:8], None, tok)
    runner = ProbeRunner(
        model,
        [
            ProbeConfig("transformer.h.1.input", [0, 1], name="in1"),
            ProbeConfig("transformer.h.0.output", [0, 1], name="out0"),
        ],
    )
    f = runner.get_probe_features(ds)
    np.testing.assert_allclose(f["in1"], f["out0"], rtol=1e-5, atol=1e-6)  # h1 reads h0's output
    bert, btok = tiny_bert
    # BERT has a submodule literally called `output`: nnsight renames it, we don't care.
    r = ProbeRunner(bert, [ProbeConfig("encoder.layer.0.attention.output.output", [0, 1])])
    bds = ProbeDataset.from_texts(sentiment[0][:4], None, btok)
    assert r.get_probe_features(bds)["encoder.layer.0.attention.output.output"].shape == (4, 32)


def test_config_errors():
    with pytest.raises(ProbeError, match="at least two"):
        ProbeConfig("x.output", [1])
    with pytest.raises(ProbeError, match="pooling"):
        ProbeConfig("x.output", [0, 1], pooling="median")
    with pytest.raises(ProbeError, match="model_kwargs"):
        ProbeConfig("x.output", [0, 1], model_kwargs={"penalty": "l1"})
    assert ProbeConfig("x.output", [0, 1], pool=False).pooling == "none"
    assert ProbeConfig("x.output", [0, 1], model_kwargs={"alpha": 0.1}).l2 == (0.1,)


def test_duplicate_probe_names(tiny):
    model, _ = tiny
    with pytest.raises(ProbeError, match="unique"):
        ProbeRunner(
            model,
            [
                ProbeConfig("transformer.h.0.output", [0, 1]),
                ProbeConfig("transformer.h.0.output", [0, 1], pooling="last"),
            ],
        )


def test_dataset_errors(tiny):
    _, tok = tiny
    with pytest.raises(ProbeError, match="3 texts but 2 labels"):
        ProbeDataset.from_texts(["a", "b", "c"], [0, 1], tok)
    with pytest.raises(ProbeError, match="empty"):
        ProbeDataset([], None)
    with pytest.raises(ProbeError, match="no real tokens"):
        ProbeDataset([[1, 2], [3, 4]], [[1, 1], [0, 0]])
    with pytest.raises(ProbeError, match="2 examples but 3 labels"):
        ProbeDataset([[1, 2], [3, 4]], None, [0, 1, 1])
    with pytest.raises(ProbeError, match="split"):
        ProbeDataset([[1, 2]], None, [0]).tt_split(0.5)


def test_label_errors_come_before_any_forward(tiny, sentiment, forward_counter):
    model, tok = tiny
    texts, labels = sentiment
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1])])
    forward_counter.clear()  # the dry run in the constructor is done
    train, test = ProbeDataset.from_texts(texts, np.where(labels == 1, 2, 0), tok).tt_split(0.25)
    with pytest.raises(ProbeError, match=r"labels \[2\] are not in classes \[0, 1\]"):
        runner.fit_probes(train, test, progress=None)
    one_class = ProbeDataset.from_texts(texts[:20], np.zeros(20, dtype=int), tok)
    with pytest.raises(ProbeError, match="single class"):
        runner.fit_probes(one_class, progress=None)
    unlabelled = ProbeDataset.from_texts(texts[:20], None, tok)
    with pytest.raises(ProbeError, match="no labels"):
        runner.fit_probes(unlabelled, progress=None)
    assert forward_counter == []


def test_batch_of_one_example(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts[:41], labels[:41], tok)  # 41 -> last batch has one
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1])])
    runner.fit_probes(ds, ds, num_epoch=2, batch_size=4, progress=None)
    assert runner.metrics.iloc[0]["steps"] > 0


class NaNAfter(torch.nn.Module):
    """Produces NaN activations for token id 13, to test the NaN guard."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 4)
        self.block = torch.nn.Identity()

    def forward(self, input_ids):
        h = self.emb(input_ids)
        h = torch.where((input_ids == 13)[..., None], torch.full_like(h, float("nan")), h)
        return self.block(h)


def test_nan_activations_give_a_clear_error_and_keep_probes():
    torch.manual_seed(0)
    ids = torch.randint(2, 10, (72, 5))
    labels = (ids[:, 0] > 5).long()
    clean = ProbeDataset(ids[:64], None, labels[:64])
    runner = ProbeRunner(NaNAfter(), [ProbeConfig("block.output", [0, 1])])
    runner.fit_probes(clean, clean, num_epoch=2, batch_size=8, progress=None)
    first = runner["block.output"]
    bad = ids.clone()
    bad[64:, 2] = 13  # the last batch of the training data turns NaN
    mixed = ProbeDataset(bad, None, labels)
    with pytest.raises(ProbeError, match="block.output contain NaN or inf"):
        runner.fit_probes(mixed, mixed, progress=None)  # fails while extracting validation
    assert runner["block.output"] is first and first.state == "finished"  # nothing lost

    # A refit that fails mid-epoch (after training started) changes nothing either:
    # the earlier probe, its metrics and the runner's state stay as they were.
    runner2 = ProbeRunner(NaNAfter(), [ProbeConfig("block.output", [0, 1], validation="eval")])
    runner2.fit_probes(clean, clean, num_epoch=2, batch_size=8, progress=None)
    before = runner2.metrics.copy()
    probe = runner2["block.output"]
    steps = probe.record.steps
    with pytest.raises(ProbeError, match="NaN or inf"):
        runner2.fit_probes(mixed, clean, num_epoch=2, batch_size=8, progress=None)
    assert runner2["block.output"] is probe and probe.record.steps == steps
    assert runner2.state == "fitted"
    pd.testing.assert_frame_equal(runner2.metrics, before)
    x = runner2.get_probe_features(clean)["block.output"]
    assert probe.predict(x).shape == (64,)


def test_load_rejects_other_files_and_other_models(tiny, tiny_llama, sentiment, tmp_path):
    model, tok = tiny
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(ProbeError, match="not a saved runner"):
        ProbeRunner.load(bogus, model)
    with pytest.raises(ProbeError, match="no saved runner"):
        ProbeRunner.load(tmp_path / "missing.safetensors", model)
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    runner = ProbeRunner(model, [ProbeConfig("transformer.h.0.output", [0, 1])])
    runner.fit_probes(train, test, num_epoch=1, progress=None)
    path = tmp_path / "p.safetensors"
    runner.save(path)
    from lm_probe_widgets.core.io.tiny import tiny_model

    wider, _ = tiny_model("gpt2", width=64)
    with pytest.raises(ProbeError, match="another model"):
        ProbeRunner.load(path, wider)
    with pytest.raises(SubmoduleError):
        ProbeRunner.load(path, tiny_llama[0])  # its module names differ
