"""ProbePlayground's Python side: what it computes for a typed sentence, errors, snapshot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lm_probe_widgets.core.config import ProbeConfig
from lm_probe_widgets.core.engine.data import ProbeDataset
from lm_probe_widgets.core.runner import ProbeRunner
from lm_probe_widgets.display.columns import format_number
from lm_probe_widgets.widgets import ProbePlayground
from lm_probe_widgets.widgets.playground_view import HEAT_RANGE, heat_colour, layer_of, margins
from lm_probe_widgets.widgets.snapshot import WIDGET_MIME, split_bundle

FAST = {"max_steps": 12, "warmup_steps": 1, "refine": False, "cv_folds": 0, "l2": (0.1,)}
ROOT = Path(__file__).resolve().parents[1]
POS = "<i>pos</i>"  # a label with HTML in it: must stay text everywhere


def _fit(tiny, texts, labels, layers):
    model, tok = tiny
    configs = [
        ProbeConfig(f"transformer.h.{i}", name=f"h{i}.{pool}", pooling=pool, **FAST)
        for i, pool in layers
    ]
    runner = ProbeRunner(model, configs, store=False)
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=32)
    runner.fit_probes(ds, ds, num_epoch=1, batch_size=16, progress=None, bootstrap=0)
    return runner


@pytest.fixture(scope="module")
def binary(tiny, sentiment):
    texts, y = sentiment
    labels = [POS if v else "neg" for v in y[:64]]
    return _fit(tiny, texts[:64], labels, [(0, "mean"), (1, "last"), (2, "mean")])


@pytest.fixture(scope="module")
def three(tiny, sentiment):
    texts, y = sentiment
    labels = [int(v) if len(t.split()) < 9 else 2 for t, v in zip(texts[:64], y[:64], strict=True)]
    assert set(labels) == {0, 1, 2}
    return _fit(tiny, texts[:64], labels, [(1, "mean"), (2, "max")])


def _token_count(runner, text):
    return len(runner.model.tokenizer([text])["input_ids"][0])


@pytest.mark.parametrize("which", ["binary", "three"])
def test_text_updates_one_entry_per_probe_matching_predict_proba(which, request):
    runner = request.getfixturevalue(which)
    pg = ProbePlayground(runner, text="the film was great")
    assert pg.error == ""
    names = [c.name for c in runner.configs]
    assert [p["name"] for p in pg.result["probes"]] == names
    pg.text = "a dull plot and it was awful"
    assert pg.result["text"] == "a dull plot and it was awful"
    ds = ProbeDataset.from_texts([pg.text], None, runner.model.tokenizer)
    feats = runner.get_probe_features(ds)
    for entry in pg.result["probes"]:
        probe = runner.probes[entry["name"]]
        expect = probe.predict_proba(feats[entry["name"]])[0]
        assert entry["proba"] == pytest.approx(expect.tolist(), abs=1e-9)
        assert sum(entry["proba"]) == pytest.approx(1.0)
        assert entry["classes"] == [str(c) for c in probe.classes]
        assert entry["top"] == int(np.argmax(expect))
    assert pg.result["probes"][0]["layer"] == layer_of(runner.configs[0].submodule)
    state = pg.get_state()
    json.dumps({k: state[k] for k in ("text", "result", "error", "probe")}, allow_nan=False)
    if which == "three":
        assert all(len(p["classes"]) == 3 for p in pg.result["probes"])
    else:
        assert pg.result["probes"][0]["classes"] == sorted(["neg", POS])


@pytest.mark.parametrize("which", ["binary", "three"])
def test_token_heatmap_is_decision_function_on_token_features(which, request):
    runner = request.getfixturevalue(which)
    text = "the movie was superb and lovely"
    pg = ProbePlayground(runner, text=text)
    n = _token_count(runner, text)
    assert len(pg.result["tokens"]) == n
    ids = runner.model.tokenizer([text])["input_ids"][0]
    assert [t["id"] for t in pg.result["tokens"]] == list(ids)
    assert "".join(t["text"] for t in pg.result["tokens"]) == text
    ds = ProbeDataset.from_texts([text], None, runner.model.tokenizer)
    for cfg in runner.configs:
        path, kind, _pool = cfg.feature_key
        key = (path, kind, "none")
        rows = runner.features(ds, [key])[key]
        logits = runner.probes[cfg.name].decision_function(rows)
        entry = next(p for p in pg.result["probes"] if p["name"] == cfg.name)
        assert len(entry["token_logits"]) == n and len(entry["token_margin"]) == n
        assert np.allclose(entry["token_logits"], logits)
        assert np.allclose(entry["token_margin"], margins(logits))
        # a fixed range, not the sentence's own largest score
        assert entry["scale"] == [HEAT_RANGE] * len(entry["classes"])
    other = ProbePlayground(runner, text="a dull film").result["probes"][0]["scale"]
    assert other == pg.result["probes"][0]["scale"]


def test_margin_is_log_odds_for_two_classes():
    z = np.array([[0.5, 2.0], [1.0, -1.0]])
    m = margins(z)
    assert np.allclose(m[:, 1], z[:, 1] - z[:, 0]) and np.allclose(m[:, 0], -m[:, 1])
    z3 = np.array([[1.0, 2.0, 6.0]])
    assert np.allclose(margins(z3), [[1 - 4, 2 - 3.5, 6 - 1.5]])


def test_choice_of_probe_and_class(three):
    pg = ProbePlayground(three, text="it was good")
    assert pg.probe == three.configs[0].name
    entry, c = pg.chosen()
    assert entry["name"] == pg.probe and c == 2  # default: the last class
    pg.probe, pg.target = three.configs[1].name, "0"
    entry, c = pg.chosen()
    assert entry["name"] == three.configs[1].name and c == 0
    assert f"tokens ({three.configs[1].name}, toward 0)" in pg.summary()


def test_browser_typing_refreshes_the_static_copy_at_once(binary, monkeypatch):
    """The static copy is its own output (the live view is untouched by a refresh), so
    typing in the browser updates it at once, as a change from Python does."""
    pg = ProbePlayground(binary, text="the film")
    calls = []
    monkeypatch.setattr(pg, "refresh_snapshot", lambda: calls.append(pg.result["text"]))
    pg.set_state({"text": "the film was awful"})  # as the browser's debounced update
    assert pg.result["text"] == "the film was awful"
    assert calls[-1] == "the film was awful"
    pg.text = "set from Python"
    assert calls[-1] == "set from Python"


def test_snapshot_escapes_text_tokens_and_labels(binary):
    evil = '<script>alert("x")</script> <img src=x onerror=1>'
    pg = ProbePlayground(binary, text=evil)
    assert pg.error == "" and pg.result["tokens"]
    data, _meta = split_bundle(pg._repr_mimebundle_())
    assert WIDGET_MIME in data and "text/plain" in data
    page = data["text/html"]
    assert "<script>alert" not in page and "<img" not in page and "<i>pos</i>" not in page
    assert "&lt;script&gt;" in page and "&lt;i&gt;pos&lt;/i&gt;" in page
    assert 'data-lpw-kind="playground"' in page
    for p in pg.result["probes"]:
        assert f'data-probe="{p["name"]}"' in page
    assert page.count('class="lpw-snap-pg-token"') == len(pg.result["tokens"])
    assert "applied to each token" in page


def test_errors_become_a_message_not_a_crash(tiny, binary, monkeypatch):
    model, _tok = tiny
    unfitted = ProbeRunner(model, [ProbeConfig("transformer.h.0", **FAST)], store=False)
    pg = ProbePlayground(unfitted, text="the film was great")
    assert "no fitted probes" in pg.error and pg.result["probes"] == []
    assert "no fitted probes" in pg.summary()
    html = pg.snapshot_html()
    assert "no fitted probes" in html and "lpw-snap-pg-error" in html
    pg.text = "another sentence"  # still alive, still explaining
    assert "no fitted probes" in pg.error

    ok = ProbePlayground(binary, text="good")
    assert ok.error == ""

    def boom(*_a, **_k):
        raise RuntimeError("model exploded <b>")

    monkeypatch.setattr(binary, "get_probe_features", boom)
    ok.text = "great"
    assert ok.error == "RuntimeError: model exploded <b>" and ok.result["probes"] == []
    assert "model exploded &lt;b&gt;" in ok.snapshot_html()
    monkeypatch.undo()
    ok.refresh()  # the same text again, now that the runner works
    assert ok.error == "" and ok.result["text"] == "great" and len(ok.result["probes"]) == 3
    ok.text = "great film"
    assert ok.error == "" and len(ok.result["probes"]) == 3


def test_empty_text_shows_nothing_and_no_error(binary):
    pg = ProbePlayground(binary)
    assert pg.error == "" and pg.result["probes"] == [] and pg.result["tokens"] == []
    pg.text = "   "
    assert pg.error == "" and pg.result["probes"] == []
    assert "Probe playground" in pg.snapshot_html()


def test_long_text_is_truncated_and_says_so(binary):
    from lm_probe_widgets.widgets.playground_view import MAX_LENGTH

    pg = ProbePlayground(binary, text="the film was great " * 60)
    assert pg.error == "" and pg.result["truncated"] is True
    assert len(pg.result["tokens"]) == MAX_LENGTH
    assert all(len(p["token_margin"]) == MAX_LENGTH for p in pg.result["probes"])
    assert f"first {MAX_LENGTH} tokens" in pg.snapshot_html()
    pg.text = "short"
    assert pg.result["truncated"] is False


def test_layer_of():
    assert layer_of("transformer.h.3.mlp") == 3
    assert layer_of("model.layers.15") == 15
    assert layer_of("encoder.layer.2.output.dense") == 2
    assert layer_of("embed_tokens") is None


def test_class_names_and_the_best_probe_by_default(three):
    """Classes read as the dataset's names, not 0/1/2; the heatmap starts on the probe
    with the best held-out accuracy (it started on the first, often the weakest)."""
    names = {0: "negative", 1: "positive", 2: "long"}
    pg = ProbePlayground(three, text="the film was good", class_names=names)
    strip = pg.result["probes"]
    assert all(p["classes"] == ["negative", "positive", "long"] for p in strip)
    acc = three.metrics["accuracy"]
    assert pg.probe == acc.idxmax()
    listed = ProbePlayground(three, text="good", class_names=["neg", "pos", "long"])
    assert listed.result["probes"][0]["classes"] == ["neg", "pos", "long"]
    assert "positive" in pg.snapshot_html() or "negative" in pg.snapshot_html()


def test_a_regression_probe_shows_its_predicted_values(tiny, sentiment):
    """A regression probe is not an error: its cell shows the predicted value
    (`predict`), its heatmap each token's prediction minus the training targets' mean
    on a fixed range of two standard deviations, in the live result and the snapshot."""
    model, tok = tiny
    texts, _ = sentiment
    counts = [float(len(t.split())) for t in texts[:64]]
    cfg = ProbeConfig("transformer.h.1", name="words", task="regression", **FAST)
    runner = ProbeRunner(model, [cfg], store=False)
    ds = ProbeDataset.from_texts(texts[:64], counts, tok, max_length=32)
    runner.fit_probes(ds, ds, num_epoch=1, batch_size=16, progress=None, bootstrap=0)
    text = "the movie was long"
    pg = ProbePlayground(runner, text=text)
    assert pg.error == ""
    (entry,) = pg.result["probes"]
    probe = runner.probes["words"]
    one = ProbeDataset.from_texts([text], None, tok)
    pooled = runner.get_probe_features(one)["words"]
    assert entry["task"] == "regression"
    assert entry["value"] == pytest.approx(float(probe.predict(pooled)[0]))
    key = (*cfg.feature_key[:2], "none")
    per_token = probe.predict(runner.features(one, [key])[key])
    trained_on = np.asarray(runner.last_plan.train.label_values, dtype=float)
    mean, std = float(trained_on.mean()), float(trained_on.std())
    assert np.allclose([r[0] for r in entry["token_logits"]], per_token)
    assert np.allclose([r[0] for r in entry["token_margin"]], per_token - mean, atol=1e-6)
    assert entry["scale"] == [pytest.approx(2 * std, rel=1e-3)]
    value = f"predicted {format_number(entry['value'])}"
    assert value in pg.summary() and value in pg.snapshot_html()


def test_colours_are_computed_once_in_python_and_laid_out_as_given(binary):
    """Every colour the playground shows is in its result (one home: playground_view); the
    snapshot draws exactly those, and the browser code holds no colour rule of its own."""
    pg = ProbePlayground(binary, text="the film was great")
    entry, c = pg.chosen()
    assert entry is not None
    page = split_bundle(pg._repr_mimebundle_())[0]["text/html"]
    for row, margin in zip(entry["token_colours"], entry["token_margin"], strict=True):
        expected = heat_colour(margin[c], entry["scale"][c])
        assert row[c] == expected and f"background: {expected}" in page
    for p in pg.result["probes"]:
        assert p["strip_colour"].startswith("color-mix(") and p["strip_colour"] in page
        assert len(p["bar_colours"]) == len(p["classes"])
    sources = [ROOT / "js" / "playground.js", ROOT / "js" / "playground.css"]
    literal = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\(")
    for source in sources:
        text = source.read_text(encoding="utf-8")
        assert not literal.findall(text), f"{source.name}: a colour literal; compute it in Python"


def test_heat_colour_is_signed_saturating_and_blank_at_zero():
    assert heat_colour(0.0, HEAT_RANGE) == "" and heat_colour(None, HEAT_RANGE) == ""
    toward, against = heat_colour(1.0, HEAT_RANGE), heat_colour(-1.0, HEAT_RANGE)
    assert toward != against and toward and against
    assert heat_colour(HEAT_RANGE, HEAT_RANGE) == heat_colour(10 * HEAT_RANGE, HEAT_RANGE)

    def percent(colour: str) -> int:
        return int(re.search(r" (\d+)%", colour).group(1))

    shares = [0.5, 1.0, 2.0, 3.0, HEAT_RANGE]
    strengths = [percent(heat_colour(v, HEAT_RANGE)) for v in shares]
    assert strengths == sorted(strengths) and len(set(strengths)) == len(strengths)
