"""Shared fixtures: tiny in-process models and a small learnable text task."""

from __future__ import annotations

import numpy as np
import pytest

from lm_probe_widgets.core.tiny import tiny_model

POSITIVE = ["good", "great", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "dull", "poor"]
FILLER = ["the", "a", "movie", "film", "was", "is", "plot", "story", "and", "it"]


def sentiment_texts(n: int = 240, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Texts of varied length whose label is decided by one sentiment word."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        words = rng.choice(FILLER, size=int(rng.integers(2, 14))).tolist()
        words.insert(
            int(rng.integers(0, len(words) + 1)), str(rng.choice(POSITIVE if y else NEGATIVE))
        )
        texts.append(" ".join(words))
        labels.append(y)
    return texts, np.asarray(labels, dtype=np.int64)


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
