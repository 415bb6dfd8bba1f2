"""Shared fixtures: tiny in-process models and a small learnable text task."""

from __future__ import annotations

import pytest
from synthetic import sentiment_texts

from lm_probe_widgets.core.tiny import tiny_model


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
