"""matplotlib plots: layer sweep, training curves, confusion matrix (Agg, no show).

Assertions read the Axes back: which lines exist, their x/y data, bands, markers.
"""

from __future__ import annotations

import math
import random
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lm_probe_widgets.display.plots import (  # noqa: E402
    parse_depth,
    plot_layer_sweep,
    plot_training_curves,
)


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted() -> Any:
    from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
    from lm_probe_widgets.core.tiny import tiny_model

    model, tok = tiny_model("gpt2")
    rng = random.Random(1)
    texts, labels = [], []
    for i in range(60):
        y = i % 3
        words = [["good", "great"], ["bad", "awful"], ["table", "chair"]][y]
        texts.append(" ".join(rng.choice(words) for _ in range(5)))
        labels.append(y)
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=12)
    train, test = ds.tt_split(test_size=0.25, seed=0)
    configs = [ProbeConfig(f"transformer.h.{i}.output", classes=[0, 1, 2]) for i in range(3)]
    configs += [
        ProbeConfig("transformer.h.1.mlp.output", classes=[0, 1, 2]),
        ProbeConfig("transformer.wte.output", classes=[0, 1, 2], name="embeddings"),
        ProbeConfig(
            "transformer.h.2.output",
            classes=[0, 1, 2],
            name="early",
            threshold=0.3,
            patience=2,
            warmup_steps=2,
        ),
    ]
    runner = ProbeRunner(model, configs)
    runner.fit_probes(train, test, num_epoch=3, batch_size=8, progress=None)
    return runner, test


def _gid(ax: Any, prefix: str) -> dict[str, Any]:
    arts = list(ax.lines) + list(ax.collections)
    return {a.get_gid()[len(prefix) :]: a for a in arts if (a.get_gid() or "").startswith(prefix)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.layers.12.output", ("model.layers.*.output", 12)),
        ("transformer.h.3.mlp.output", ("transformer.h.*.mlp.output", 3)),
        ("h[7].attn", ("h[*].attn", 7)),
        ("0.output", ("*.output", 0)),
        ("model.embed_tokens.output", ("model.embed_tokens.output", None)),
        ("transformer.h12x.output", ("transformer.h12x.output", None)),
        ("model.layers.3.experts.2.output", ("model.layers.*.experts.2.output", 3)),
    ],
)
def test_parse_depth(name: str, expected: tuple[str, int | None]) -> None:
    assert parse_depth(name) == expected


def test_layer_sweep_from_runner(fitted: Any) -> None:
    runner, _ = fitted
    ax = runner.plot_layer_sweep()  # accuracy by default
    df = runner.metrics
    lines = _gid(ax, "sweep:")
    assert set(lines) == {"transformer.h.*.output", "transformer.h.*.mlp.output"}
    main = lines["transformer.h.*.output"]
    x, y = main.get_data()
    # depths 0, 1, 2 and 2 again (the "early" probe reads h.2 too), sorted by depth
    assert list(x) == [0, 1, 2, 2]
    acc = {n: df.loc[n, "accuracy"] for n in df.index}
    assert sorted(y[:2]) == sorted([acc["transformer.h.0.output"], acc["transformer.h.1.output"]])
    assert list(lines["transformer.h.*.mlp.output"].get_data()[0]) == [1]
    loose = _gid(ax, "loose:")
    assert list(loose) == ["transformer.wte.output (mean)"]
    assert loose["transformer.wte.output (mean)"].get_xdata()[0] == -1
    assert ax.get_ylabel() == "accuracy"
    assert "no layer index" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "transformer.h.*.output" in legend
    assert ax.figure is not None  # users restyle via ax.figure


def test_layer_sweep_bands_baselines_and_poolings() -> None:
    """A metrics frame as the bootstrap and baselines features produce it."""
    rows = []
    for pool in ("mean", "last"):
        for d in range(4):
            acc = 0.6 + 0.1 * d + (0.05 if pool == "last" else 0)
            rows.append(
                {
                    "probe": f"L{d}-{pool}",
                    "submodule": f"model.layers.{d}.output",
                    "pooling": pool,
                    "accuracy": acc,
                    "accuracy_low": acc - 0.05,
                    "accuracy_high": acc + 0.04,
                    "baseline_majority": 0.5,
                    "baseline_random_init": 0.55 + 0.01 * d,
                }
            )
    rows.append(
        {
            "probe": "emb",
            "submodule": "model.embed_tokens.output",
            "pooling": "mean",
            "accuracy": 0.58,
            "accuracy_low": 0.5,
            "accuracy_high": 0.62,
            "baseline_majority": 0.5,
            "baseline_random_init": math.nan,
        }
    )
    df = pd.DataFrame(rows).set_index("probe")
    fig, ax0 = plt.subplots()
    ax = plot_layer_sweep(df, ax=ax0, baselines="auto")
    assert ax is ax0
    lines = _gid(ax, "sweep:")
    assert set(lines) == {"model.layers.*.output (mean)", "model.layers.*.output (last)"}
    bands = _gid(ax, "band:")
    assert set(bands) == set(lines)
    # the band spans exactly [low, high] of the mean-pooled rows
    verts = bands["model.layers.*.output (mean)"].get_paths()[0].vertices
    assert np.isclose(verts[:, 1].min(), 0.55) and np.isclose(verts[:, 1].max(), 0.94)
    base = _gid(ax, "baseline:")
    assert set(base) == {
        "majority baseline",  # the same everywhere: one flat line
        "random_init baseline @ model.layers.*.output (mean)",  # per depth: one per group
        "random_init baseline @ model.layers.*.output (last)",
    }
    assert list(base["majority baseline"].get_ydata()) == [0.5, 0.5]  # an axhline
    for pool in ("mean", "last"):
        line = base[f"random_init baseline @ model.layers.*.output ({pool})"]
        assert list(line.get_xdata()) == [0, 1, 2, 3]
        assert np.allclose(line.get_ydata(), [0.55, 0.56, 0.57, 0.58])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend.count("random_init baseline") == 1
    (emb,) = _gid(ax, "loose:").values()
    assert emb.get_xdata()[0] == -1 and emb.get_ydata()[0] == 0.58
    # explicit baselines
    ax2 = plot_layer_sweep(df, baselines={"chance": 0.5, "paper": 0.9})
    assert {k: v.get_ydata()[0] for k, v in _gid(ax2, "baseline:").items()} == {
        "chance": 0.5,
        "paper": 0.9,
    }
    ax3 = plot_layer_sweep(df, ci=False, baselines=None)
    assert _gid(ax3, "band:") == {} and _gid(ax3, "baseline:") == {}


def test_layer_sweep_errors(fitted: Any) -> None:
    runner, _ = fitted
    with pytest.raises(ValueError, match="no column 'acc'"):
        plot_layer_sweep(runner, "acc")
    df = pd.DataFrame({"submodule": ["a.0.output"], "accuracy": [math.nan]}, index=["a"])
    with pytest.raises(ValueError, match="no values yet"):
        plot_layer_sweep(df)
    with pytest.raises(TypeError):
        plot_layer_sweep([1, 2, 3])


def test_training_curves(fitted: Any) -> None:
    runner, _ = fitted
    ax = runner.plot_training_curves()
    curves = _gid(ax, "curve:")
    assert set(curves) == set(runner.probes)
    for name, line in curves.items():
        rec = runner[name].record
        x, y = line.get_data()
        assert list(x) == [h["step"] for h in rec.history]
        assert np.allclose(y, [h["val_loss"] for h in rec.history])
    best = _gid(ax, "best:")
    for name, m in best.items():
        rec = runner[name].record
        assert m.get_xdata()[0] == rec.best_step
        assert np.isclose(m.get_ydata()[0], rec.best_val_loss)
        assert m.get_marker() == "*"
    assert set(best) == set(runner.probes)
    stops = _gid(ax, "stop:")
    early = {n for n, p in runner.probes.items() if p.state == "early-stopped"}
    assert "early" in early and set(stops) == early
    assert stops["early"].get_xdata()[0] == runner["early"].record.steps
    assert ax.get_xlabel() == "step"
    # subset, single probe, unknown name
    ax2 = plot_training_curves(runner, probes=["early"], logy=True)
    assert set(_gid(ax2, "curve:")) == {"early"} and ax2.get_yscale() == "log"
    assert set(_gid(plot_training_curves(runner["embeddings"]), "curve:")) == {"embeddings"}
    with pytest.raises(KeyError, match="nope"):
        plot_training_curves(runner, probes=["nope"])


def test_confusion_matrix(fitted: Any) -> None:
    runner, test = fitted
    ax = runner.plot_confusion_matrix("transformer.h.1.output", test)
    (im,) = ax.get_images()
    cm = np.asarray(im.get_array())
    assert cm.shape == (3, 3) and cm.sum() == len(test)
    probe = runner["transformer.h.1.output"]
    x = runner.get_probe_features(test, subset=[probe.name])[probe.name]
    pred = probe.predict(x)
    expected = np.zeros((3, 3))
    for t, p in zip(test.labels, pred, strict=True):
        expected[t, p] += 1
    assert np.array_equal(cm, expected)
    texts = sorted(int(t.get_text()) for t in ax.texts)
    assert texts == sorted(expected.astype(int).ravel().tolist())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    axn = runner.plot_confusion_matrix("transformer.h.1.output", test, normalize="true")
    rows = np.asarray(axn.get_images()[0].get_array()).sum(1)
    assert np.allclose(rows[expected.sum(1) > 0], 1.0)
    with pytest.raises(ValueError, match="normalize"):
        runner.plot_confusion_matrix("transformer.h.1.output", test, normalize="rows")
    with pytest.raises(KeyError):
        runner.plot_confusion_matrix("missing", test)
