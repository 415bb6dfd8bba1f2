"""Pooled features kept where the probe maths runs (core.engine.feature_cache's
DeviceFeatures): a fit whose maths runs in torch keeps its features on that device
within the cache's device budget, spills the rest to host RAM and disk, and learns
what the numpy path learns. On this CPU the torch engine runs on CPU tensors (the
tests replace modeling.stack_device, as its docstring says); with CUDA present the same
tests run there too (probe_device="cuda", the library's own choice of engine)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from engines import assert_same_probes
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.engine import final_fit, modeling
from lm_probe_widgets.core.engine import fit as fit_module
from lm_probe_widgets.core.engine.feature_cache import DeviceFeatures, FeatureStore
from lm_probe_widgets.core.engine.modeling import wrap_model
from lm_probe_widgets.core.engine.pooling import POOLERS, pool
from lm_probe_widgets.core.io.tiny import tiny_hf_model

ENGINES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
H, MLP = "transformer.h.{}.output", "transformer.h.{}.mlp.c_fc.output"
FIT = dict(num_epoch=2, batch_size=12, progress=None, bootstrap=0)


# Strengths that keep the final fit well posed on 36 rows of width 128 (at 1e-3 its
# flat directions let float rounding move where L-BFGS stops by 1% of the weights).
L2 = (1e-2, 1e-1, 1.0)


def _mixed():
    """Two widths (32, 128), three poolings, two and three classes; stacks and a lone
    probe."""
    return [
        ProbeConfig(H.format(0), [0, 1], name="h0 mean", l2=L2),
        ProbeConfig(H.format(1), [0, 1], name="h1 max", pooling="max", l2=L2),
        ProbeConfig(H.format(2), [0, 1, 2], name="h2 three classes", pooling="last", l2=L2),
        ProbeConfig(MLP.format(1), [0, 1], name="h1 mlp", l2=L2),
        ProbeConfig(MLP.format(2), [0, 1], name="h2 mlp", l2=L2),
    ]


def _tokens():
    """Token-level probes: two of one width (a stack) and one wider."""
    return [
        ProbeConfig(H.format(0), [0, 1], name="t0", pooling="none", l2=L2),
        ProbeConfig(H.format(1), [0, 1], name="t1", pooling="none", l2=L2),
        ProbeConfig(MLP.format(1), [0, 1], name="t mlp", pooling="none", l2=L2),
    ]


@pytest.fixture(scope="module")
def data(tiny):
    """(examples split, tokens split): sentiment labels, and per-token labels."""
    _, tok = tiny
    texts, labels = sentiment_texts(48, seed=4)
    examples = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25, seed=0)
    enc = [tok(t)["input_ids"] for t in texts[:24]]
    token_labels = [[int(i % 2 == 0) for i in ids] for ids in enc]
    tokens = ProbeDataset(enc, None, token_labels).tt_split(0.25, stratify=False)
    return examples, tokens


def _fit(model, configs, split, engine: str | None, setup=None, fit=(), **kw) -> ProbeRunner:
    """A fit on the numpy path (engine None) or the torch engine on `engine`; `fit`:
    more fit_probes arguments, `kw`: more ProbeRunner arguments. Its final fit's
    inputs are in `runner.final_inputs` (`_spy_final_fit`)."""
    on_cuda = engine is not None and engine.startswith("cuda")
    runner = ProbeRunner(
        model, configs, store=False, probe_device=engine if on_cuda else None, **kw
    )
    if setup is not None:
        setup(runner)
    with pytest.MonkeyPatch.context() as mp:
        if engine == "cpu":
            mp.setattr(modeling, "stack_device", lambda _: torch.device("cpu"))
        runner.final_inputs = _spy_final_fit(mp)
        three = any(c.name == "h2 three classes" for c in configs)  # class 2 has no example
        with pytest.warns(UserWarning, match="h2 three classes") if three else nullcontext():
            runner.fit_probes(*split, **FIT, **dict(fit))
    assert runner.state == "fitted"
    return runner


def _spy_final_fit(mp: pytest.MonkeyPatch) -> dict[str, list]:
    """Records, while `FitLoop._refine` runs, the device each device-resident key is
    read for ("reads"; None: a host copy) and each final-fit problem's rows ("x")."""
    seen: dict[str, list] = {"reads": [], "x": []}
    refining = []
    real_refine, real_resident = fit_module.FitLoop._refine, DeviceFeatures.resident
    real_group = final_fit._fit_group

    def refine(loop):
        refining.append(True)
        try:
            return real_refine(loop)
        finally:
            refining.pop()

    def resident(store, indices=None, device=None):
        if refining:
            seen["reads"].append(device)
        return real_resident(store, indices, device)

    def fit_group(group, *args):
        seen["x"] += [q.x for q in group]
        return real_group(group, *args)

    mp.setattr(fit_module.FitLoop, "_refine", refine)
    mp.setattr(DeviceFeatures, "resident", resident)
    mp.setattr(final_fit, "_fit_group", fit_group)
    return seen


def _stores(runner: ProbeRunner) -> dict:
    """(data set, feature key) -> where the runner's cache keeps those rows."""
    plan = runner.last_plan
    out = {}
    for name in ("train", "val", "eval_set"):
        ds = getattr(plan, name)
        if ds is not None:
            fp = runner.data_key(ds)
            for key in {c.feature_key for c in runner.configs}:
                out[(name, key)] = runner.cache.get(fp, key)
    return out


@pytest.fixture(scope="module")
def numpy_fits(tiny, data):
    return [_fit(tiny[0], _mixed(), data[0], None), _fit(tiny[0], _tokens(), data[1], None)]


@pytest.fixture(scope="module", params=ENGINES)
def device_fits(request, tiny, data):
    engine = request.param
    model = tiny[0]
    return engine, [_fit(model, _mixed(), data[0], engine), _fit(model, _tokens(), data[1], engine)]


def test_a_fit_keeps_its_features_on_the_engines_device_and_learns_the_numpy_probes(
    numpy_fits, device_fits
):
    """Mixed widths, poolings (token-level too) and classes: every row the fit read
    stays on the probe device, and the probes and metrics are the numpy path's."""
    engine, fits = device_fits
    for host, dev in zip(numpy_fits, fits, strict=True):
        for where, store in _stores(dev).items():
            assert isinstance(store, DeviceFeatures), where
            assert store.array.device.type == engine and store.array.dtype == torch.float32
        assert all(type(s) is FeatureStore for s in _stores(host).values())
        assert dev.cache.device_nbytes > 0 and host.cache.device_nbytes == 0
        # the final fit read the rows on the device in place: no host copy of them
        spied, on_host = dev.final_inputs, host.final_inputs
        assert spied["reads"] and set(spied["reads"]) == {torch.device(engine)}
        # one problem per probe, and one per grid extension (the same on both paths)
        assert len(spied["x"]) >= len(dev.configs) and len(spied["x"]) == len(on_host["x"])
        assert all(isinstance(x, torch.Tensor) and x.device.type == engine for x in spied["x"])
        assert all(isinstance(x, np.ndarray) for x in on_host["x"])  # the numpy path's
        assert_same_probes(host, dev)
        # the numpy edges read host copies of the same rows
        ds = dev.last_plan.eval_set
        keys = [c.feature_key for c in dev.configs]
        got, want = dev.features(ds, keys), host.features(ds, keys)
        for key in keys:
            assert isinstance(got[key], np.ndarray)
            np.testing.assert_array_equal(got[key], want[key])


def test_features_past_the_device_budget_spill_to_ram_and_disk_with_theassert_same_probes(
    tiny, data, device_fits
):
    """A device budget and a RAM budget each a third of the features: the first keys
    stay on the device, the next in RAM, the rest in the disk spill; the probes are
    the all-on-device fit's, bit for bit."""
    engine, (whole, _) = device_fits
    third = whole.cache.device_nbytes // 3

    def small(runner):
        runner.cache.budget_bytes = third
        runner.cache.device_budget_bytes = third

    spilled = _fit(tiny[0], _mixed(), data[0], engine, setup=small)
    stores = _stores(spilled)
    on_device = [s for s in stores.values() if isinstance(s, DeviceFeatures)]
    in_ram = [s for s in stores.values() if type(s) is FeatureStore]
    assert on_device and in_ram and len(on_device) + len(in_ram) == len(stores)
    used = spilled.cache.device_nbytes
    assert used <= third
    # each key kept on the host did not fit on the device when it came (first come, first kept)
    assert all(used + s.array.nbytes > third for s in in_ram)
    on_disk = [s for s in in_ram if isinstance(s.array, np.memmap)]
    assert on_disk and len(on_disk) < len(in_ram)
    assert_same_probes(whole, spilled, exact=True)


def test_a_device_budget_of_0_keeps_every_feature_off_the_device_with_theassert_same_probes(
    tiny, data, device_fits
):
    """`ProbeRunner(device_budget=0)`: no row on the device, in the runner's cache or
    in those of its control probes and random-init baseline (the budgets carry over),
    and the probes are the all-on-device fit's, bit for bit."""
    engine, (whole, _) = device_fits
    budgets = dict(memory_budget=64 * 1024**2, device_budget=0)
    extras = dict(control=True, baselines=("random_init",))
    runner = _fit(tiny[0], _mixed(), data[0], engine, fit=extras, **budgets)
    subs = [runner.control, runner.baselines["random_init"]]
    assert subs[0].cache is runner.cache and subs[1].cache is not runner.cache
    for r in [runner, *subs]:
        assert r.cache.device_budget_bytes == 0 and r.cache.budget_bytes == 64 * 1024**2
        stores = _stores(r)
        assert stores and all(type(s) is FeatureStore for s in stores.values())
        assert r.cache.device_nbytes == 0
    assert_same_probes(whole, runner, exact=True)


def test_a_budget_that_is_not_a_whole_number_of_bytes_is_refused_before_anything_runs():
    """Checked before the model is even wrapped (here: no model, no configs at all)."""
    for name in ("device_budget", "memory_budget"):
        for bad in (-1, 1.5, "1 GiB", True):
            with pytest.raises(ProbeError, match=f"{name} must be a whole number of bytes"):
                ProbeRunner(None, [], **{name: bad})


def test_each_sites_rows_go_from_where_its_layer_ran_to_the_probe_device(tiny, monkeypatch):
    """Two sites: the rows written to the cache are tensors on the device the site's
    layer ran on (no trip through numpy on the host), kept on the probe device (CUDA
    where present, the model staying on the CPU). tests/test_device_map.py splits a
    model's layers over two GPUs."""
    model, tok = tiny
    ids = [tok(t)["input_ids"] for t in sentiment_texts(8, seed=1)[0]]
    ds = ProbeDataset(ids, None, None)
    configs = [ProbeConfig(H.format(0)), ProbeConfig(H.format(2), pooling="none")]
    keys = [c.feature_key for c in configs]
    runner = ProbeRunner(model, configs, store=False)
    probe_device = torch.device("cuda", 0) if ENGINES[-1] == "cuda" else torch.device("cpu")
    sites = {key[0]: torch.device("cpu") for key in keys}  # the model's one device
    writes = []
    real_write = DeviceFeatures.write

    def write(store, indices, rows):
        writes.append((type(rows), getattr(rows, "device", None), store.device))
        return real_write(store, indices, rows)

    monkeypatch.setattr(DeviceFeatures, "write", write)
    runner.cache.device = probe_device
    feats = runner.features(ds, keys, batch_size=4, device=probe_device)
    assert len(writes) == 2 * 2  # two batches, two keys
    for (cls, came_from, kept_on), key in zip(writes, keys * 2, strict=True):
        assert cls is torch.Tensor and came_from == sites[key[0]] and kept_on == probe_device
    for key in keys:
        assert isinstance(feats[key], torch.Tensor) and feats[key].device == probe_device
    assert feats[keys[1]].shape[0] == int(ds.lengths.sum())  # one row per real token


@pytest.mark.parametrize("how", sorted(POOLERS))
def test_pooling_sums_bf16_and_fp16_activations_in_float32(how):
    """Each pooling of a half-precision activation is float32 and equals the pooling
    of its exact float32 values (the cast comes before any sum)."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3, 5, 8, generator=gen) * 300  # sums past fp16's 65,504 overflow
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    for half in (torch.bfloat16, torch.float16):
        got = pool(h.to(half), mask, how)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, pool(h.to(half).float(), mask, how), rtol=0, atol=0)


def test_a_bf16_model_gives_float32_features_close_to_the_fp32_models(tiny):
    """The same tiny model in bf16 and fp32: float32 features (on the probe device
    too), equal within bf16's rounding (8 bits of mantissa, through three layers)."""
    hf, tok = tiny_hf_model("gpt2")
    texts = sentiment_texts(8, seed=3)[0]
    ds = ProbeDataset([tok(t)["input_ids"] for t in texts], None, None)
    keys = [ProbeConfig(H.format(i), pooling=how).feature_key for i in (0, 2) for how in POOLERS]
    feats = {}
    for dtype in (torch.float32, torch.bfloat16):  # (Module.to converts in place)
        model = wrap_model(hf.to(dtype), tok)
        runner = ProbeRunner(model, [ProbeConfig(H.format(i)) for i in (0, 2)], store=False)
        runner.cache.device = torch.device(ENGINES[-1])
        feats[dtype] = runner.features(ds, keys, batch_size=4, device=runner.cache.device)
    for key in keys:
        full, half = feats[torch.float32][key], feats[torch.bfloat16][key]
        assert half.dtype == torch.float32
        scale = full.abs().max()
        # 4 units of bf16 rounding (2**-8) of the largest feature; 0.8% seen
        torch.testing.assert_close(half, full, rtol=0, atol=float(2**-6 * scale))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_memory_estimate_counts_features_on_the_device_then_in_ram(tiny, data, engine):
    """What the device budget holds is counted on the probe device, the rest in RAM
    (then on disk); with the numpy engine all of it is in RAM."""
    from lm_probe_widgets.core.engine import memory

    train, test = data[0]
    on_cuda = engine.startswith("cuda")
    runner = ProbeRunner(tiny[0], _mixed(), store=False, probe_device=engine if on_cuda else None)
    host = memory.estimate_memory(runner, train, test, batch_size=12)
    assert host.cache_device is None and host.cache_in_ram == host.cache > 0
    runner.cache.device_budget_bytes = host.cache // 3
    runner.cache.budget_bytes = host.cache // 2
    with pytest.MonkeyPatch.context() as mp:
        if engine == "cpu":
            mp.setattr(modeling, "stack_device", lambda _: torch.device("cpu"))
        est = memory.estimate_memory(runner, train, test, batch_size=12)
    assert est.cache_device == str(torch.device(engine)) and est.cache == host.cache
    assert est.cache_on_device == host.cache // 3 and est.cache_in_ram == host.cache // 2
    assert est.cache_on_disk == host.cache - host.cache // 3 - host.cache // 2
    dev, safety = est.cache_device, memory.SAFETY
    ram = int(est.cache_in_ram * safety) if dev == "cpu" else 0  # the host is that device
    want = int(est.activations.get(dev, 0) * safety) + int(est.cache_on_device * safety) + ram
    assert est.needed()[dev] == want
    assert f"pooled-feature cache on {est.cache_device}" in str(est)
