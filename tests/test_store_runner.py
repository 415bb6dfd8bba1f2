"""Runners read features through the persistent store (issue 16): each scenario runs in
fresh processes sharing one cache folder, and counts the model's forward calls there:
the traces that `Extractor` runs (one per batch that reaches the model). Not with a
forward hook: a hook on the model can change its features, so while one is registered
the store is bypassed (issue 26). Not counted: the two-token dry run with which every
runner (also a control probe's twin) checks its submodules' shapes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from patience import PATIENCE_S
from synthetic import LLAMA_LAYER_2_ON_DISK, sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine.disk_store import DiskStore, StoreWarning
from lm_probe_widgets.core.engine.extract import Extractor

SITE = "transformer.h.1.output"

PRELUDE = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from synthetic import sentiment_texts
from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine.extract import Extractor
from lm_probe_widgets.core.io.tiny import tiny_model

model, tok = tiny_model("gpt2")
texts, labels = sentiment_texts(96)
train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(test_size=0.25, seed=0)
forwards = []
out = {{}}
before_trace = []  # functions called with each batch before its trace
traced = Extractor._pooled

def count(self, batch):  # one trace per batch that reaches the model
    for f in before_trace:
        f(batch)
    forwards.append(1)
    return traced(self, batch)

Extractor._pooled = count

def fit(store=None, control=False, **cfg):
    runner = ProbeRunner(model, ProbeConfig({site!r}, [0, 1], **cfg), store=store)
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None,
                      control=control)
    return runner

def train_rows(runner):
    cfg = runner.configs[0]
    return runner.cache.get(runner.data_key(runner.train_part), cfg.feature_key).rows()
"""


def run(body: str, cache: Path, store_env: str = "1") -> dict:
    """Run `body` after PRELUDE in a new Python process; returns its `out` dict."""
    code = PRELUDE.format(tests=str(Path(__file__).parent), site=SITE)
    code += textwrap.dedent(body) + "\nprint('OUT=' + json.dumps(out))\n"
    env = {**os.environ, "LM_PROBE_WIDGETS_CACHE": str(cache), "LM_PROBE_WIDGETS_STORE": store_env}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=PATIENCE_S
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("OUT=")][-1]
    return json.loads(line[4:])


@contextlib.contextmanager
def traces(monkeypatch, before=None):
    """Batch sizes of the traces that reach the model while the block runs (`before`
    runs with each batch first, e.g. to simulate a crash)."""
    sizes: list[int] = []
    original = Extractor._pooled

    def counting(self, batch):
        if before is not None:
            before(batch)
        sizes.append(len(batch.indices))
        return original(self, batch)

    monkeypatch.setattr(Extractor, "_pooled", counting)
    try:
        yield sizes
    finally:
        monkeypatch.setattr(Extractor, "_pooled", original)


FIRST_FIT = """
runner = fit()
out["forwards"] = len(forwards)
out["accuracy"] = float(runner.metrics["accuracy"].iloc[0])
"""


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """One cache folder after a first fit (mean pooling) in its own process."""
    cache = tmp_path_factory.mktemp("warm")
    return cache, run(FIRST_FIT, cache)


def test_a_new_process_runs_no_forward_for_other_settings_until_a_weight_changes(warm):
    """Another pooling, L2 grid and control probes: features from the store, bit for
    bit what a storeless fit computes; after a weight change: the model again."""
    cache, first = warm
    assert first["forwards"] > 0
    out = run(
        """
        runner = fit(pooling="last", l2=(0.5,), control=True)
        out["forwards"] = len(forwards)
        plain = fit(store=False, pooling="last", l2=(0.5,), control=True)
        out["plain_forwards"] = len(forwards) - out["forwards"]
        out["same_rows"] = bool(np.array_equal(train_rows(runner), train_rows(plain)))
        same = runner.metrics.fillna(-1).equals(plain.metrics.fillna(-1))
        out["same_metrics"] = bool(same)
        out["repr"] = repr(runner)

        import torch
        with torch.no_grad():  # after the probed layer: only the fingerprint can tell
            model._module.transformer.h[2].mlp.c_proj.bias[0] += 1.0
        before = len(forwards)
        fit()
        out["after_edit"] = len(forwards) - before
        """,
        cache,
    )
    assert out["forwards"] == 0, out
    assert out["plain_forwards"] == first["forwards"], out
    assert out["same_rows"] and out["same_metrics"], out
    assert str(cache / "features") in out["repr"]
    assert out["after_edit"] == first["forwards"], out


def test_a_crashed_extraction_resumes_with_the_missing_rows_only(warm, tmp_path):
    _, first = warm
    k = 2
    crashed = run(
        f"""
        def crash(batch):  # raises as the trace after k starts
            if len(forwards) >= {k}:
                raise RuntimeError("simulated crash")
        before_trace.append(crash)
        try:
            fit()
        except Exception as e:
            out["error"] = str(e)
        out["forwards"] = len(forwards)
        """,
        tmp_path,
    )
    assert "simulated crash" in crashed["error"]
    assert crashed["forwards"] == k  # k batches traced and stored, then the crash
    resumed = run(FIRST_FIT, tmp_path)
    assert resumed["forwards"] == first["forwards"] - k
    assert resumed["accuracy"] == first["accuracy"]


def test_store_off_writes_nothing_and_a_store_serves_new_runners_in_process(
    tiny, tmp_path, monkeypatch
):
    model, tok = tiny
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(tmp_path / "cache"))
    texts, labels = sentiment_texts(40)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    off = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=False)
    monkeypatch.setenv("LM_PROBE_WIDGETS_STORE", "0")
    default_off = ProbeRunner(model, ProbeConfig(SITE, [0, 1]))
    assert off.store is None and default_off.store is None and "store='off'" in repr(off)
    expected = off.get_probe_features(ds)[SITE]
    default_off.get_probe_features(ds)
    assert not (tmp_path / "cache").exists()

    root = tmp_path / "store"
    first = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root)
    np.testing.assert_array_equal(first.get_probe_features(ds)[SITE], expected)
    keys = [e["key"] for e in DiskStore(root).entries()]
    assert sorted(k["pooling"] for k in keys if k["site"] == SITE) == [
        "first",
        "last",
        "max",
        "mean",
    ]
    # and the input embeddings, kept by every trace for a later embeddings baseline
    assert {k["site"] for k in keys} == {SITE, "transformer.wte.output"}

    other = ProbeRunner(model, ProbeConfig(SITE, [0, 1], pooling="max"), store=root)
    with traces(monkeypatch) as calls:
        maxed = other.get_probe_features(ds)[SITE]
        exported = other.export_features(ds, SITE, tmp_path / "f.npz", pooling="max")
    assert calls == []
    plain = ProbeRunner(model, ProbeConfig(SITE, [0, 1], pooling="max"), store=False)
    np.testing.assert_array_equal(maxed, plain.get_probe_features(ds)[SITE])
    with np.load(exported) as f:
        np.testing.assert_array_equal(f["features"], maxed)
        assert f["examples"].tolist() == list(range(len(ds)))


def test_a_partly_stored_batch_traces_only_its_missing_examples(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    texts, labels = sentiment_texts(24)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=tmp_path)
    crash = True

    def maybe_crash(batch):
        if crash and len(sizes) > 0:
            raise RuntimeError("simulated crash")

    with traces(monkeypatch, before=maybe_crash) as sizes:
        with pytest.raises(RuntimeError, match="simulated crash"):
            runner.get_probe_features(ds, batch_size=8)
        crash = False
        features = runner.get_probe_features(ds, batch_size=24)[SITE]
    assert sizes == [8, 16]  # stored 8, crashed, then one trace of the 16 missing
    plain = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=False)
    np.testing.assert_allclose(features, plain.get_probe_features(ds)[SITE], atol=1e-5)


def test_a_trace_reads_only_the_sites_still_missing_rows(tiny, tmp_path, monkeypatch):
    """A stored deep site is not read again when a shallow one needs the model: the
    forward stops at the shallow site (a mixed sweep adding token rows of h[0])."""
    model, tok = tiny
    ds = ProbeDataset.from_texts(*sentiment_texts(16), tok)
    deep = ProbeConfig("transformer.h.2.output", [0, 1])
    ProbeRunner(model, deep, store=tmp_path).get_probe_features(ds)
    shallow = ProbeConfig("transformer.h.0.output", [0, 1], name="h0 tokens", pooling="none")
    runner = ProbeRunner(model, [deep, shallow], store=tmp_path)
    sites = []
    traced = Extractor._pooled

    def spy(self, batch):
        sites.append({path for path, _ in self.reads})
        return traced(self, batch)

    monkeypatch.setattr(Extractor, "_pooled", spy)
    feats = runner.get_probe_features(ds)
    assert sites and all(s == {"transformer.h.0", "transformer.wte"} for s in sites), sites
    plain = ProbeRunner(model, [deep, shallow], store=False).get_probe_features(ds)
    for name in (deep.name, shallow.name):
        np.testing.assert_allclose(feats[name], plain[name], atol=1e-5)


def test_an_unusable_store_folder_warns_and_keeps_features_in_memory(tiny, tmp_path):
    model, tok = tiny
    texts, labels = sentiment_texts(16)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=blocked)
    with pytest.warns(StoreWarning, match="memory only"):
        feats = runner.get_probe_features(ds)[SITE]
    assert runner.store is None and feats.shape == (16, 32)


def test_token_level_features_are_stored_when_asked_for_and_only_then(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    texts, labels = sentiment_texts(16)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    cfg = ProbeConfig(SITE, [0, 1], pooling="none")
    first = ProbeRunner(model, cfg, store=tmp_path).get_probe_features(ds)[SITE]
    at_site = [
        e["key"]["pooling"] for e in DiskStore(tmp_path).entries() if e["key"]["site"] == SITE
    ]
    assert at_site == ["none"]  # no sequence poolings of a token-level read
    again = ProbeRunner(model, cfg, store=tmp_path)
    with traces(monkeypatch) as calls:
        rows = again.get_probe_features(ds)[SITE]
    assert calls == [] and rows.shape == (int(ds.token_offsets()[-1]), 32)
    np.testing.assert_array_equal(rows, first)


def test_store_info_says_where_and_how_much(tiny, tmp_path):
    model, tok = tiny
    texts, labels = sentiment_texts(8)
    ds = ProbeDataset.from_texts(texts, labels, tok)
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=tmp_path)
    runner.get_probe_features(ds)
    info = runner.store_info()
    assert (
        info["root"] == str(tmp_path) and info["entries"] == info["this_model"] == 8
    )  # 4 poolings x (site, embeddings)
    assert info["bytes"] > 4 * 8 * 32 * 4
    # people read sizes, code reads bytes
    shown = repr(info)
    assert str(info["bytes"]) not in shown and re.search(r"\d\.\d\d (KiB|MiB)", shown), shown
    assert ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=False).store_info() is None


def test_progress_says_when_features_came_from_the_store(tiny, sentiment, tmp_path):
    """BATCH events carry `traced`: how many examples of the batch ran through the
    model; a fit whose features are all stored reports 0 for every batch."""
    from lm_probe_widgets.core.engine import events as ev

    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:80], labels[:80], tok).tt_split(0.25)
    traced = {}
    for run in ("first", "second"):
        runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=tmp_path / "store")
        seen = []
        runner.events.subscribe(lambda e, seen=seen: e.kind == ev.BATCH and seen.append(e.data))
        runner.fit_probes(train, test, num_epoch=1, batch_size=16, progress=None, bootstrap=0)
        extract = [d for d in seen if d["phase"].startswith("extract")]
        traced[run] = sum(d["traced"] for d in extract)
    assert traced["first"] == len(train) + len(test)
    assert traced["second"] == 0


def test_the_memory_estimate_counts_stored_features_on_disk(tiny, sentiment, tmp_path):
    from lm_probe_widgets.core.engine import memory

    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    stored = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=tmp_path / "store")
    plain = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=False)
    on_disk = memory.estimate_memory(stored, train, test, batch_size=16)
    in_ram = memory.estimate_memory(plain, train, test, batch_size=16)
    assert on_disk.cache == in_ram.cache > 0
    assert on_disk.cache_in_ram == 0 and in_ram.cache_in_ram == in_ram.cache


def test_throwaway_inputs_stay_out_of_the_store(tiny, tmp_path):
    model, tok = tiny
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=tmp_path / "store")
    ds = ProbeDataset.from_texts(["a sentence being typed"], None, tok)
    key = runner.configs[0].feature_key
    rows = runner.features(ds, [key], persist=False)[key]
    assert rows.shape == (1, 32) and runner.store is not None
    assert DiskStore(tmp_path / "store").entries() == []


def test_the_embeddings_baseline_after_a_stored_fit_runs_no_forward(
    tiny, sentiment, tmp_path, monkeypatch
):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:80], labels[:80], tok).tt_split(0.25)
    root = tmp_path / "store"
    ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root).fit_probes(
        train, test, num_epoch=1, batch_size=16, progress=None, bootstrap=0
    )
    again = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root)
    with traces(monkeypatch) as calls:
        again.fit_probes(
            train, test, num_epoch=1, batch_size=16, progress=None, baselines=("embeddings",)
        )
    assert calls == []  # (the embeddings runner's two-token dry run is no trace)
    assert again.metrics["baseline_embeddings"].notna().all()


# ------------------------------------------------ features follow the computation (issue 26)


@pytest.fixture()
def own_model():
    """A tiny GPT-2 of this test's own, free to hook and edit."""
    from lm_probe_widgets.core.io.tiny import tiny_model

    return tiny_model("gpt2")


def _features(model, root, ds, site=SITE):
    return ProbeRunner(model, ProbeConfig(site, [0, 1]), store=root).get_probe_features(ds)[site]


def test_a_hooked_model_bypasses_the_store_and_the_cache_serves_only_its_own_features(
    own_model, tmp_path, monkeypatch
):
    """Ablating with a forward hook (no weight touched) changes the features: while it
    is registered they are computed afresh, never served from the store (nor written
    to it), and once it is removed the store serves the unablated ones again."""
    model, tok = own_model
    ds = ProbeDataset.from_texts(*sentiment_texts(24), tok)
    root = tmp_path / "store"
    clean = _features(model, root, ds)
    entries = sorted(e["id"] for e in DiskStore(root).entries())
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root)
    mlp = model._module.transformer.h[1].mlp
    hook = mlp.register_forward_hook(lambda module, args, out: out * 0)
    try:
        with pytest.warns(StoreWarning, match=r"forward hook on transformer\.h\.1\.mlp"):
            with traces(monkeypatch) as calls:
                ablated = runner.get_probe_features(ds)[SITE]
        assert calls  # computed, not served from the store
        assert np.abs(ablated - clean).max() > 1e-4
        with traces(monkeypatch) as calls:  # same hook: the in-memory cache serves it
            again = runner.get_probe_features(ds)[SITE]
        assert calls == [] and np.array_equal(again, ablated)
    finally:
        hook.remove()
    assert sorted(e["id"] for e in DiskStore(root).entries()) == entries  # nothing written
    with traces(monkeypatch) as calls:  # hook gone: the clean features, from the store
        restored = runner.get_probe_features(ds)[SITE]
    assert calls == [] and np.array_equal(restored, clean)
    # a hook added back is a new hook: not served the features of the old one
    hook = mlp.register_forward_hook(lambda module, args, out: out * 2)
    try:
        with pytest.warns(StoreWarning), traces(monkeypatch) as calls:
            doubled = runner.get_probe_features(ds)[SITE]
    finally:
        hook.remove()
    assert calls and np.abs(doubled - ablated).max() > 1e-4


@pytest.mark.parametrize("where", ["root pre-hook", "global hook", "nnsight edit"])
def test_every_kind_of_hook_bypasses_the_store(own_model, tmp_path, monkeypatch, where):
    import torch

    model, tok = own_model
    ds = ProbeDataset.from_texts(*sentiment_texts(8), tok)
    root = tmp_path / "store"
    _features(model, root, ds)
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root)
    if where == "root pre-hook":
        handle = model._module.register_forward_pre_hook(lambda *_: None)
        undo = handle.remove
    elif where == "global hook":
        handle = torch.nn.modules.module.register_module_forward_hook(lambda *_: None)
        undo = handle.remove
    else:
        with model.edit(inplace=True):  # replayed in every later trace of the model
            model.transformer.h[0].mlp.output[:] = 0
        undo = model.clear_edits
    try:
        with pytest.warns(StoreWarning, match="kept out of the feature store"):
            with traces(monkeypatch) as calls:
                runner.get_probe_features(ds)
    finally:
        undo()
    assert calls


def test_a_swapped_parameter_free_module_changes_the_key(own_model, tmp_path, monkeypatch):
    """`mlp.act = Identity()` changes no weight; the module tree is in the key, so the
    store (also in a later process: the key is the same there) never serves the old
    features, and swapping back finds them again."""
    import torch

    model, tok = own_model
    ds = ProbeDataset.from_texts(*sentiment_texts(24), tok)
    root = tmp_path / "store"
    clean = _features(model, root, ds)
    mlp = model._module.transformer.h[1].mlp
    act = mlp.act
    mlp.act = torch.nn.Identity()
    try:
        with traces(monkeypatch) as calls:
            swapped = _features(model, root, ds)
        assert calls and np.abs(swapped - clean).max() > 1e-4
        plain = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=False)
        np.testing.assert_array_equal(swapped, plain.get_probe_features(ds)[SITE])
    finally:
        mlp.act = act
    with traces(monkeypatch) as calls:
        back = _features(model, root, ds)
    assert calls == [] and np.array_equal(back, clean)


def test_an_accelerate_offloaded_model_still_uses_the_store(tmp_path, monkeypatch):
    """accelerate streams offloaded weights in by wrapping `forward`, not with torch
    hooks: such a model is served from the store like any other."""
    from lm_probe_widgets.core.io.loading import load_model
    from lm_probe_widgets.core.io.tiny import tiny_hf_model

    hf, tok = tiny_hf_model("llama")
    hf.save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    device_map = LLAMA_LAYER_2_ON_DISK
    model, tok = load_model(tmp_path / "llama", device_map=device_map)
    assert model._module.hf_device_map["model.layers.2"] == "disk"
    ds = ProbeDataset.from_texts(*sentiment_texts(8), tok)
    site = "model.layers.2.output"
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)  # no hook notice
        first = _features(model, tmp_path / "store", ds, site)
        with traces(monkeypatch) as calls:
            again = _features(model, tmp_path / "store", ds, site)
    assert calls == [] and np.array_equal(first, again)


def test_a_full_disk_keeps_the_fit_in_memory_with_the_same_numbers(
    tiny, sentiment, tmp_path, monkeypatch
):
    import errno

    def no_space(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:80], labels[:80], tok).tt_split(0.25)
    kwargs = dict(num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    runner = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=tmp_path / "store")
    with pytest.warns(StoreWarning, match="No space left.*memory only"):
        runner.fit_probes(train, test, **kwargs)
    plain = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=False)
    plain.fit_probes(train, test, **kwargs)
    assert runner.metrics["accuracy"].equals(plain.metrics["accuracy"])
    assert DiskStore(tmp_path / "store").entries() == []


def test_a_read_only_store_serves_its_entries_and_computes_the_rest_in_memory(
    tiny, sentiment, tmp_path, monkeypatch
):
    from test_store import _read_only, _snapshot

    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:80], labels[:80], tok).tt_split(0.25)
    kwargs = dict(num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    root = tmp_path / "store"
    first = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root).fit_probes(
        train, test, **kwargs
    )
    before = _snapshot(root)
    with _read_only(root, monkeypatch):
        again = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=root)
        with traces(monkeypatch) as calls:
            again.fit_probes(train, test, **kwargs)
        assert calls == []  # every feature from the read-only store
        assert again.metrics["accuracy"].equals(first.metrics["accuracy"])
        other = ProbeRunner(model, ProbeConfig("transformer.h.0.output", [0, 1]), store=root)
        with pytest.warns(StoreWarning, match="read-only"):
            other.fit_probes(train, test, **kwargs)
        assert other.metrics["accuracy"].notna().all() and other.store is not None
    assert _snapshot(root) == before


def test_a_tight_cap_keeps_what_the_fit_reads_over_other_poolings(
    tiny, sentiment, tmp_path, monkeypatch
):
    """With a cap of 3x what a fit reads, the other poolings the store keeps in case
    they are wanted are dropped when there is no room, never evicting the fit's own
    entries: an identical second fit runs no forward."""
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:80], labels[:80], tok).tt_split(0.25)
    kwargs = dict(num_epoch=1, batch_size=16, progress=None, bootstrap=0)
    big = DiskStore(tmp_path / "big", max_bytes=10**9)
    ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=big).fit_probes(train, test, **kwargs)
    reads = sum(
        e["bytes"]
        for e in big.entries()
        if e["key"]["site"] == SITE and e["key"]["pooling"] == "mean"
    )
    assert 0 < 3 * reads < big.du() / 2  # the other poolings would take far more
    small = DiskStore(tmp_path / "small", max_bytes=3 * reads)
    first = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=small)
    first.fit_probes(train, test, **kwargs)
    with traces(monkeypatch) as calls:
        again = ProbeRunner(model, ProbeConfig(SITE, [0, 1]), store=small)
        again.fit_probes(train, test, **kwargs)
    assert calls == []
    assert again.metrics["accuracy"].equals(first.metrics["accuracy"])
    assert small.du() <= small.max_bytes + 8192  # (lock files and folders aside)
