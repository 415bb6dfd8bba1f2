"""Concept erasure (core.methods.erasure): LEACE from the package removes a planted
linear concept and nothing else, the runner's eraser re-probes at chance, the traced
intervention edits only its site, erasers round-trip without pickle, and bad input is
refused before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.core.methods.compare import VERDICTS, Outcomes, compare_outcomes
from lm_probe_widgets.core.methods.erasure import ConceptEraser, eraser_from_features

SITE = "transformer.h.1.output"


@pytest.fixture(scope="module")
def fitted(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=32)
    train, test = ds.tt_split(test_size=0.25, seed=0)
    runner = ProbeRunner(model, [ProbeConfig(SITE, [0, 1], name="h1")])
    runner.fit_probes(train, test, num_epoch=2, batch_size=32, progress=None, bootstrap=0)
    return runner, texts, labels


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    direction = rng.standard_normal(12)
    x = rng.standard_normal((n, 12)) @ rng.standard_normal((12, 12)) + 3.0 * np.outer(y, direction)
    return x, y, direction


def _chance_verdict(train_x, train_y, test_x, test_y) -> str:
    from sklearn.linear_model import LogisticRegression

    pred = LogisticRegression(max_iter=2000).fit(train_x, train_y).predict(test_x)
    clusters = np.arange(len(test_y))
    zeros = np.zeros(len(test_y))
    probe = Outcomes("accuracy", (pred == test_y).astype(float), zeros, clusters)
    majority = Outcomes("accuracy", (test_y == 0).astype(float), zeros, clusters)
    return compare_outcomes(probe, majority, "probe", "majority").verdict


def test_leace_erases_a_planted_linear_concept_and_nothing_else():
    x, y, _ = _planted(600, 0)
    xt, yt, _ = _planted(200, 1)  # held-out rows: the same concept, other noise
    eraser = eraser_from_features(x, y)
    assert eraser.method == "leace" and eraser.rank == 1
    assert _chance_verdict(x, y, xt, yt) == "beats"  # the concept is there before
    erased = eraser.apply(x)
    assert _chance_verdict(erased, y, eraser.apply(xt), yt) == "ties"  # at chance after
    # LEACE's guarantee on its fit data: no covariance left with the concept
    cov = (erased - erased.mean(0)).T @ (y - y.mean()) / len(y)
    assert np.abs(cov).max() < 1e-8 * np.abs(x).max()
    # everything outside the removed direction is untouched (to float rounding)
    q, _ = np.linalg.qr(np.concatenate([eraser.left, np.eye(12)], axis=1))
    rest = q[:, 1:]
    np.testing.assert_allclose(erased @ rest, x @ rest, atol=1e-4)
    # torch in, torch out: the same map
    torch_out = eraser.apply(torch.as_tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(torch_out, erased, rtol=1e-4, atol=1e-3)


def test_runner_eraser_reprobes_at_chance_and_inlp_random_differ(fitted):
    runner, _, _ = fitted
    leace = runner.erase("h1")
    assert (leace.probe, leace.submodule, leace.rank) == ("h1", SITE, 1)
    report = leace.report()
    assert report.loc["linear re-probe (clean)", "verdict"] == "beats"
    assert report.loc["linear re-probe (erased)", "verdict"] == "ties"
    # the limit of linear erasure: a non-linear probe still reads the concept
    assert report.loc["mlp re-probe (erased)", "verdict"] == "beats"
    assert set(report["verdict"]) <= set(VERDICTS)
    inlp = runner.erase("h1", "inlp", rank=3)
    assert inlp.rank == 3
    np.testing.assert_allclose(inlp.left.T @ inlp.left, np.eye(3), atol=1e-5)
    # a random subspace of the same rank leaves the concept readable: the null
    random = runner.erase("h1", "random", rank=1, seed=1)
    reprobe = random.report(mlp=False)
    assert reprobe.loc["linear re-probe (erased)", "verdict"] == "beats"
    text = repr(leace)
    assert "leace" in text and "rank 1 of width 32" in text


def test_intervention_changes_outputs_only_from_its_site(fitted, tiny):
    runner, texts, _ = fitted
    model, _ = tiny
    eraser = runner.erase("h1")
    seen: dict[str, list[torch.Tensor]] = {}
    blocks = dict(model._module.named_modules())

    def record(i):
        def hook(_module, _args, out):
            seen.setdefault(f"h{i}", []).append((out[0] if isinstance(out, tuple) else out).clone())

        return hook

    with eraser.intervene(model, positions="all") as run:
        hooks = [blocks[f"transformer.h.{i}"].register_forward_hook(record(i)) for i in range(3)]
        try:
            h_clean, out_clean = run(texts[:4], erase=False)
            h_erased, out_erased = run(texts[:4])
        finally:
            for h in hooks:
                h.remove()
    assert all(len(v) == 2 for v in seen.values())
    before, site, after = (seen[f"h{i}"] for i in range(3))
    assert torch.equal(before[0], before[1])  # upstream of the site: identical
    assert not torch.equal(site[0], site[1]) and not torch.equal(after[0], after[1])
    assert not torch.equal(out_clean.logits, out_erased.logits)
    # what the model went on with is the eraser applied to the clean activation
    enc = model.tokenizer(texts[:4], padding=True, return_tensors="pt")
    real = enc["attention_mask"].bool()
    expected = eraser.apply(h_clean)
    torch.testing.assert_close(h_erased[real], expected[real], rtol=1e-4, atol=1e-5)


def test_effects_against_random_subspaces(fitted):
    runner, texts, labels = fitted
    eraser = runner.erase("h1")
    df = eraser.effects(
        texts[:12], labels=labels[:12], positive=[" good"], negative=[" bad"], n_random=5
    )
    assert list(df.index) == ["kl", "log_odds_shift", "aligned_shift", "readout_accuracy"]
    assert (df["band_low"] <= df["band_high"]).all()
    assert df.loc["kl", "value"] > 0 and set(df["verdict"]) <= set(VERDICTS)
    assert (df["n_texts"] == 12).all() and df.attrs["rank"] == 1


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    runner, _, _ = fitted
    eraser = runner.erase("h1")
    path = tmp_path / "h1.safetensors"
    eraser.save(path)
    back = ConceptEraser.load(path, runner)
    assert (back.probe, back.submodule, back.method, back.classes) == (
        "h1",
        SITE,
        "leace",
        eraser.classes,
    )
    x = np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32)
    np.testing.assert_array_equal(back.apply(x), eraser.apply(x))
    runner.save(str(tmp_path / "runner.safetensors"))  # a safetensors file, not an eraser
    with pytest.raises(ProbeError, match="not a saved lm_probe_widgets eraser"):
        ConceptEraser.load(tmp_path / "runner.safetensors")
    with pytest.raises(ProbeError, match="no saved eraser"):
        ConceptEraser.load(tmp_path / "missing.safetensors")


def test_bad_input_is_refused_early(fitted, tiny):
    runner, texts, _ = fitted
    model, _ = tiny
    with pytest.raises(ProbeError, match="no fitted probe 'h9'.*known probes"):
        runner.erase("h9")
    unfitted = runner.sibling()
    with pytest.raises(ProbeError, match="fit the runner first"):
        unfitted.erase("h1")
    with pytest.raises(ProbeError, match="rank must be between 1 and 31"):
        runner.erase("h1", "random", rank=33)
    with pytest.raises(ProbeError, match="rank must be an integer"):
        runner.erase("h1", "inlp", rank=1.5)
    with pytest.raises(ProbeError, match="method must be one of"):
        runner.erase("h1", "pca")
    with pytest.raises(ProbeError, match="method must be one of"):
        eraser_from_features(np.zeros((4, 3)), np.array([0, 1, 0, 1]), "pca")
    with pytest.raises(ProbeError, match="leave rank=None"):
        runner.erase("h1", rank=2)
    with pytest.raises(ProbeError, match="needs rank="):
        runner.erase("h1", "random")
    eraser = runner.erase("h1")
    with pytest.raises(ProbeError, match="width 32"):
        eraser.apply(np.zeros((2, 31)))
    with pytest.raises(ProbeError, match="positions must be"):
        eraser.effects(texts[:3], positions="first")
    with pytest.raises(ProbeError, match="n_random must be at least"):
        eraser.effects(texts[:3], n_random=2)
    with pytest.raises(ProbeError, match="both positive= and negative="):
        eraser.effects(texts[:3], positive=[" good"])
    with pytest.raises(ProbeError, match="labels must be 3 values"):
        eraser.effects(texts[:3], labels=[0, 1], positive=[" good"], negative=[" bad"])
    other = eraser_from_features(*_planted(40, 0)[:2])  # width 12, not the site's 32
    other.submodule = SITE
    with pytest.raises(ProbeError, match="fitted for width 12.*has width 32"):
        with other.intervene(model):
            pass
    with pytest.raises(ProbeError, match="has no site"):
        eraser_from_features(*_planted(40, 0)[:2]).effects(texts[:3], model=model)
    with pytest.raises(ProbeError, match="labels must be class indices"):
        eraser_from_features(np.zeros((4, 3)), np.array([0.5, 1, 0, 1]))


@settings(max_examples=15, derandomize=True)
@given(
    method=st.sampled_from(["leace", "inlp", "random"]),
    seed=st.integers(0, 2**16),
    strength=st.floats(0.5, 5.0),
)
def test_erasing_twice_is_erasing_once(method, seed, strength):
    """Each eraser is a projection about its mean (LEACE too, where its covariance-trace
    guard does not act, as on isotropic noise): a second pass removes nothing more."""
    rng = np.random.default_rng(seed)
    y = np.arange(120) % 2
    x = rng.standard_normal((120, 8)) + strength * np.outer(y, rng.standard_normal(8))
    eraser = eraser_from_features(x, y, method, rank=None if method == "leace" else 2, seed=seed)
    once = eraser.apply(x)
    np.testing.assert_allclose(eraser.apply(once), once, atol=1e-6 * np.abs(x).max())


def test_html_repr_escapes_every_string():
    eraser = eraser_from_features(*_planted(40, 0)[:2])
    eraser.probe, eraser.submodule = "<b>probe</b>", "h.<script>alert(1)</script>"
    eraser.classes = ["<neg>", "pos & more"]
    page = eraser._repr_html_()
    assert "<script>" not in page and "<b>probe" not in page and "<neg>" not in page
    assert "&lt;script&gt;" in page and "pos &amp; more" in page
