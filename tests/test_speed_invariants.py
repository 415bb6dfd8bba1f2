"""What makes probing cost about one forward pass, checked without timing anything.

Each test counts real work on the real tiny model (forward hooks, traces) rather
than measuring seconds, so it holds on a loaded CI box. The timed benchmark lives in
benchmarks/bench_speed.py.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pytest

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine.extract import Extractor


@contextmanager
def hooked(module):
    """Count the forward calls a torch module starts while the block runs (a pre-hook:
    a trace stopped inside a forward never reaches its post-hooks)."""
    calls: list[int] = []
    handle = module.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()


@contextmanager
def counted_traces(monkeypatch):
    """Count Extractor traces (one per batch that reaches the model) and the reads in each."""
    traces: list[list[tuple[str, str]]] = []
    original = Extractor._pooled

    def counting(self, batch):
        pooled = original(self, batch)
        traces.append(sorted(self.reads))
        return pooled

    monkeypatch.setattr(Extractor, "_pooled", counting)
    yield traces


def _data(tiny, sentiment, n=160):
    _, tok = tiny
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts[:n], labels[:n], tok)
    return ds.tt_split(test_size=0.25, seed=0)


def test_length_sorted_buckets_pad_within_a_few_percent(tiny):
    _, tok = tiny
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "the", "a", "was", "dull", "great"]
    # As many texts as the benchmark (2,000): 63 batches, each spanning about one length.
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(2000)]
    ds = ProbeDataset.from_texts(texts, None, tok, max_length=128)
    real = int(ds.lengths.sum())
    batches = list(ds.batches(32, seed=0))
    padded = sum(b.padded_tokens for b in batches)
    assert sum(b.real_tokens for b in batches) == real
    assert padded / real < 1.05
    # The same batches cut in data order would pad far more: bucketing is what saves it.
    lengths = ds.lengths
    data_order = sum(
        int(lengths[i : i + 32].max()) * len(lengths[i : i + 32])
        for i in range(0, len(lengths), 32)
    )
    assert data_order / real > 1.3
    # Every example exactly once, and the bucket order depends on the seed.
    assert sorted(np.concatenate([b.indices for b in batches]).tolist()) == list(range(2000))
    other = [b.indices[0] for b in ds.batches(32, seed=1)]
    assert other != [b.indices[0] for b in batches]


def test_later_epochs_and_evaluation_never_run_the_model(tiny, sentiment, monkeypatch):
    model, _ = tiny
    train, test = _data(tiny, sentiment)
    configs = [
        ProbeConfig("transformer.h.1.output", [0, 1], early_stopping=False),
        ProbeConfig("transformer.h.0.mlp.output", [0, 1], pooling="last", early_stopping=False),
    ]
    runner = ProbeRunner(model, configs)
    bs = 16
    with counted_traces(monkeypatch) as traces, hooked(model._module) as forwards:
        runner.fit_probes(train, test, num_epoch=4, batch_size=bs, progress=None)
        n_val = math.ceil(0.1 * len(train))
        expected = (
            math.ceil(n_val / bs) + math.ceil((len(train) - n_val) / bs) + math.ceil(len(test) / bs)
        )
        assert len(traces) == expected  # one trace per batch of val, train and test, once
        assert len(forwards) == expected
        assert all(p.record.epochs_done == 4 for p in runner.probes.values())
        # Metrics again, and features of already-seen data, come from the cache.
        before = runner.metrics.copy()
        runner.compute_metrics(test, batch_size=bs)
        runner.get_probe_features(test)
        assert len(traces) == expected and len(forwards) == expected
    assert runner.metrics["accuracy"].equals(before["accuracy"])


def test_more_epochs_cost_no_more_forwards(tiny, sentiment):
    model, _ = tiny
    train, test = _data(tiny, sentiment)
    counts = []
    for epochs in (1, 6):
        runner = ProbeRunner(model, ProbeConfig("transformer.h.1.output", [0, 1]))
        with hooked(model._module.transformer.h[0]) as calls:
            runner.fit_probes(train, test, num_epoch=epochs, batch_size=16, progress=None)
        counts.append(len(calls))
    assert counts[0] == counts[1] > 0


def test_trace_stops_after_the_deepest_probed_submodule(tiny, sentiment):
    model, _ = tiny
    module = model._module
    train, test = _data(tiny, sentiment)
    configs = [
        ProbeConfig("transformer.h.0.output", [0, 1], name="h0"),
        ProbeConfig("transformer.h.1.attn.output", [0, 1], name="h1 attn"),
    ]
    runner = ProbeRunner(model, configs)
    with (
        hooked(module.transformer.h[1].attn) as deepest,
        hooked(module.transformer.h[1].mlp) as after,
        hooked(module.transformer.h[2]) as later,
        hooked(module.lm_head) as head,
    ):
        runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None)
    assert len(deepest) > 0
    assert after == [] and later == [] and head == []
    assert not runner.metrics["accuracy"].isna().any()


def test_probes_sharing_a_submodule_share_one_read(tiny, sentiment, monkeypatch):
    model, _ = tiny
    train, test = _data(tiny, sentiment)
    shared = [
        ProbeConfig("transformer.h.1.output", [0, 1], name="mean"),
        ProbeConfig("transformer.h.1.output", [0, 1], name="last", pooling="last"),
        ProbeConfig("transformer.h.1.output", [0, 1], name="max", pooling="max"),
        ProbeConfig("transformer.h.1.output", [0, 1], name="mean, other lr", lr=3e-3),
        ProbeConfig("transformer.h.0.output", [0, 1], name="h0"),
    ]
    runner = ProbeRunner(model, shared)
    with counted_traces(monkeypatch) as traces:
        runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None)
    # Each trace reads h.0 and h.1 once each, in execution order, whatever the probes.
    assert traces and all(
        t == [("transformer.h.0", "output"), ("transformer.h.1", "output")] for t in traces
    )
    ex = runner.extractor([c.feature_key for c in shared])
    assert ex.reads == [("transformer.h.0", "output"), ("transformer.h.1", "output")]
    # Equal (submodule, pooling) share one cached feature array.
    fp = runner.data_key(test)
    a = runner.cache.get(fp, shared[0].feature_key)
    assert shared[0].feature_key == shared[3].feature_key
    assert len({c.feature_key for c in shared}) == 4
    # And the shared read gives what a lone probe reads, to float rounding: the lone read
    # batches the test set differently, and a CPU may pick another kernel for that shape.
    alone = ProbeRunner(model, ProbeConfig("transformer.h.1.output", [0, 1]))
    np.testing.assert_allclose(
        alone.get_probe_features(test)["transformer.h.1.output"], a.rows(), rtol=1e-5, atol=1e-6
    )


def test_features_spill_to_disk_past_the_budget_with_identical_results(tiny, sentiment):
    model, _ = tiny
    train, test = _data(tiny, sentiment)
    configs = [
        ProbeConfig("transformer.h.1.output", [0, 1], name="mean"),
        ProbeConfig("transformer.h.0.output", [0, 1], name="last", pooling="last"),
    ]
    in_ram = ProbeRunner(model, configs)
    in_ram.fit_probes(train, test, num_epoch=3, batch_size=16, progress=None)
    on_disk = ProbeRunner(model, configs, memory_budget=1024)  # a few rows fit, not all
    on_disk.fit_probes(train, test, num_epoch=3, batch_size=16, progress=None)

    assert not in_ram.cache.spilled
    assert on_disk.cache.spilled
    stores = [s for by_key in on_disk.cache._stores.values() for s in by_key.values()]
    assert stores and all(isinstance(s.array, np.memmap) for s in stores)
    cols = ["accuracy", "loss", "steps", "best_step"]
    assert on_disk.metrics[cols].equals(in_ram.metrics[cols])
    for name in in_ram.probes:
        np.testing.assert_array_equal(in_ram[name].coef_, on_disk[name].coef_)
    x = in_ram.get_probe_features(test)["mean"]
    np.testing.assert_array_equal(x, on_disk.get_probe_features(test)["mean"])
    on_disk.cache.clear()
    assert not on_disk.cache.spilled


def test_cache_forgets_other_data_before_the_fits_own(tiny, sentiment):
    model, tok = tiny
    train, test = _data(tiny, sentiment)
    cfg = ProbeConfig("transformer.h.1.output", [0, 1])
    runner = ProbeRunner(model, [cfg])
    runner.fit_probes(train, test, num_epoch=1, batch_size=16, progress=None)
    fit_data = [runner.train_part, runner.validation_set, test]
    # room for the fit's features and about one more small dataset
    runner.cache.budget_bytes = runner.cache.nbytes + 20 * 32 * 4
    texts = [f"text number {i} is {'good' if i % 2 else 'bad'}" for i in range(60)]
    extra = [ProbeDataset.from_texts(texts[i : i + 20], None, tok) for i in (0, 20, 40)]
    first = runner.get_probe_features(extra[0])[cfg.name]
    for ds in extra[1:]:
        runner.get_probe_features(ds)
    cache = runner.cache
    assert all(cache.get(runner.data_key(d), cfg.feature_key) is not None for d in fit_data)
    assert cache.get(runner.data_key(extra[0]), cfg.feature_key) is None  # least recently used
    assert cache.get(runner.data_key(extra[2]), cfg.feature_key) is not None
    assert not cache.spilled
    # forgotten features come back identical (from the model again)
    np.testing.assert_array_equal(runner.get_probe_features(extra[0])[cfg.name], first)


@pytest.mark.parametrize("n_probes", [40])
def test_many_probes_on_few_reads_train_from_one_pass(tiny, sentiment, monkeypatch, n_probes):
    """Dozens of probes: still one trace per batch, and each probe trains every batch."""
    model, _ = tiny
    train, test = _data(tiny, sentiment)
    layers = ["transformer.h.0.output", "transformer.h.1.output", "transformer.h.2.output"]
    configs = [
        ProbeConfig(
            layers[i % 3], [0, 1], name=f"p{i}", lr=1e-2 * (1 + i % 4), early_stopping=False
        )
        for i in range(n_probes)
    ]
    runner = ProbeRunner(model, configs)
    with counted_traces(monkeypatch) as traces:
        runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None)
    n_val = math.ceil(0.1 * len(train))
    n_train = len(train) - n_val
    assert len(traces) == math.ceil(n_val / 16) + math.ceil(n_train / 16) + math.ceil(
        len(test) / 16
    )
    steps = {p.record.steps for p in runner.probes.values()}
    assert steps == {2 * math.ceil(n_train / 16)}
