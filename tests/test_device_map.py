"""A model split over two GPUs (`device_map`): each site's activation is pooled on the
device its layer ran on (only pooled float32 vectors leave it), and a fit on the split
model gives the probes a fit on one device gives.

Needs two CUDA devices and is skipped elsewhere: on CPUs torch has one device, so a
split over "two CPU placements" cannot show where a read happened (a device assertion
there could not fail). The CPU half of the story, an accelerate-dispatched model read
through nnsight, is tests/test_store_runner.py's layer offloaded to disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import extract

CUDA_DEVICES = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = pytest.mark.skipif(
    CUDA_DEVICES < 2, reason=f"needs two CUDA devices (this machine has {CUDA_DEVICES})"
)

# layers 0-1 on the first GPU, layer 2 and the head on the second
SPLIT = {
    "model.embed_tokens": 0,
    "model.rotary_emb": 0,
    "model.layers.0": 0,
    "model.layers.1": 0,
    "model.layers.2": 1,
    "model.norm": 1,
    "lm_head": 1,
}


def test_each_site_is_pooled_where_its_layer_ran_and_the_fit_matches(tmp_path, monkeypatch):
    check_split(tmp_path, monkeypatch, SPLIT, [torch.device("cuda", i) for i in (0, 1)], "cuda:1")


def check_split(tmp_path, monkeypatch, placement: dict, devices: list, probe_device: str) -> None:
    """Layers 1 and 2 of a tiny Llama loaded with `placement` are read on `devices`,
    and a fit of both (probe maths on `probe_device`) matches the whole model's on
    the CPU: the same features, probes and metrics."""
    from lm_probe_widgets.core.io.loading import load_model
    from lm_probe_widgets.core.io.tiny import tiny_hf_model

    hf, tok = tiny_hf_model("llama")
    hf.save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    split, tok = load_model(tmp_path / "llama", device_map=placement)
    whole, _ = load_model(tmp_path / "llama")
    texts, labels = sentiment_texts(48, seed=2)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25, seed=0)
    configs = [ProbeConfig(f"model.layers.{i}.output", [0, 1], name=f"l{i}") for i in (1, 2)]
    seen: list[torch.device] = []
    real_pool = extract.pool
    monkeypatch.setattr(extract, "pool", lambda h, *a: seen.append(h.device) or real_pool(h, *a))
    kw = dict(num_epoch=2, batch_size=12, progress=None, bootstrap=0)
    on_split = ProbeRunner(split, configs, store=False, probe_device=probe_device)
    on_split.fit_probes(train, test, **kw)
    # one read per site per batch, in execution order, each where its layer ran
    assert seen and seen == devices * (len(seen) // 2)
    on_one = ProbeRunner(whole, configs, store=False)
    on_one.fit_probes(train, test, **kw)
    keys = [c.feature_key for c in configs]
    got, want = on_split.features(test, keys), on_one.features(test, keys)
    for key in keys:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5)
    for cfg in configs:
        a, b = on_one[cfg.name], on_split[cfg.name]
        assert b.record.steps == a.record.steps
        assert np.abs(b.coef_ - a.coef_).max() <= 1e-2 * np.abs(a.coef_).max()
    np.testing.assert_allclose(on_split.metrics["loss"], on_one.metrics["loss"], rtol=1e-3)
