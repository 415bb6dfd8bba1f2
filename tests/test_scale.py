"""Scale (issue 9): devices, dtypes, device_map loading, the memory guard and the
remote path's failure behaviour -- everything that can be checked on a CPU box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from patience import FAILS_FAST_S, PATIENCE_S
from synthetic import LLAMA_LAYER_2_ON_DISK, sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import memory
from lm_probe_widgets.core.engine.modeling import model_device, wrap_model
from lm_probe_widgets.core.engine.pooling import pool
from lm_probe_widgets.core.io.loading import load_model
from lm_probe_widgets.core.io.tiny import tiny_hf_model

LLAMA_LAYERS = ["model.layers.0.output", "model.layers.2.output"]


def _data(tok, n=120, max_length=24):
    texts, labels = sentiment_texts(n)
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=max_length)
    return ds.tt_split(test_size=0.25, seed=0)


def _configs(subs=LLAMA_LAYERS, **kw):
    return [ProbeConfig(s, classes=[0, 1], **kw) for s in subs]


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory):
    """A tiny Llama saved like a real checkpoint, for load_model(folder, ...)."""
    hf, tok = tiny_hf_model("llama")
    path = tmp_path_factory.mktemp("tiny-llama")
    hf.save_pretrained(path)
    tok.save_pretrained(path)
    return path


# ------------------------------------------------------------------ devices and dtypes


def test_inputs_go_to_the_input_embeddings_device_not_the_first_parameter():
    hf, tok = tiny_hf_model("gpt2")
    # A parameter that comes first in .parameters() but lives elsewhere, as the first
    # parameter of a device_map="auto" model can live on another GPU than the embedding.
    model = wrap_model(hf, tok)
    hf.register_parameter("elsewhere", torch.nn.Parameter(torch.zeros(1, device="meta")))
    assert next(hf.parameters()).device.type == "meta"
    assert model_device(model) == torch.device("cpu")
    del hf.elsewhere  # (HF's own `model.device` would now say meta, so no forward here)
    runner = ProbeRunner(model, _configs(["transformer.h.1.output"]))
    train, _ = _data(tok, n=16)
    feats = runner.get_probe_features(train)["transformer.h.1.output"]
    assert feats.shape == (len(train), 32) and np.isfinite(feats).all()


def test_meta_model_takes_cpu_inputs_and_validates_without_weights(tiny_llama_dir):
    import nnsight

    from lm_probe_widgets.core.io.tiny import tiny_tokenizer

    model = nnsight.TransformersModel(
        str(tiny_llama_dir), tokenizer=tiny_tokenizer(), task="text-generation"
    )
    assert next(model._module.parameters()).device.type == "meta"
    assert model_device(model) == torch.device("cpu")
    runner = ProbeRunner(model, _configs())  # dry run under fake tensors: shapes only
    assert runner._dry.shapes["model.layers.2"] == (1, 2, 32)
    assert not model.dispatched  # no weights were loaded for the check


@pytest.mark.parametrize("how", ["mean", "last", "first", "max", "none"])
def test_pooling_happens_on_the_activations_device(how):
    h = torch.empty(2, 5, 8, device="meta", dtype=torch.bfloat16)
    mask = torch.ones(2, 5, dtype=torch.long)  # the mask comes from the CPU batch
    out = pool(h, mask, how) if how != "none" else None
    if how == "none":  # boolean indexing needs data; check the 3-D path another way
        out = pool(torch.ones(2, 5, 8, dtype=torch.bfloat16), mask, how)
        assert out.dtype == torch.float32
        return
    assert out.device.type == "meta"  # pooled where it lives, not copied to CPU first
    assert out.dtype == torch.float32 and out.shape == (2, 8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mean_pooling_of_large_half_precision_activations_does_not_overflow(dtype):
    h = torch.full((2, 64, 4), 30000.0, dtype=dtype)  # the fp16 sum over 64 tokens is inf
    assert not torch.isfinite(h.sum(1)).all() or dtype == torch.bfloat16
    mask = torch.ones(2, 64, dtype=torch.long)
    mask[1, :10] = 0
    out = pool(h, mask, "mean")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full((2, 4), 30000.0), rtol=1e-2, atol=0)


def test_bf16_model_features_are_float32_and_match_fp32():
    hf32, tok = tiny_hf_model("llama")
    hf16, _ = tiny_hf_model("llama")
    hf16 = hf16.to(torch.bfloat16)
    train, _ = _data(tok, n=40)
    f32 = ProbeRunner(wrap_model(hf32, tok), _configs()).get_probe_features(train)
    f16 = ProbeRunner(wrap_model(hf16, tok), _configs()).get_probe_features(train)
    for name in f32:
        assert f16[name].dtype == np.float32
        scale = np.abs(f32[name]).max()
        assert np.abs(f16[name] - f32[name]).max() < 0.05 * scale, name
        assert np.abs(f16[name] - f32[name]).max() > 0  # really computed in bf16


@pytest.mark.parametrize("device_map", ["cpu", "auto"])
def test_load_model_with_device_map_and_dtype_fits_probes(tiny_llama_dir, device_map):
    model, tok = load_model(tiny_llama_dir, device_map=device_map, dtype="bfloat16")
    params = list(model._module.parameters())
    assert {p.dtype for p in params} == {torch.bfloat16}
    assert {p.device.type for p in params} == {"cpu"}
    train, test = _data(tok)
    runner = ProbeRunner(model, _configs())
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    assert runner.metrics["accuracy"].notna().all()
    feats = runner.get_probe_features(test)
    assert all(f.dtype == np.float32 and np.isfinite(f).all() for f in feats.values())


def test_accelerate_placement_across_devices_probes_like_one_device(tiny_llama_dir):
    """A real multi-device placement on a CPU box: accelerate offloads layer 2 to disk
    (its weights sit on the meta device and hooks stream them in), as device_map="auto"
    does for a model larger than the GPUs. Probing must not notice."""
    device_map = LLAMA_LAYER_2_ON_DISK
    sharded, tok = load_model(tiny_llama_dir, device_map=device_map)
    assert sharded._module.hf_device_map["model.layers.2"] == "disk"
    layer2 = sharded._module.model.layers[2]
    assert {p.device.type for p in layer2.parameters()} == {"meta"}
    assert model_device(sharded) == torch.device("cpu")  # the embedding's, not meta
    plain, _ = load_model(tiny_llama_dir)
    train, _ = _data(tok, n=24)
    got = ProbeRunner(sharded, _configs()).get_probe_features(train)
    want = ProbeRunner(plain, _configs()).get_probe_features(train)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    est = memory.estimate_memory(ProbeRunner(sharded, _configs()), train, None, 8)
    assert "offloaded" in est.model and "cpu" in est.model


def test_load_model_tiny_name_honours_dtype():
    model, _ = load_model("tiny-gpt2", dtype=torch.float16, device_map="cpu")
    assert {p.dtype for p in model._module.parameters()} == {torch.float16}
    with pytest.raises(Exception, match="unknown dtype"):
        load_model("tiny-gpt2", dtype="float17")


# ------------------------------------------------------------------ memory guard


def test_memory_estimate_counts_activations_and_the_pooled_cache(tiny_llama):
    model, tok = tiny_llama
    train, test = _data(tok)
    runner = ProbeRunner(model, _configs() + _configs(["model.layers.1.output"], pooling="last"))
    est = memory.estimate_memory(runner, train, test, batch_size=16)
    # 3 feature keys x (train + test examples) x width 32 x 4 bytes
    assert est.cache == 3 * (len(train) + len(test)) * 32 * 4
    longest = int(max(train.lengths.max(), test.lengths.max()))
    reads = 3 * 16 * longest * 32 * 4  # the three activations of one batch, fp32
    assert est.activations["cpu"] > reads
    double = memory.estimate_memory(runner, train, test, batch_size=32)
    assert double.activations["cpu"] > 1.8 * est.activations["cpu"]  # grows with the batch
    text = str(est)
    assert "activations per batch on cpu" in text and "pooled-feature cache" in text
    assert est.available["cpu"] is not None and est.available["cpu"] > 0
    # a data set whose features are already cached (the eval set here) is not counted
    runner.fit_probes(train, test, num_epoch=1, batch_size=16, progress=None, bootstrap=0)
    again = memory.estimate_memory(runner, train, test, batch_size=16)
    assert again.cache == 3 * len(train) * 32 * 4


def test_fit_refuses_clearly_before_any_batch_when_memory_is_short(tiny_llama, monkeypatch):
    model, tok = tiny_llama
    train, test = _data(tok)
    runner = ProbeRunner(model, _configs())
    runner.fit_probes(train, test, num_epoch=1, batch_size=16, progress=None, bootstrap=0)
    before = {n: p.weight.clone() for n, p in runner.probes.items()}
    other_train, other_test = _data(tok, n=100, max_length=20)
    seen = []
    runner.events.subscribe(seen.append)
    monkeypatch.setattr(memory, "host_available", lambda: 64 * 1024)  # a 64 KiB machine
    with pytest.raises(memory.MemoryBudgetError) as err:
        runner.fit_probes(other_train, other_test, batch_size=16, progress=None)
    msg = str(err.value)
    assert "cpu needs" in msg and "64.00 KiB free" in msg
    assert "batch_size" in msg and "memory_check=False" in msg
    assert not seen  # refused before fit_started: nothing ran
    assert all(torch.equal(before[n], p.weight) for n, p in runner.probes.items())
    runner.fit_probes(
        other_train,
        other_test,
        num_epoch=1,
        batch_size=16,
        progress=None,
        bootstrap=0,
        memory_check=False,
    )  # the escape hatch works


def test_cache_too_big_for_ram_spills_to_disk_with_a_warning(tiny_llama, monkeypatch):
    model, tok = tiny_llama
    train, test = _data(tok)
    runner = ProbeRunner(model, _configs())
    est = memory.estimate_memory(runner, train, test, batch_size=16)
    free = int((est.activations["cpu"] + est.cache // 3) * memory.SAFETY)
    monkeypatch.setattr(memory, "host_available", lambda: free)
    with pytest.warns(UserWarning, match="spilling"):
        runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    assert runner.cache.spilled
    assert runner.cache.budget_bytes < est.cache
    assert runner.metrics["accuracy"].notna().all()


# ------------------------------------------------------------------ remote (NDIF)


@pytest.fixture
def no_key(monkeypatch):
    import nnsight

    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(nnsight.CONFIG.API, "APIKEY", None)


@pytest.fixture
def fake_key(monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "not-a-real-key")


def _hub_named(model, repo="openai-community/gpt2"):
    """The tiny model under a hub id, as a remote model is named (weights stay remote)."""
    model.repo_id = repo
    return model


def test_remote_local_simulation_pools_inside_the_trace_like_a_local_run(tiny_llama):
    model, tok = tiny_llama
    configs = _configs() + _configs(["model.layers.2.output"], pooling="max", name="l2max")
    train, test = _data(tok, n=40)
    got = ProbeRunner(model, configs, remote="local").get_probe_features(test)
    want = ProbeRunner(model, configs).get_probe_features(test)
    for name in want:
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)
    runner = ProbeRunner(model, _configs(), remote="local")
    runner.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    assert runner.metrics["accuracy"].notna().all()


def test_pooling_ships_by_value_to_a_server_without_this_package(tmp_path):
    """The server has torch and nnsight but not lm_probe_widgets: the pooling code in the
    trace must travel as source (nnsight.register), and run there."""
    import subprocess
    import sys

    import cloudpickle
    import nnsight

    from lm_probe_widgets.core.engine import pooling

    nnsight.register(pooling)
    (tmp_path / "pool.pkl").write_bytes(cloudpickle.dumps(pooling.pool))
    script = (
        "import sys, pickle, torch\n"
        "sys.modules['lm_probe_widgets'] = None  # not installed on the server\n"
        f"pool = pickle.loads(open({str(tmp_path / 'pool.pkl')!r}, 'rb').read())\n"
        "h = torch.arange(24.).reshape(2, 3, 4).to(torch.bfloat16)\n"
        "m = torch.tensor([[0, 1, 1], [1, 1, 1]])\n"
        "out = pool(h, m, 'mean')\n"
        "assert out.dtype == torch.float32 and out[0, 0].item() == 6.0, out\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


def test_remote_without_api_key_fails_at_construction_without_network(tiny, no_key, monkeypatch):
    import socket
    import time

    from lm_probe_widgets.core.engine.remote import RemoteUnavailable

    def no_network(*a, **k):
        raise AssertionError("a network call was made")

    monkeypatch.setattr(socket, "create_connection", no_network)
    model, _ = tiny
    t0 = time.monotonic()
    with pytest.raises(RemoteUnavailable) as err:
        ProbeRunner(_hub_named(model), _configs(["transformer.h.1.output"]), remote=True)
    assert time.monotonic() - t0 < FAILS_FAST_S
    msg = str(err.value)
    assert "NDIF_API_KEY" in msg and "set_default_api_key" in msg and "remote='local'" in msg


def test_remote_needs_a_hub_named_model(tiny_llama_dir, fake_key):
    import nnsight

    from lm_probe_widgets.core.io.tiny import tiny_tokenizer

    model = nnsight.TransformersModel(
        str(tiny_llama_dir), tokenizer=tiny_tokenizer(), task="text-generation"
    )
    with pytest.raises(Exception, match="Hugging Face id"):
        ProbeRunner(model, _configs(), remote=True)


def test_unreachable_ndif_fails_in_seconds_and_keeps_the_probes(tiny, fake_key, tmp_path):
    import time

    from lm_probe_widgets.core.engine.remote import RemoteUnavailable

    model, tok = tiny
    configs = _configs(["transformer.h.1.output", "transformer.h.2.output"])
    train, test = _data(tok)
    local = ProbeRunner(model, configs)
    local.fit_probes(train, test, num_epoch=2, batch_size=16, progress=None, bootstrap=0)
    local.save(tmp_path / "probes")
    # the saved probes, loaded on a remote runner (NDIF is unreachable from here)
    runner = ProbeRunner.load(tmp_path / "probes", _hub_named(model), remote=True)
    before = {n: (p.weight.clone(), p.state, p.record.steps) for n, p in runner.probes.items()}
    metrics_before = runner.metrics.copy()
    for call in (
        lambda: runner.fit_probes(
            train, test, num_epoch=3, batch_size=16, progress=None, resume=True
        ),
        lambda: runner.compute_metrics(test),
        lambda: runner.get_probe_features(test),
    ):
        t0 = time.monotonic()
        with pytest.raises(RemoteUnavailable) as err:
            call()
        assert time.monotonic() - t0 < FAILS_FAST_S  # a clear error, never a hang
        msg = str(err.value)
        assert "cannot reach NDIF" in msg and "resume=True" in msg and "NDIF_HOST" in msg
    after = {n: (p.weight, p.state, p.record.steps) for n, p in runner.probes.items()}
    for n, (w, state, steps) in before.items():
        assert torch.equal(w, after[n][0]) and after[n][1:] == (state, steps)
    assert runner.metrics["accuracy"].equals(metrics_before["accuracy"])


def _serve(respond):
    """A loopback-only TCP server answering every connection with `respond(conn)`."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []

    def loop():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=respond, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.getsockname()[1]}", conns


def test_rejected_api_key_gives_an_auth_message(tiny, fake_key):
    from lm_probe_widgets.core.engine.remote import RemoteUnavailable

    def deny(conn):
        conn.recv(65536)
        body = b'{"detail": "Invalid API key"}'
        conn.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        conn.close()

    srv, host, _ = _serve(deny)
    try:
        model, tok = tiny
        runner = ProbeRunner(_hub_named(model), _configs(["transformer.h.1.output"]), remote=host)
        runner.remote._model_key = "nnsight.modeling.transformers.TransformersModel:{}"
        train, test = _data(tok, n=40)
        with pytest.raises(RemoteUnavailable) as err:
            runner.fit_probes(train, test, num_epoch=1, batch_size=16, progress=None)
        msg = str(err.value)
        assert "rejected" in msg and "401" in msg and "NDIF_API_KEY" in msg
        assert runner.probes == {} and runner.state == "not fitted"  # a failed fit changes nothing
    finally:
        srv.close()


def test_a_server_that_never_answers_times_out_instead_of_hanging(tiny, fake_key, monkeypatch):
    import time

    from lm_probe_widgets.core.engine import remote
    from lm_probe_widgets.core.engine.remote import RemoteUnavailable

    monkeypatch.setattr(remote, "CONNECT_TIMEOUT_S", 1.0)
    srv, host, conns = _serve(lambda conn: None)  # accepts, then silence
    try:
        model, tok = tiny
        runner = ProbeRunner(_hub_named(model), _configs(["transformer.h.1.output"]), remote=host)
        runner.remote._model_key = "nnsight.modeling.transformers.TransformersModel:{}"
        train, _ = _data(tok, n=16)
        t0 = time.monotonic()
        with pytest.raises(RemoteUnavailable, match="lost the connection"):
            runner.get_probe_features(train)
        assert time.monotonic() - t0 < FAILS_FAST_S
    finally:
        srv.close()
        for c in conns:
            c.close()


def test_cli_remote_local_and_dtype_flags(tmp_path, capsys, monkeypatch):
    from lm_probe_widgets.cli import main

    rc = main(
        [
            "demo",
            "--model",
            "tiny-gpt2",
            "--remote",
            "local",
            "--dtype",
            "bfloat16",
            "--n",
            "40",
            "--epochs",
            "1",
            "--layers",
            "1,3",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0 and (tmp_path / "metrics.csv").is_file()
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    import nnsight

    monkeypatch.setattr(nnsight.CONFIG.API, "APIKEY", None)
    assert main(["demo", "--model", "org/some-model", "--remote"]) == 2
    assert "NDIF_API_KEY" in capsys.readouterr().err


def test_remote_refuses_baselines_that_need_a_local_model(tiny, fake_key):
    model, tok = tiny
    runner = ProbeRunner(_hub_named(model), _configs(["transformer.h.1.output"]), remote=True)
    train, test = _data(tok, n=40)
    with pytest.raises(Exception, match="not available with remote=True"):
        runner.fit_probes(train, test, baselines=("embeddings",), progress=None)
