"""Bad input as a careful user gives it (issue 26): each case gets a clear error that
says what to do, or the behaviour it names; none reaches the model or a traceback
from inside a library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.io.tiny import tiny_tokenizer

TEXTS = ["a good film", "a bad film", "great acting", "dull plot"]


# ------------------------------------------------------------------ missing labels


@pytest.mark.parametrize(
    "labels",
    [
        pd.Series(["pos", np.nan, "neg", "pos"]),  # a pandas string column with a gap
        ["pos", None, "neg", "pos"],
        [1, 0, None, 1],  # ints next to a None
        pd.array(["pos", pd.NA, "neg", "pos"], dtype="string"),
        pd.array([1, pd.NA, 0, 1], dtype="Int64"),
    ],
    ids=["pandas-nan", "none-str", "none-int", "pandas-string-na", "pandas-Int64-na"],
)
def test_missing_labels_are_refused_never_a_class(labels):
    tok = tiny_tokenizer()
    with pytest.raises(ProbeError, match=r"1 of 4 labels are missing.*drop those examples"):
        ProbeDataset.from_texts(TEXTS, labels, tok)
    ids = tok(TEXTS)["input_ids"]
    with pytest.raises(ProbeError, match="labels are missing"):
        ProbeDataset(ids, labels=labels)


def test_numbers_behind_an_object_dtype_stay_numbers():
    ds = ProbeDataset.from_texts(TEXTS, pd.Series([1, 0, 1, 0], dtype=object), tiny_tokenizer())
    assert ds.label_names is None and ds.labels.tolist() == [1, 0, 1, 0]


def test_float_nan_labels_say_which_examples():
    with pytest.raises(ProbeError, match=r"1 of 4 labels are missing or not finite.*\[2\]"):
        ProbeDataset.from_texts(TEXTS, [1.0, 0.0, np.nan, 1.0], tiny_tokenizer())


# ------------------------------------------------------------------ label spaces


SITE = "transformer.h.1.output"
FIT = dict(num_epoch=1, batch_size=16, progress=None, bootstrap=0)


def test_classes_come_from_all_the_training_data_before_the_validation_split(tiny, sentiment):
    """20 classes of 2 examples each: the validation split takes some classes' only
    training copy, yet every class is the probe's (none 'not in classes')."""
    model, tok = tiny
    texts, _ = sentiment
    labels = [f"c{i % 20}" for i in range(40)]
    ds = ProbeDataset.from_texts(texts[:40], labels, tok)
    runner = ProbeRunner(model, ProbeConfig(SITE))
    runner.fit_probes(ds, **FIT, validation_size=0.3)
    assert len(runner.configs[0].classes) == 20
    assert len(np.unique(runner.train_part.labels)) < 20  # the split took some classes


def test_a_refit_on_other_labels_says_to_use_a_new_runner(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    ints = ProbeDataset.from_texts(texts[:40], labels[:40], tok)
    names = ProbeDataset.from_texts(texts[:40], np.where(labels[:40], "pos", "neg"), tok)
    runner = ProbeRunner(model, ProbeConfig(SITE))  # classes=None, as the message advised
    runner.fit_probes(ints, **FIT)
    with pytest.raises(ProbeError) as err:
        runner.fit_probes(names, **FIT)
    assert "new ProbeRunner" in str(err.value) and "leave classes out" not in str(err.value)
    ProbeRunner(model, ProbeConfig(SITE)).fit_probes(names, **FIT)  # as it says


def test_boolean_labels_predict_booleans(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:60], labels[:60].astype(bool), tok).tt_split(0.25)
    runner = ProbeRunner(model, ProbeConfig(SITE)).fit_probes(train, test, control=True, **FIT)
    assert runner.configs[0].classes == (False, True)
    preds = runner[SITE].predict(runner.get_probe_features(test)[SITE])
    assert all(type(p) in (bool, np.bool_) for p in preds)
    assert runner.metrics["control_accuracy"].notna().all()
    assert (
        ProbeDataset.from_texts(
            TEXTS, [True, False, True, False], tiny_tokenizer()
        ).label_values.dtype
        == bool
    )


# ------------------------------------------------------------------ splits


@pytest.mark.parametrize("bad", [True, np.bool_(True), 0, 4, 1.0, 0.0, "0.2", None])
def test_tt_split_refuses_what_is_neither_a_fraction_nor_a_count(bad):
    ds = ProbeDataset.from_texts(TEXTS, [0, 1, 0, 1], tiny_tokenizer())
    with pytest.raises(ProbeError, match="test_size must be a fraction in \\(0, 1\\) or a count"):
        ds.tt_split(test_size=bad)


def test_tt_split_takes_numpy_ints_as_counts(sentiment):
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts[:120], labels[:120], tiny_tokenizer())
    train, test = ds.tt_split(test_size=np.int64(5))
    assert (len(train), len(test)) == (115, 5)


def test_a_grouped_split_far_from_the_asked_size_says_so(sentiment):
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts[:120], labels[:120], tiny_tokenizer())
    groups = ["big"] * 119 + ["small"]  # the test side can only be 1 example (or 119)
    with pytest.warns(UserWarning, match=r"test set holds 1 of 120 examples \(1%\).*0\.25"):
        ds.tt_split(test_size=0.25, groups=groups)


@pytest.mark.parametrize("container", [list, np.array, pd.Series])
def test_missing_group_ids_are_refused_in_any_container(sentiment, container):
    texts, labels = sentiment
    ds = ProbeDataset.from_texts(texts[:120], labels[:120], tiny_tokenizer())
    groups = container([float(i % 10) for i in range(119)] + [np.nan])
    with pytest.raises(ProbeError, match=r"1 group ids are missing.*\[119\]"):
        ds.tt_split(test_size=0.25, groups=groups)


# ------------------------------------------------------------------ texts


def test_a_lone_surrogate_names_its_text():
    with pytest.raises(ProbeError, match=r"text 2 holds '\\ud800' at character 4"):
        ProbeDataset.from_texts(["ok", "fine", "bad \ud800 text"], None, tiny_tokenizer())
    with pytest.raises(ProbeError, match="text 1 is NoneType"):
        ProbeDataset.from_texts(["ok", None], None, tiny_tokenizer())


# ------------------------------------------------------------------ seeds


@pytest.fixture(scope="module")
def fitted(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts[:60], labels[:60], tok).tt_split(0.25)
    return ProbeRunner(model, ProbeConfig(SITE)).fit_probes(train, test, **FIT), train, test


@pytest.mark.parametrize(
    "seeds, message",
    [
        ([], "at least 2 distinct seeds"),
        (2.5, "a count \\(2 or more\\) or a list"),
        ([1, 1], "at least 2 distinct seeds"),
        ([1, 2, 1], "lists a seed twice"),
        ([0, 2**64], "between 0 and 2\\*\\*32 - 1"),
        ([0, 1.5], "seeds must be integers"),
        (1, "at least 2"),
    ],
)
def test_stability_refuses_seeds_that_give_no_spread(fitted, seeds, message):
    runner, _, _ = fitted
    with pytest.raises(ProbeError, match=message):
        runner.stability(seeds)


def test_a_seed_too_large_for_numpy_is_a_clear_error(fitted):
    runner, train, test = fitted
    with pytest.raises(ProbeError, match="seed must be between 0 and 2\\*\\*32 - 1"):
        runner.fit_probes(train, test, **{**FIT, "num_epoch": 1}, seed=2**64)
    with pytest.raises(ProbeError, match="stability sets each refit's seed"):
        runner.stability(2, seed=3)


@pytest.mark.parametrize("size", [0, 0.0, 1.0, True, -0.1])
def test_validation_size_is_named_in_its_own_error(fitted, size):
    runner, train, test = fitted
    with pytest.raises(ProbeError, match=r"validation_size must be a fraction"):
        runner.fit_probes(train, test, **FIT, validation_size=size)


# ------------------------------------------------------------------ regression targets


def test_targets_too_large_to_square_are_refused_with_the_fix():
    with pytest.raises(ProbeError, match=r"labels reach 3e\+200.*rescale them"):
        ProbeDataset.from_texts(TEXTS, [1e200, -3e200, 2e200, 0.5], tiny_tokenizer())


def test_huge_whole_number_targets_are_targets_not_class_ids():
    """1e20 * k has no fraction, but is no class id (int64 ends at 9.2e18)."""
    ds = ProbeDataset.from_texts(TEXTS, [1e20, 3e20, 2e20, 5e20], tiny_tokenizer())
    assert ds.labels.dtype == np.float64 and ds.labels.tolist() == [1e20, 3e20, 2e20, 5e20]


def test_large_targets_fit_to_finite_metrics(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    y = (labels[:60] + np.linspace(0, 1, 60)) * 1e100
    train, test = ProbeDataset.from_texts(texts[:60], y, tok).tt_split(0.25)
    runner = ProbeRunner(model, ProbeConfig(SITE, task="regression"))
    runner.fit_probes(train, test, **FIT)
    assert np.isfinite(runner.metrics[["r2", "mse"]].to_numpy(dtype=float)).all()


# ------------------------------------------------------------------ save and load


def test_load_into_other_weights_does_not_show_the_saved_metrics_as_its_own(fitted, tmp_path):
    from lm_probe_widgets.core.io.tiny import tiny_model

    runner, _, test = fitted
    path = tmp_path / "probes.safetensors"
    runner.save(path)
    same = ProbeRunner.load(path, runner.model)  # the same weights: the saved metrics hold
    assert same.metrics["accuracy"].equals(runner.metrics["accuracy"])
    other, _ = tiny_model("gpt2", seed=1)  # same shapes, other weights
    with pytest.warns(UserWarning, match="saved with other model weights"):
        loaded = ProbeRunner.load(path, other)
    assert loaded.metrics["accuracy"].isna().all()
    loaded.compute_metrics(test)  # measured on this model
    assert loaded.metrics["accuracy"].notna().all()


def test_save_to_a_folder_is_a_clear_error(fitted, tmp_path):
    runner, _, _ = fitted
    with pytest.raises(ProbeError, match="is a folder.*probes.safetensors"):
        runner.save(tmp_path)


def test_a_saved_file_with_unknown_settings_is_a_clear_error(fitted, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    runner, _, _ = fitted
    path = tmp_path / "probes.safetensors"
    runner.save(path)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    probes = json.loads(meta["probes"])
    probes[0]["config"]["from_the_future"] = 1
    save_file(load_file(str(path)), str(path), metadata={**meta, "probes": json.dumps(probes)})
    with pytest.raises(ProbeError, match="does not know \\(from_the_future\\).*another version"):
        ProbeRunner.load(path, runner.model)
