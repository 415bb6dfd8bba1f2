"""Many probes stepped as one stack (core.engine.probe_stack) learn what each would
learn alone, and a fit mixing widths, poolings and probe kinds gives the same probes
with stacking as without it."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine.probe import LinearProbe
from lm_probe_widgets.core.engine.probe_stack import ProbeStack
from lm_probe_widgets.core.engine.states import ProbeState


def _probes(n_probes: int, dim: int, classes: int, seed: int = 0):
    """Probes with their own seeds, learning rates, L2 banks and scalers, after a
    first pass over their own data, and the data they go on with."""
    rng = np.random.default_rng(seed)
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
        x = rng.normal(rng.normal(0, 2, dim), rng.uniform(0.2, 3, dim), (64, dim))
        y = rng.integers(0, classes, 64)
        for rows in np.array_split(np.arange(32), 4):  # the first pass
            probe.scaler.update(x[rows])
            probe.step(x[rows], y[rows], 3e-3)
        probe.scaler.frozen = True
        probes.append(probe)
        data.append((x.astype(np.float32), y))
    return probes, data


@pytest.mark.parametrize("classes", [2, 3])
def test_a_stacked_step_is_each_probes_own_step(classes):
    probes, data = _probes(5, 12, classes)
    alone = copy.deepcopy(probes)
    val = (np.stack([xi for xi, _ in data]), np.stack([yi for _, yi in data]))
    stack = ProbeStack(probes, val)
    stack.refresh_scalers()
    lrs = np.array([p.config.lr for p in probes])
    rng = np.random.default_rng(1)
    for _ in range(20):
        rows = [rng.choice(64, 8, replace=False) for _ in probes]
        x = np.stack([xi[r] for (xi, _), r in zip(data, rows, strict=True)])
        y = np.stack([yi[r] for (_, yi), r in zip(data, rows, strict=True)])
        losses, bits = stack.step(x, y, lrs, code_length=True)
        val = stack.val_losses()
        for i, p in enumerate(alone):
            assert bits[i] == pytest.approx(p.code_length(x[i], y[i]), rel=1e-5)
            assert losses[i] == pytest.approx(p.step(x[i], y[i], p.config.lr), rel=1e-5)
            np.testing.assert_allclose(val[i], p.val_losses(*data[i]), rtol=1e-5)
    for stacked, single in zip(probes, alone, strict=True):
        np.testing.assert_allclose(stacked._w, single._w, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stacked._b, single._b, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stacked._adam_v[0], single._adam_v[0], rtol=1e-5, atol=1e-12)
        assert stacked._adam_t == single._adam_t == 24
        assert stacked.record.steps == single.record.steps
        assert stacked.record.examples_seen == single.record.examples_seen


def test_a_probe_dropped_from_a_stack_keeps_its_weights_and_the_rest_go_on():
    probes, data = _probes(4, 6, 2)
    alone = copy.deepcopy(probes)
    val = (np.stack([xi for xi, _ in data]), np.stack([yi for _, yi in data]))
    stack = ProbeStack(probes, val)
    stack.refresh_scalers()
    rng = np.random.default_rng(3)
    live = list(range(4))
    for step in range(12):
        if step == 5:
            stack.drop(1)  # the last member moves into row 1
            live = [0, 3, 2]
        rows = rng.choice(64, 8, replace=False)
        x = np.stack([data[i][0][rows] for i in live])
        y = np.stack([data[i][1][rows] for i in live])
        stack.step(x, y, np.full(len(live), 1e-2))
        for i in live:
            alone[i].step(data[i][0][rows], data[i][1][rows], 1e-2)
        np.testing.assert_allclose(
            stack.val_losses(), [alone[i].val_losses(*data[i]) for i in live], rtol=1e-5
        )
    assert stack.probes == [probes[i] for i in live]
    for stacked, single in zip(probes, alone, strict=True):
        np.testing.assert_allclose(stacked._w, single._w, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stacked._adam_m[0], single._adam_m[0], rtol=1e-5, atol=1e-9)
        assert stacked._adam_t == single._adam_t
    assert probes[1]._w.base is None  # its own copy, no longer a view of the stack


def _mixed_configs():
    """Two widths (hidden 32 and the MLP's 128), four poolings, two and three classes,
    two learning rates, a probe that stops early: several stacks and probes alone,
    with a stack re-formed when its early stopper leaves."""
    h = "transformer.h.{}.output"
    mlp = "transformer.h.{}.mlp.c_fc.output"
    return [
        ProbeConfig(h.format(0), [0, 1], name="h0 mean"),
        ProbeConfig(h.format(1), [0, 1], name="h1 mean", patience=8, warmup_steps=2, threshold=1.0),
        ProbeConfig(h.format(2), [0, 1], name="h2 last", pooling="last"),
        ProbeConfig(h.format(1), [0, 1], name="h1 max lr", pooling="max", lr=3e-2),
        ProbeConfig(h.format(2), [0, 1, 2], name="h2 three classes"),
        ProbeConfig(mlp.format(1), [0, 1], name="h1 mlp"),
        ProbeConfig(mlp.format(2), [0, 1], name="h2 mlp first", pooling="first"),
    ]


def _fit_mixed(tiny, stacked: bool):
    model, tok = tiny
    texts, labels = sentiment_texts(120, seed=3)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25, seed=0)
    runner = ProbeRunner(model, _mixed_configs())
    with pytest.MonkeyPatch.context() as mp:
        if not stacked:  # every probe steps alone, as before stacks existed
            mp.setattr(ProbeStack, "shape_of", staticmethod(lambda probe: None))
        runner.fit_probes(train, test, num_epoch=4, batch_size=16, progress=None, bootstrap=0)
    return runner


@pytest.mark.filterwarnings("ignore:probe 'h2 three classes'")  # class 2 has no example
def test_a_fit_of_mixed_widths_and_poolings_is_the_same_stacked_or_not(tiny):
    stacked, alone = _fit_mixed(tiny, True), _fit_mixed(tiny, False)
    early = stacked["h1 mean"]  # it leaves its stack in the second epoch
    assert early.state == ProbeState.EARLY_STOPPED and early.record.epochs_done == 1
    plan = stacked.last_plan
    assert early.record.steps > math.ceil(len(plan.train) / plan.batch_size)
    assert {p.dim for p in stacked.probes.values()} == {32, 128}
    for name, probe in stacked.probes.items():
        other = alone[name]
        assert probe.record.steps == other.record.steps
        assert probe.record.best_step == other.record.best_step
        assert probe.record.best_l2 == other.record.best_l2
        np.testing.assert_allclose(probe.coef_, other.coef_, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(probe.intercept_, other.intercept_, rtol=1e-4, atol=1e-6)
        hist_a = [h["val_loss"] for h in probe.record.history]
        hist_b = [h["val_loss"] for h in other.record.history]
        np.testing.assert_allclose(hist_a, hist_b, rtol=1e-5)
    cols = ["accuracy", "loss", "f1"]
    np.testing.assert_allclose(stacked.metrics[cols], alone.metrics[cols], rtol=1e-5)
