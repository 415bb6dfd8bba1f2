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

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import ProbeConfig, is_int
from ..engine.data import ProbeDataset
from ..engine.plan import scored_labels
from ..errors import ProbeError
from .adamw import AdamW
from .compare import LEVEL, Outcomes, compare_outcomes, holm_family
from .family_rows import check_level_seed, probe_config, train_test

COLUMNS = ["pooling", "accuracy", "attention_accuracy", "difference", "low", "high", "p"]
COLUMNS += ["p_holm", "verdict"]


class _AttentionNet(torch.nn.Module):
    def __init__(self, d: int, heads: int, k: int) -> None:
        super().__init__()
        self.heads, self.k = heads, k
        self.query = torch.nn.Linear(d, heads)
        self.position = torch.nn.Parameter(torch.zeros(heads))
        self.value = torch.nn.Linear(d, heads * k)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [n, k], weights [n, tokens, heads]) of texts x [n, tokens, d]."""
        t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
        scores = self.query(x) + t[None, :, None] * self.position
        weights = torch.softmax(scores.masked_fill(~mask[..., None], -torch.inf), 1)
        values = self.value(x).unflatten(-1, (self.heads, self.k))
        return torch.einsum("nth,nthk->nk", weights, values), weights


def _check_texts(texts: Sequence[np.ndarray], width: int | None = None) -> int:
    if len(texts) == 0:
        raise ProbeError("need at least one text's token features")
    shapes = {np.shape(t)[1:] for t in texts}
    if any(np.ndim(t) != 2 or len(t) == 0 for t in texts) or len(shapes) != 1:
        raise ProbeError("each text's features must be [tokens >= 1, d], one d for all")
    d = shapes.pop()[0]
    if width is not None and d != width:
        raise ProbeError(f"features have width {d}; this probe reads width {width}")
    return int(d)


class AttentionProbe:
    """Learned attention pooling (`heads` queries, a position bias each) and a linear
    read-out, trained on token-level features, one [tokens, d] array per text."""

    def __init__(
        self,
        heads: int = 1,
        weight_decay: float = 1e-3,
        *,
        lr: float = 1e-2,
        steps: int = 300,
        batch_size: int = 64,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        for key, value in (("heads", heads), ("steps", steps), ("batch_size", batch_size)):
            if not is_int(value) or value < 1:
                raise ProbeError(f"{key} must be an integer >= 1, got {value!r}")
        if not is_int(seed) or seed < 0:
            raise ProbeError(f"seed must be an integer >= 0, got {seed!r}")
        if not weight_decay >= 0 or not lr > 0:
            raise ProbeError(f"weight_decay must be >= 0 and lr > 0, got {weight_decay}, {lr}")
        self.heads, self.weight_decay, self.lr = int(heads), float(weight_decay), float(lr)
        self.steps, self.batch_size, self.seed = int(steps), int(batch_size), int(seed)
        self.device = torch.device(device or "cpu")
        self.net: _AttentionNet | None = None
        self.mu = self.sd = np.zeros(0)

    def _padded(
        self, texts: Sequence[np.ndarray], mu: np.ndarray, sd: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised texts padded to [n, longest, d], and the mask of real tokens."""
        n, longest = len(texts), max(len(t) for t in texts)
        x = torch.zeros(n, longest, len(mu), device=self.device)
        mask = torch.zeros(n, longest, dtype=torch.bool, device=self.device)
        for i, t in enumerate(texts):
            z = (np.asarray(t, dtype=np.float64) - mu) / sd
            x[i, : len(t)] = torch.as_tensor(z, dtype=torch.float32)
            mask[i, : len(t)] = True
        return x, mask

    def fit(
        self, texts: Sequence[np.ndarray], y: np.ndarray, n_classes: int | None = None
    ) -> AttentionProbe:
        """Fit on one [tokens, d] feature array per text and class indices `y`; on bad
        input nothing changes (the fitted state is replaced once training is done)."""
        _check_texts(texts)
        y = np.asarray(y)
        if len(y) != len(texts) or y.dtype.kind not in "iu" or (y < 0).any():
            raise ProbeError("labels must be one class index (0, 1, ...) per text")
        k = int(y.max()) + 1 if n_classes is None else int(n_classes)
        if k < 2 or y.max() >= k:
            raise ProbeError(f"need at least two classes and labels below n_classes={k}")
        flat = np.concatenate([np.asarray(t, dtype=np.float64) for t in texts])
        if not np.isfinite(flat).all():
            raise ProbeError("features contain NaN or inf")
        mu, sd = flat.mean(0), flat.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        x, mask = self._padded(texts, mu, sd)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _AttentionNet(x.shape[-1], self.heads, k).to(self.device)
        yt = torch.as_tensor(y, dtype=torch.long, device=self.device)
        opt = AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        order = torch.randperm(len(y), generator=gen)
        at = 0
        for _ in range(self.steps):
            if at >= len(order):
                order, at = torch.randperm(len(y), generator=gen), 0
            rows = order[at : at + self.batch_size].to(self.device)
            at += self.batch_size
            opt.zero_grad()
            logits, _ = net(x[rows], mask[rows])
            torch.nn.functional.cross_entropy(logits, yt[rows]).backward()
            opt.step()
        self.net, self.mu, self.sd = net.eval(), mu, sd
        return self

    def _run(self, texts: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.net is None:
            raise ProbeError("this attention probe is not fitted")
        _check_texts(texts, len(self.mu))
        x, mask = self._padded(texts, self.mu, self.sd)
        with torch.no_grad():
            return self.net(x, mask)

    def predict_proba(self, texts: Sequence[np.ndarray]) -> np.ndarray:
        return torch.softmax(self._run(texts)[0], -1).double().cpu().numpy()

    def predict(self, texts: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba(texts).argmax(1)

    def token_weights(self, texts: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per text, each token's attention weight per head [tokens, heads] (each
        head's weights sum to 1 over the text): where the probe read."""
        weights = self._run(texts)[1].double().cpu().numpy()
        return [w[: len(t)] for w, t in zip(weights, texts, strict=True)]

    def save(self, path: str | Path) -> None:
        """One safetensors file: weights and scaler as arrays, settings as JSON
        metadata (loading runs no code)."""
        from safetensors.numpy import save_file

        if self.net is None:
            raise ProbeError("this attention probe is not fitted: nothing to save")
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        arrays.update(mu=self.mu, sd=self.sd)
        settings = {"heads": self.heads, "weight_decay": self.weight_decay, "lr": self.lr}
        settings.update(steps=self.steps, batch_size=self.batch_size, seed=self.seed)
        save_file(arrays, str(path), metadata={"attention_probe": json.dumps(settings)})

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> AttentionProbe:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = (f.metadata() or {}).get("attention_probe")
            if meta is None:
                raise ProbeError(f"{str(path)!r} is not a saved attention probe")
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        probe = cls(**json.loads(meta), device=device)
        k = arrays["net.value.weight"].shape[0] // probe.heads
        net = _AttentionNet(len(arrays["mu"]), probe.heads, k)
        net.load_state_dict(
            {n[4:]: torch.as_tensor(v) for n, v in arrays.items() if n[:4] == "net."}
        )
        probe.net, probe.mu, probe.sd = net.to(probe.device).eval(), arrays["mu"], arrays["sd"]
        return probe

    def __repr__(self) -> str:
        state = "fitted" if self.net is not None else "not fitted"
        return f"AttentionProbe(heads={self.heads}, steps={self.steps}, {state})"


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
