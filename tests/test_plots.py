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

from lm_probe_widgets.display.curve_plots import plot_training_curves  # noqa: E402
from lm_probe_widgets.display.diagnostic_plots import plot_confusion_matrix  # noqa: E402
from lm_probe_widgets.display.sweep_plot import parse_depth, plot_layer_sweep  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted() -> Any:
    from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
    from lm_probe_widgets.core.io.tiny import tiny_model

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
    assert legend == [
        "transformer.h.i · mean pooling",
        "transformer.h.i.mlp · mean pooling",
        "transformer.wte · mean pooling",
        "95% interval (bootstrap)",  # the band has its own entry
    ]
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
        "majority class (baseline)",  # the same everywhere: one flat line
        "random-init model (baseline) @ model.layers.*.output (mean)",  # one per group
        "random-init model (baseline) @ model.layers.*.output (last)",
    }
    assert list(base["majority class (baseline)"].get_ydata()) == [0.5, 0.5]  # an axhline
    for pool in ("mean", "last"):
        line = base[f"random-init model (baseline) @ model.layers.*.output ({pool})"]
        assert list(line.get_xdata()) == [0, 1, 2, 3]
        assert np.allclose(line.get_ydata(), [0.55, 0.56, 0.57, 0.58])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend.count("random-init model (baseline)") == 1
    # each baseline labelled at its right end, in its line's colour
    ends = {t.get_gid(): t for t in ax.texts if (t.get_gid() or "").startswith("baseline-")}
    assert set(ends) == {"baseline-label:majority class", "baseline-label:random-init model"}
    assert ends["baseline-label:majority class"].get_color() == (
        base["majority class (baseline)"].get_color()
    )
    # ticks at the probed layers (and -1 for the submodule without a layer index)
    assert list(ax.get_xticks()) == [-1, 0, 1, 2, 3]
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


def test_every_baseline_has_its_own_colour_and_dash() -> None:
    """Majority, bag of words, random-init and TF-IDF were all grey, two dashed and two
    dotted: 0.50 and 0.615 could not be told apart. Each now has its own look."""
    names = ["majority", "random_init", "bag_of_words", "tfidf", "length", "embeddings"]
    df = pd.DataFrame(
        {
            "submodule": [f"model.layers.{d}.output" for d in (0, 3, 6)],
            "accuracy": [0.6, 0.7, 0.8],
            **{f"baseline_{n}": [0.5 + 0.01 * k] * 3 for k, n in enumerate(names)},
        },
        index=["h[1]", "h[4]", "h[7]"],
    )
    ax = plot_layer_sweep(df)
    lines = _gid(ax, "baseline:")
    assert len(lines) == len(names)
    looks = {(str(ln.get_color()), str(ln._dash_pattern)) for ln in lines.values()}
    assert len({c for c, _ in looks}) == len(names)  # distinct colours
    assert len({d for _, d in looks}) == len(names)  # and distinct dashes
    assert all("_" not in label for label in lines)  # readable names, no snake_case
    assert list(ax.get_xticks()) == [0, 3, 6]  # the probed layers, not 0, 1, 2, ...


def test_layer_sweep_draws_the_baselines_of_the_metric_it_plots() -> None:
    """A mixed fit has baseline_<name> (accuracy) and baseline_<name>_r2 (R²) columns:
    each sweep draws the ones in its own unit, labelled without the suffix."""
    from lm_probe_widgets.display.columns import column_label

    rows = [
        {
            "probe": f"L{d}",
            "submodule": f"model.layers.{d}.output",
            "accuracy": 0.6 + 0.05 * d,
            "r2": 0.2 + 0.1 * d,
            "baseline_length": 0.55,
            "baseline_length_r2": 0.4,
        }
        for d in range(3)
    ]
    df = pd.DataFrame(rows).set_index("probe")
    acc = _gid(plot_layer_sweep(df, "accuracy"), "baseline:")
    assert {k: v.get_ydata()[0] for k, v in acc.items()} == {"length (baseline)": 0.55}
    r2 = _gid(plot_layer_sweep(df, "r2"), "baseline:")
    assert {k: v.get_ydata()[0] for k, v in r2.items()} == {"length (baseline)": 0.4}
    assert column_label("baseline_length") == "length baseline"
    assert column_label("baseline_bag_of_words_r2") == "bag of words baseline (R²)"
    plt.close("all")


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


def _boxes(ax: Any) -> tuple[Any, Any]:
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return ax.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)


def _sweep_frame(depths: list[int], pool: str = "mean", prefix: str = "h") -> pd.DataFrame:
    rows = []
    for d in depths:
        acc = 0.6 + 0.01 * d
        rows.append(
            {
                "probe": f"{prefix}[{d}]",
                "submodule": f"{prefix}[{d}]",
                "pooling": pool,
                "accuracy": acc,
                "accuracy_low": acc - 0.05,
                "accuracy_high": acc + 0.05,
                "baseline_majority": 0.5,
            }
        )
    return pd.DataFrame(rows).set_index("probe")


def test_layer_sweep_reads_well_legend_beside_and_gaps_not_joined() -> None:
    ax = plot_layer_sweep(_sweep_frame([0, 3, 6, 12, 15]))  # h[9] was never measured
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "h[i] · mean pooling",
        "majority class (baseline)",
        "95% interval (bootstrap)",
    ]
    axes_box, legend_box = _boxes(ax)
    assert legend_box.x0 >= axes_box.x1  # beside the axes: covers no data, no baseline
    (line,) = _gid(ax, "sweep:").values()
    x = line.get_xdata()
    assert np.isnan(x).sum() == 1 and list(x[:3]) == [0, 3, 6] and list(x[-2:]) == [12, 15]
    # two layers far apart, nothing measured between: points, no line
    two = plot_layer_sweep(_sweep_frame([14, 29], pool="last", prefix="model.layers."))
    (pts,) = _gid(two, "sweep:").values()
    assert pts.get_linestyle() == "None" and pts.get_marker() == "o"
    # a dotted reference line of your own, listed in the legend
    ref = plot_layer_sweep(_sweep_frame([0, 1, 2]), references={"input embeddings": 0.6})
    assert "input embeddings" in [t.get_text() for t in ref.get_legend().get_texts()]


def test_plots_are_transparent_for_dark_themes(fitted: Any) -> None:
    import io

    from matplotlib.image import imread

    runner, test = fitted
    for ax in (
        runner.plot_layer_sweep(),
        runner.plot_training_curves(),
        runner.plot_confusion_matrix("transformer.h.1.output", test),
    ):
        fig = ax.figure
        assert fig.patch.get_alpha() == 0.0 and ax.patch.get_alpha() == 0.0
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # what the inline backend does
        buf.seek(0)
        png = imread(buf)
        assert png.shape[2] == 4 and png[0, 0, 3] == 0.0  # no white block around the plot
        legend = ax.get_legend()
        assert legend is None or not legend.get_frame_on()


def test_roc_auc_sweep_on_a_multiclass_runner(fitted: Any) -> None:
    runner, _ = fitted
    assert len(runner.configs[0].classes) == 3
    if runner.metrics["roc_auc"].notna().any():  # the core computes one-vs-rest macro AUC
        ax = runner.plot_layer_sweep("roc_auc")
        assert ax.get_ylabel() == "roc_auc"
    df = runner.metrics.assign(roc_auc=math.nan)
    with pytest.raises(ValueError) as err:
        plot_layer_sweep(df, "roc_auc")
    assert "eval_set" not in str(err.value)  # there are held-out metrics: not that advice


class _Rec:
    def __init__(self, k: int) -> None:
        steps = list(range(1, 41))
        self.history = [{"step": s, "val_loss": 1 / (s + k)} for s in steps]
        self.best_step, self.state, self.steps = 40, "finished", 40
        self.refined, self.refined_val_loss = True, 0.5 / (40 + k)


class _Probe:
    def __init__(self, k: int) -> None:
        self.record = _Rec(k)


def test_training_curves_many_probes_distinct_colours_end_at_kept_weights() -> None:
    probes = {f"model.layers.{k}.output": _Probe(k) for k in range(30)}
    ax = plot_training_curves(probes)
    curves = _gid(ax, "curve:")
    colours = {tuple(line.get_color()) for line in curves.values()}
    assert len(curves) == 30 and len(colours) == 30
    kept = _gid(ax, "kept:")
    assert set(kept) == set(probes)
    name = "model.layers.3.output"
    assert kept[name].get_xdata()[0] == 40
    assert np.isclose(kept[name].get_ydata()[0], probes[name].record.refined_val_loss)
    axes_box, legend_box = _boxes(ax)
    assert legend_box.x0 >= axes_box.x1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "kept weights (final fit)" in labels


NAMES = ["enthusiastic", "positive", "neutral", "negative", "furious"]


def test_confusion_matrix_labels_fit_for_five_classes() -> None:
    class FakeRunner:
        def __init__(self) -> None:
            from types import SimpleNamespace

            cfg = SimpleNamespace(
                name="p", classes=NAMES, token_level=False, null_label=-100, task=None
            )
            self.probe = SimpleNamespace(
                config=cfg,
                encode=lambda y: np.asarray([NAMES.index(v) for v in y]),
                predict=lambda x: np.asarray(NAMES)[np.asarray(x)[:, 0].astype(int)],
            )

        def __getitem__(self, name: str) -> Any:
            return self.probe

        def get_probe_features(self, dataset: Any, subset: Any, batch_size: int) -> Any:
            return {subset[0]: np.array([[i % 5] for i in range(50)])}

    truth = np.asarray(NAMES)[[(i + i // 7) % 5 for i in range(50)]]
    dataset = type("D", (), {"has_labels": True, "label_values": truth, "label_names": None})()
    ax = plot_confusion_matrix(FakeRunner(), "p", dataset)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = ax.get_xticklabels()
    assert all(t.get_rotation() == 40 for t in ticks)
    boxes = [t.get_window_extent(renderer) for t in ticks]
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert not a.overlaps(b) or a.x1 <= b.x0 + 1  # neighbours do not overlap
    assert fig.get_figwidth() > 4.2  # grows with the classes


def test_plot_style_keeps_changes_a_backend_makes_meanwhile() -> None:
    """The inline backend turns interactive mode on when the first figure of a kernel
    activates it, inside our style; undoing that hid every later figure (lesson)."""
    from lm_probe_widgets.display.plot_style import STYLE, plot_style

    before = matplotlib.is_interactive()
    colour = matplotlib.rcParams["text.color"]
    try:
        matplotlib.interactive(False)
        with plot_style():
            assert matplotlib.rcParams["text.color"] == STYLE["text.color"]
            matplotlib.interactive(True)  # what backend_inline does on activation
        assert matplotlib.is_interactive()
        assert matplotlib.rcParams["text.color"] == colour  # our look does not leak
    finally:
        matplotlib.interactive(before)


def test_cli_report_draws_the_sweep_on_the_tables_h_i() -> None:
    """The CLI's table says h0, h5, ...; its plot used the submodules' block indices
    (embeddings at -1 "no layer index", h5 at 4). Now both use h[i]."""
    from matplotlib.figure import Figure

    from lm_probe_widgets.cli.report import _draw_sweep, sweep_frame

    names = ["h0", "h5", "h10"]
    subs = ["model.embed_tokens.output", "model.layers.4.output", "model.layers.9.output"]
    df = pd.DataFrame({"submodule": subs, "accuracy": [0.6, 0.7, 0.8]}, index=names)
    frame, numbered = sweep_frame(df)
    assert numbered and list(frame["submodule"]) == ["h[0]", "h[5]", "h[10]"]
    ax = Figure().add_subplot()
    _draw_sweep(ax, df)
    (line,) = _gid(ax, "sweep:").values()
    assert list(line.get_xdata()) == [0, 5, 10] and _gid(ax, "loose:") == {}
    assert list(ax.get_xticks()) == [0, 5, 10] and "h[i]" in ax.get_xlabel()
    perfect = df.assign(accuracy=[0.9, 1.0, 1.0])
    ax2 = Figure().add_subplot()
    _draw_sweep(ax2, perfect)
    assert 1.0 <= ax2.get_ylim()[1] <= 1.01  # the axis does not run above 1.0
    named = df.rename(index={"h5": "mid"})  # names of one's own: the submodules' depths
    assert sweep_frame(named)[1] is False


def test_the_band_legend_swatch_matches_a_single_band() -> None:
    """One series: the interval's legend swatch is its band's colour (a grey swatch all
    but vanished on a dark page); several series: one neutral swatch for all."""
    from matplotlib.colors import to_rgb

    from lm_probe_widgets.display.plot_style import INK

    def swatch(ax: Any) -> Any:
        legend = ax.get_legend()
        texts = [t.get_text() for t in legend.get_texts()]
        return legend.legend_handles[texts.index("95% interval (bootstrap)")].get_facecolor()

    ax = plot_layer_sweep(_sweep_frame([0, 3, 6]), "accuracy")
    (line,) = [ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("sweep:")]
    assert np.allclose(swatch(ax)[:3], to_rgb(line.get_color()))
    both = pd.concat([_sweep_frame([0, 3, 6]), _sweep_frame([0, 3, 6], prefix="g")])
    assert np.allclose(swatch(plot_layer_sweep(both, "accuracy"))[:3], to_rgb(INK))
