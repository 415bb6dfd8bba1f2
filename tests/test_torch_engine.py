"""The probe maths in torch (core.engine.probe's functions over tensors, a ProbeStack on
a device) learns what the numpy path learns, to float rounding, on the CPU here and on
CUDA wherever a GPU is present: the same functions on either kind of array."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from engines import assert_same_probes
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import modeling
from lm_probe_widgets.core.engine.probe import (
    LinearProbe,
    _log_softmax,
    _logit_grad,
    _member_losses,
    adam_update,
    scores,
    weight_grads,
)
from lm_probe_widgets.core.engine.probe_stack import ProbeStack
from lm_probe_widgets.core.errors import ProbeError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# -- a reference: the numpy maths as it was written before the torch backend -----------
def _ref_step(x, y, w, b, mu, inv, l2w, m, v, t, lr):
    """One Adam step of (stacked) probes in place; returns (losses [..., k], logp)."""
    *lead, d, k, c = w.shape
    w_raw = w.reshape(*lead, d, k * c) * inv[..., :, None]
    b_raw = b.reshape(*lead, 1, k * c) - mu[..., None, :] @ w_raw
    out = (x @ w_raw + b_raw).reshape(*x.shape[:-1], k, c).astype(np.float64)
    top = out.max(-1, keepdims=True)
    logp = out - top - np.log(np.exp(out - top).sum(-1, keepdims=True))
    onehot = y[..., None, None] == np.arange(c)
    losses = -(logp * onehot).sum(-1).mean(-2)
    g = ((np.exp(logp) - onehot) / x.shape[-2]).reshape(*x.shape[:-1], k * c)
    gb = g.sum(-2)
    gw = inv[..., :, None] * (np.swapaxes(x, -1, -2) @ g - mu[..., :, None] * gb[..., None, :])
    grads = (gw.reshape(w.shape) + l2w * w, gb.reshape(b.shape))
    for p, gr, mm, vv in zip((w, b), grads, m, v, strict=True):
        mm[...] = 0.9 * mm + 0.1 * gr
        vv[...] = 0.999 * vv + 0.001 * gr * gr
        rate = np.asarray(lr).reshape(tuple(lead) + (1,) * (p.ndim - len(lead)))
        denom = np.sqrt(vv) / math.sqrt(1 - 0.999**t) + 1e-8
        p -= (rate / (1 - 0.9**t) * mm / denom).astype(p.dtype)
    return losses, logp


def _arrays(lead: tuple, d: int, k: int, c: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(rng.normal(0, 2, d), 1.5, lead + (n, d)).astype(np.float32)
    y = rng.integers(0, c, lead + (n,))
    w = rng.normal(0, 0.3, lead + (d, k, c)).astype(np.float32)
    b = rng.normal(0, 0.3, lead + (k, c)).astype(np.float32)
    mu = rng.normal(0, 2, lead + (d,)).astype(np.float32)
    inv = rng.uniform(0.3, 2, lead + (d,)).astype(np.float32)
    l2w = np.asarray(10.0 ** rng.uniform(-3, 0, lead + (1, k, 1)), dtype=np.float32)
    return x, y, w, b, mu, inv, l2w


@pytest.mark.parametrize("backend", ["numpy", *DEVICES])
@pytest.mark.parametrize("lead, classes", [((), 2), ((), 3), ((4,), 2), ((3,), 5)])
def test_the_online_maths_matches_the_reference_in_numpy_and_torch(backend, lead, classes):
    """scores -> losses -> gradients -> Adam, ten steps, single and stacked probes, on
    numpy arrays or on torch tensors of a device."""
    x, y, w, b, mu, inv, l2w = _arrays(lead, 7, 3, classes, 9, seed=len(lead) + classes)
    lr = np.full(lead or (), 0.05)
    ref = [a.copy() for a in (w, b)]
    ref_m, ref_v = [np.zeros_like(a) for a in ref], [np.zeros_like(a) for a in ref]
    if backend == "numpy":
        here, host = np.array, np.asarray
    else:
        here, host = (lambda a: torch.tensor(a, device=backend)), (lambda a: a.cpu().numpy())
    tw, tb, tx, ty, tmu, tinv, tl2 = (here(a) for a in (w, b, x, y, mu, inv, l2w))
    tm = (here(np.zeros_like(w)), here(np.zeros_like(b)))
    tv = (here(np.zeros_like(w)), here(np.zeros_like(b)))
    for t in range(1, 11):
        losses_ref, logp_ref = _ref_step(x, y, *ref, mu, inv, l2w, ref_m, ref_v, t, lr)
        logp = _log_softmax(scores(tx, tw, tb, tmu, tinv))
        losses = _member_losses(logp, ty)
        grads = weight_grads(tx, _logit_grad(logp, ty), tw, tl2, tmu, tinv)
        adam_update((tw, tb), grads, tm, tv, t, lr)
        assert type(losses) is type(tw) and str(losses.dtype).endswith("float64")
        np.testing.assert_allclose(host(logp), logp_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(host(losses), losses_ref, rtol=1e-5)
        np.testing.assert_allclose(host(tw), ref[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(host(tb), ref[1], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(host(tv[0]), ref_v[0], rtol=1e-4, atol=1e-9)


def _probes(n_probes: int, dim: int, classes: int):
    """Probes with their own seeds, learning rates and L2 banks, after a first pass."""
    rng = np.random.default_rng(classes)
    probes, data = [], []
    for i in range(n_probes):
        cfg = ProbeConfig(
            "h",
            list(range(classes)),
            name=f"p{i}",
            seed=i,
            lr=float(10 ** rng.uniform(-3, -2)),
            l2=tuple(10.0 ** rng.uniform(-3, 0, 3)),
        )
        probe = LinearProbe(cfg, dim)
        x = rng.normal(rng.normal(0, 2, dim), rng.uniform(0.2, 3, dim), (48, dim))
        y = rng.integers(0, classes, 48)
        for rows in np.array_split(np.arange(24), 3):
            probe.scaler.update(x[rows])
            probe.step(x[rows], y[rows], 3e-3)
        probe.scaler.frozen = True
        probes.append(probe)
        data.append((x.astype(np.float32), y))
    return probes, data


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("classes", [2, 4])
def test_a_torch_stack_steps_drops_and_releases_as_the_numpy_stack(device, classes):
    host, data = _probes(4, 10, classes)
    dev = copy.deepcopy(host)
    val = (np.stack([xi for xi, _ in data]), np.stack([yi for _, yi in data]))
    stacks = [ProbeStack(host, val), ProbeStack(dev, val, device)]
    assert isinstance(stacks[1].w, torch.Tensor) and stacks[1].w.device.type == device
    for s in stacks:
        s.refresh_scalers()
    rng = np.random.default_rng(5)
    live = list(range(4))
    for step in range(12):
        if step == 4:
            for s in stacks:
                s.drop(1)  # the last member moves into row 1
            live = [0, 3, 2]
            assert isinstance(dev[1]._w, np.ndarray)  # a dropped probe is on the host
        rows = rng.choice(48, 8, replace=False)
        x = np.stack([data[i][0][rows] for i in live])
        y = np.stack([data[i][1][rows] for i in live])
        lr = np.array([host[i].config.lr for i in live])
        (loss_h, bits_h), (loss_d, bits_d) = (s.step(x, y, lr, code_length=True) for s in stacks)
        np.testing.assert_allclose(loss_d, loss_h, rtol=1e-5)
        np.testing.assert_allclose(bits_d, bits_h, rtol=1e-5)
        np.testing.assert_allclose(stacks[1].val_losses(), stacks[0].val_losses(), rtol=1e-5)
        for s, probes in zip(stacks, (host, dev), strict=True):  # what fit.py records
            for i, v in zip(live, s.val_losses(), strict=True):
                probes[i].note_validation(v)
    stacks[1].release()
    assert stacks[1].probes == []
    for a, b in zip(host, dev, strict=True):
        assert isinstance(b._w, np.ndarray) and isinstance(b._adam_v[1], np.ndarray)
        np.testing.assert_allclose(b._w, a._w, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(b._adam_m[0], a._adam_m[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-5, atol=1e-6)
        assert b._adam_t == a._adam_t and b.record.best_step == a.record.best_step


def _configs():
    """Two widths (hidden 32, MLP 128), three poolings, two and three classes."""
    h, mlp = "transformer.h.{}.output", "transformer.h.{}.mlp.c_fc.output"
    return [
        ProbeConfig(h.format(0), [0, 1], name="h0 mean"),
        ProbeConfig(h.format(1), [0, 1], name="h1 mean"),
        ProbeConfig(h.format(2), [0, 1], name="h2 last", pooling="last"),
        ProbeConfig(h.format(1), [0, 1], name="h1 max", pooling="max"),
        ProbeConfig(h.format(2), [0, 1, 2], name="h2 three classes"),
        ProbeConfig(mlp.format(1), [0, 1], name="h1 mlp"),
        ProbeConfig(mlp.format(2), [0, 1], name="h2 mlp"),
    ]


@pytest.fixture(scope="module")
def split(tiny):
    _, tok = tiny
    texts, labels = sentiment_texts(64, seed=4)
    return ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25, seed=0)


def _fit(tiny, split, device: str | None, stops: tuple[int, ...] = (), **kw) -> ProbeRunner:
    """A fit of _configs(), its stacks and final fit in torch on `device` (None: the
    numpy path); a Stop halfway through each epoch in `stops`, each followed by resume."""
    runner = ProbeRunner(tiny[0], _configs(), **kw)
    todo = list(stops)

    def stopper(e):
        d = e.data
        if e.kind == "batch" and todo and d.get("epoch") == todo[0]:
            halfway = 2 * d["examples_done"] >= d["examples_total"]
            if d.get("phase") in ("extract-train", "train") and halfway:
                todo.pop(0)
                runner.request_stop()

    runner.events.subscribe(stopper)
    kw = {"num_epoch": 3, "batch_size": 12, "progress": None, "bootstrap": 0}
    with pytest.MonkeyPatch.context() as mp:
        if device is not None:
            mp.setattr(modeling, "stack_device", lambda _: torch.device(device))
        runner.fit_probes(*split, **kw)
        for _ in stops:
            assert runner.state == "stopped"
            runner.fit_probes(*split, resume=True, **kw)
    assert runner.state == "fitted" and not todo
    return runner


@pytest.fixture(scope="module")
def numpy_fit(tiny, split):
    with pytest.warns(UserWarning, match="h2 three classes"):  # class 2 has no example
        return _fit(tiny, split, None)


@pytest.fixture(scope="module", params=DEVICES)
def torch_fit(request, tiny, split):
    with pytest.warns(UserWarning, match="h2 three classes"):
        return request.param, _fit(tiny, split, request.param)


def test_a_fit_on_the_torch_engine_gives_the_numpy_paths_probes(numpy_fit, torch_fit):
    """Mixed widths, poolings and classes: stacks and lone probes, the first pass,
    later epochs and the final fit, in torch on a device."""
    _, fitted = torch_fit
    assert [c.name for c in numpy_fit.configs] == [c.name for c in _configs()]
    assert_same_probes(numpy_fit, fitted)
    for cfg in _configs():
        assert fitted[cfg.name].record.best_l2 == numpy_fit[cfg.name].record.best_l2


@pytest.mark.filterwarnings("ignore:probe 'h2 three classes'")
def test_a_torch_fit_stopped_mid_epoch_resumes_to_the_uninterrupted_result(tiny, split, torch_fit):
    """A Stop inside the first pass and one inside a later epoch, each halfway through
    torch stacks' steps: the probes go back to the host, and resuming gives what the
    uninterrupted torch fit gives, bit for bit."""
    device, whole = torch_fit
    resumed = _fit(tiny, split, device, stops=(1, 2))
    for cfg in _configs():
        a, b = whole[cfg.name], resumed[cfg.name]
        np.testing.assert_array_equal(b.coef_, a.coef_)
        np.testing.assert_array_equal(b.intercept_, a.intercept_)
        assert b.record.code_length_bits == a.record.code_length_bits
        assert b.record.history == a.record.history


@pytest.mark.filterwarnings("ignore:probe 'h2 three classes'")
def test_torch_stacks_hold_training_rows_within_the_memory_budget_and_spill_past_it(
    tiny, split, torch_fit, monkeypatch
):
    """Within the budget the later epochs read rows held on the device; past it each
    step's rows cross from the host: the same probes, bit for bit."""
    device, held = torch_fit
    holds = []
    real_hold = ProbeStack.hold
    monkeypatch.setattr(ProbeStack, "hold", lambda s, *a: holds.append(s) or real_hold(s, *a))
    # Stacks: four width-32 probes, then two width-128 ones, with N <= 48 rows each
    # (30 or more): the first needs 512 N bytes <= 24,576, the second 1,024 N more.
    spilled = _fit(tiny, split, device, memory_budget=4 * 48 * 32 * 4)
    assert [s.width for s in holds] == [32]  # the second stack spilled
    for cfg in _configs():
        a, b = held[cfg.name], spilled[cfg.name]
        np.testing.assert_array_equal(b.coef_, a.coef_)
        assert b.record.history == a.record.history


def test_probe_device_is_checked_when_the_runner_is_made(tiny):
    model = tiny[0]
    cfg = ProbeConfig("transformer.h.0.output", [0, 1])
    assert ProbeRunner(model, cfg).probe_device == torch.device("cpu")  # the model's
    assert ProbeRunner(model, cfg, probe_device="cpu").probe_device.type == "cpu"
    with pytest.raises(ProbeError, match="not a device torch knows; give e.g. 'cpu'"):
        ProbeRunner(model, cfg, probe_device="gpu please")
    with pytest.raises(ProbeError, match="probes run on 'cpu', 'cuda"):
        ProbeRunner(model, cfg, probe_device="meta")
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ProbeError, match=f"this machine has {missing} CUDA device"):
        ProbeRunner(model, cfg, probe_device=f"cuda:{missing}")


# -- the final fit of many probes in one solve -------------------------------------------
def _trained(name: str, dim: int, classes: int, l2: tuple, folds: int, n: int, seed: int):
    """A probe after a short first pass, with its training and validation rows."""
    rng = np.random.default_rng(seed)
    cfg = ProbeConfig("h", list(range(classes)), name=name, seed=seed, l2=l2, cv_folds=folds)
    probe = LinearProbe(cfg, dim)
    x = rng.normal(rng.normal(0, 2, dim), rng.uniform(0.2, 3, dim), (n + 16, dim))
    y = rng.integers(0, classes, n + 16)
    x[np.arange(n + 16), y % dim] += 2.0  # learnable, so strengths and folds differ
    for rows in np.array_split(np.arange(n), 4):
        probe.scaler.update(x[rows])
        probe.step(x[rows], y[rows], 1e-2)
    probe.scaler.frozen = True
    x = x.astype(np.float32)
    return probe, dict(x=x[:n], y_idx=y[:n], x_val=x[n:], y_val=y[n:])


def _mixed_probes():
    """Shapes (width, strengths, classes, folds) shared by two probes with their own
    rows counts and L2 grids, and one alone; k-fold and validation-split choices."""
    return [
        _trained("a", 10, 2, (1e-3, 1e-1, 3.0), 5, 48, 0),
        _trained("b", 10, 2, (1e-2, 0.3, 1.0), 5, 40, 1),  # fewer rows: padded
        _trained("c", 10, 2, (1e-3, 1e-1, 3.0), 3, 48, 2),  # other folds: alone
        _trained("d", 10, 4, (1e-3, 1e-1, 3.0), 5, 48, 3),
        _trained("e", 10, 4, (1e-2, 1e-1, 1.0), 5, 44, 4),
        _trained("f", 6, 3, (1e-3, 1.0), 0, 36, 5),  # no folds: the validation split
        _trained("g", 6, 3, (1e-2, 10.0), 0, 30, 6),
    ]


@pytest.fixture(scope="module", params=DEVICES)
def solved_alone(request):
    """(device, the mixed probes with their rows, copies refined each alone there)."""
    mixed = _mixed_probes()
    alone = [copy.deepcopy(p) for p, _ in mixed]
    for probe, (_, kw) in zip(alone, mixed, strict=True):
        probe.refine(**kw, device=request.param)
    return request.param, mixed, alone


@pytest.mark.parametrize("run_bytes", [None, 1])
def test_final_fits_solved_together_are_each_probes_own(solved_alone, run_bytes, monkeypatch):
    """refine_many gives each probe what its own refine gives (strength chosen, CV or
    validation loss, weights to where tol stops them, predictions), probes of one
    shape in one solve, rows padded to the longest; or, past a memory bound for a
    run of probes (`run_bytes`), in several runs."""
    from lm_probe_widgets.core.engine import final_fit
    from lm_probe_widgets.core.engine import probe as probe_module

    device, mixed, alone = solved_alone
    sizes = []
    real = final_fit._fit_group
    spy = lambda g, *a: sizes.append((len(g), len(g[0].l2))) or real(g, *a)  # noqa: E731
    monkeypatch.setattr(final_fit, "_fit_group", spy)
    if run_bytes is not None:
        monkeypatch.setattr(probe_module, "group_bytes", lambda device: run_bytes)
    together = [copy.deepcopy(p) for p, _ in mixed]
    probe_module.refine_many(together, (kw for _, kw in mixed), device=device)
    grids = sorted(n for n, strengths in sizes if strengths > 1)  # then one-strength extensions
    assert grids == ([1, 2, 2, 2] if run_bytes is None else [1] * len(mixed))
    for a, b, (_, kw) in zip(alone, together, mixed, strict=True):
        ra, rb = a.record, b.record
        assert (rb.best_l2, rb.cross_validated) == (ra.best_l2, ra.cross_validated)
        assert rb.l2_searched == ra.l2_searched
        assert rb.refined
        assert rb.refined_val_loss == pytest.approx(ra.refined_val_loss, rel=1e-4)
        for wa, wb in ((a.coef_, b.coef_), (a.intercept_, b.intercept_)):
            assert np.abs(wb - wa).max() <= 1e-3 * np.abs(wa).max()
        np.testing.assert_allclose(b.predict_proba(kw["x"]), a.predict_proba(kw["x"]), atol=1e-4)
    assert len({r.record.best_l2 for r in alone}) > 1  # the choices are not all one strength
