"""Attention probes: learned pooling over tokens, then a linear read-out (as
EleutherAI's attention probes, and the attention aggregation of Kramár et al. 2026).

Mean pooling dilutes a signal carried by one token among many (its share shrinks as
1 / length); last-token pooling sees what the last position kept of it. An attention
probe learns *where* to read: each head h scores every token t by a learned query,
q_h · x_t + b_h · t (a learned position bias per head, t the token's index), takes a
softmax over the text's real tokens, and adds up a linear read-out of each token with
those weights, summed over heads. The weights per token (`token_weights`) show where
it read.

It reads token-level features (pooling "none": one row per real token, which the
store keeps when asked), so it costs no forward pass of its own; it is trained with
torch (AdamW, minibatches of texts, a fixed number of steps) on `device`, from
`seed`, without touching the global random state. `pooling_comparison` scores it
against mean- and last-pooled logistic probes on the same test texts, paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import ProbeConfig
from ..engine.data import ProbeDataset
from ..engine.family_models import AttentionProbe
from ..engine.plan import scored_labels
from ..errors import ProbeError
from .compare import LEVEL, Outcomes, compare_outcomes, holm_family
from .family_rows import check_level_seed, probe_config, train_test

COLUMNS = ["pooling", "accuracy", "attention_accuracy", "difference", "low", "high", "p"]
COLUMNS += ["p_holm", "verdict"]


def _pooled_predictions(
    train: np.ndarray, y: np.ndarray, test: np.ndarray, c: float = 1.0
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    return model.fit(train, y).predict(test)


def pooling_comparison(
    probe: AttentionProbe,
    texts_train: Sequence[np.ndarray],
    y_train: np.ndarray,
    texts_test: Sequence[np.ndarray],
    y_test: np.ndarray,
    *,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """The fitted attention `probe` against logistic probes on mean- and last-pooled
    features of the same texts: one row per pooling, the paired difference (attention
    minus pooled) over test texts and its verdict, Holm-corrected over the two."""
    check_level_seed(level, seed)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(y_train) != len(texts_train) or len(y_test) != len(texts_test):
        raise ProbeError("give one label per text")
    clusters, zeros = np.arange(len(y_test)), np.zeros(len(y_test))
    mine = Outcomes(
        "accuracy", (probe.predict(texts_test) == y_test).astype(float), zeros, clusters
    )
    poolers = {"mean": lambda t: np.mean(t, 0), "last": lambda t: np.asarray(t)[-1]}
    made = []
    for how, pool in poolers.items():
        a = np.stack([pool(t) for t in texts_train])
        b = np.stack([pool(t) for t in texts_test])
        pred = _pooled_predictions(a, y_train, b)
        theirs = Outcomes("accuracy", (pred == y_test).astype(float), zeros, clusters)
        made.append(compare_outcomes(mine, theirs, "attention", how, level=level, seed=seed))
    made = holm_family(made)
    return pd.DataFrame(
        [
            [m.b, m.b_score, m.a_score, m.difference, m.low, m.high, m.p, m.p_holm, m.verdict]
            for m in made
        ],
        columns=COLUMNS,
    )


def token_features(runner: Any, cfg: ProbeConfig, ds: ProbeDataset) -> list[np.ndarray]:
    """Each text's token-level features at `cfg`'s site ([tokens, d] per text), from
    the runner's cache or store (a forward pass only if neither holds them)."""
    path, kind = cfg.read
    key = (path, kind, "none")
    flat = np.asarray(runner.features(ds, [key])[key])
    return np.split(flat, ds.token_offsets()[1:-1])


def attention_probe(
    runner: Any,
    name: str,
    *,
    train: ProbeDataset | None = None,
    test: ProbeDataset | None = None,
    heads: int = 1,
    weight_decay: float = 1e-3,
    lr: float = 1e-2,
    steps: int = 300,
    batch_size: int = 64,
    level: float = LEVEL,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[AttentionProbe, pd.DataFrame]:
    """An `AttentionProbe` at probe `name`'s site (its classes, its per-text labels),
    fitted on `train`'s token-level features (on the runner's probe device unless
    `device` says otherwise), and its `pooling_comparison` on `test` (defaults: the
    last fit's training part and test set)."""
    check_level_seed(level, seed)
    cfg = probe_config(runner, name)
    if cfg.token_level:
        raise ProbeError(f"probe {name!r} labels tokens; an attention probe labels texts")
    device = getattr(runner, "probe_device", None) if device is None else device
    train, test = train_test(runner, train, test)
    probe = AttentionProbe(
        heads, weight_decay, lr=lr, steps=steps, batch_size=batch_size, seed=seed, device=device
    )
    y, yt = scored_labels(cfg, train)[1], scored_labels(cfg, test)[1]
    a, b = token_features(runner, cfg, train), token_features(runner, cfg, test)
    probe.fit(a, y, len(cfg.classes))
    return probe, pooling_comparison(probe, a, y, b, yt, level=level, seed=seed)
