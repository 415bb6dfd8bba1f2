"""A small learnable text task for tests (a module of its own: test files import it
by name, which a `conftest` import cannot do reliably with several conftest files)."""

from __future__ import annotations

import numpy as np

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


# A tiny Llama's modules placed as device_map="auto" would for a model larger than the
# GPUs: layer 2 offloaded to disk (accelerate streams its weights in), the rest on CPU.
LLAMA_LAYER_2_ON_DISK = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "cpu",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "cpu",
}
