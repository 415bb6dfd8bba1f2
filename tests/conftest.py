"""Shared fixtures: tiny in-process models and a small learnable text task."""

from __future__ import annotations

import os

import pytest
from synthetic import sentiment_texts

from lm_probe_widgets.core.io.tiny import tiny_model

# The persistent feature store is on by default for users; the suite counts forward
# passes and shares one deterministic tiny model, so its tests opt in explicitly
# (tests/test_store*.py pass store=... or set this to 1 in their subprocesses).
os.environ.setdefault("LM_PROBE_WIDGETS_STORE", "0")


@pytest.fixture(scope="session")
def tiny():
    """(nnsight GPT-2 model, tokenizer): 3 layers, width 32, random init."""
    return tiny_model("gpt2")


@pytest.fixture(scope="session")
def tiny_llama():
    return tiny_model("llama")


@pytest.fixture(scope="session")
def tiny_bert():
    return tiny_model("bert")


@pytest.fixture(scope="session")
def sentiment():
    return sentiment_texts()
