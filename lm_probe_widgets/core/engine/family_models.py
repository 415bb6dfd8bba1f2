"""The torch probe families: an MLP probe (one hidden layer) and an attention probe
(learned pooling over a text's tokens), trained with AdamW on standardised features,
from a seed, without touching the global random state.

They live in the engine so a fit plan can train them (`core.engine.families`) and a
saved runner can load them; `core.methods.mlp_probe` and `core.methods.attention_probe`
build their capacity sweep and pooling comparison on them.

Early stopping (optional, as `ProbeConfig`'s fields spell it): with validation rows,
the validation loss is measured every `eval_every` steps; training stops once
`patience` evaluations after `warmup` steps brought no improvement larger than
`threshold`, and the weights of the best evaluation are kept. Without validation
rows every step is taken and the last weights kept.

Features come as numpy arrays or as torch tensors: a fit plan on an accelerator hands
them the rows where its feature cache keeps them (`feature_cache.DeviceFeatures`), and
the scaler and standardising then run there, in float64, so no row goes to the host
and back. The fitted scaler is kept as numpy (what `arrays` saves).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import is_int
from ..errors import ProbeError


class AdamW:
    """In-place AdamW steps on `params` (their `.grad` set by a backward pass), with
    torch.optim.AdamW's defaults (betas 0.9/0.999, eps 1e-8, decoupled weight decay),
    written out: `torch.optim` imports torch._dynamo on first use, about 4 s, for a
    few tensors that need ten lines (the engine's Adam is hand-written too)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, weight_decay: float) -> None:
        self.params = list(params)
        self.lr, self.weight_decay, self.t = lr, weight_decay, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        step_size = self.lr / (1 - b1**self.t)
        root_bc2 = math.sqrt(1 - b2**self.t)
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, v.sqrt().div_(root_bc2).add_(eps), value=-step_size)


@dataclass
class Stopping:
    """When to measure the validation loss and when to stop (ProbeConfig's early
    stopping fields); `patience=0` trains every step. `poll` is called every
    `POLL_EVERY` steps: a fit loop's stop point (it may raise to end training, and
    then nothing of this fit is kept)."""

    patience: int = 0
    eval_every: int = 1
    warmup: int = 0
    threshold: float = 0.0
    poll: Callable[[], None] | None = None


POLL_EVERY = 25


@dataclass
class Trace:
    """How a fit went: steps taken, the best evaluation, the validation history."""

    steps: int = 0
    best_step: int | None = None
    best_val_loss: float = math.inf
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def train(
    net: torch.nn.Module,
    opt: AdamW,
    steps: int,
    step_loss: Callable[[], torch.Tensor],
    val_loss: Callable[[], float] | None,
    stopping: Stopping | None,
) -> Trace:
    """Up to `steps` AdamW steps of `step_loss`; with `val_loss`, early stopping as
    `stopping` says and the best evaluation's weights restored."""
    stopping = stopping or Stopping()
    trace, best_state = Trace(), None
    since = 0
    for s in range(1, steps + 1):
        opt.zero_grad()
        loss = step_loss()
        loss.backward()
        opt.step()
        trace.steps = s
        if stopping.poll is not None and s % POLL_EVERY == 0:
            stopping.poll()
        if val_loss is None or s % stopping.eval_every:
            continue
        with torch.no_grad():
            v = float(val_loss())
        trace.history.append({"step": s, "train_loss": float(loss.detach()), "val_loss": v})
        if v < trace.best_val_loss - stopping.threshold or best_state is None:
            trace.best_val_loss = min(v, trace.best_val_loss)
            trace.best_step, since = s, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            since += 1
        if stopping.patience and s >= stopping.warmup and since >= stopping.patience:
            trace.stopped_early = True
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return trace


def _proba(logits: torch.Tensor) -> np.ndarray:
    """Class probabilities from float32 logits, the softmax taken in float64 (rows sum
    to 1 to float64 rounding, as scikit-learn's metrics check)."""
    return torch.softmax(logits.detach().double(), -1).cpu().numpy()


Rows = np.ndarray | torch.Tensor


def _rows64(x: Any) -> Rows:
    """Rows as float64: a tensor where it is (the fit's device; MPS has no float64, so
    the CPU there), anything else as a numpy array."""
    if isinstance(x, torch.Tensor):
        return (x.cpu() if x.device.type == "mps" else x).detach().double()
    return np.asarray(x, dtype=np.float64)


def _all_finite(x: Rows) -> bool:
    return bool(torch.isfinite(x).all()) if isinstance(x, torch.Tensor) else np.isfinite(x).all()


def _scaler(x: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and (population) standard deviation, 1 where it is 0."""
    if isinstance(x, torch.Tensor):
        mu, sd = x.mean(0), x.std(0, correction=0)
        return mu.cpu().numpy(), torch.where(sd > 0, sd, 1.0).cpu().numpy()
    mu, sd = x.mean(0), x.std(0)
    return mu, np.where(sd > 0, sd, 1.0)


def _standardised(x: Rows, mu: Rows, sd: Rows, device: torch.device) -> torch.Tensor:
    """(x - mu) / sd in float64, as float32 on `device` (a tensor computed on its own
    device, then moved; `mu` and `sd` numpy, or tensors already there)."""
    if isinstance(x, torch.Tensor):
        z = (x - torch.as_tensor(mu, device=x.device)) / torch.as_tensor(sd, device=x.device)
        return z.to(device=device, dtype=torch.float32)
    return torch.as_tensor((x - mu) / sd, dtype=torch.float32, device=device)


def _check_labels(y: np.ndarray, n: int, n_classes: int | None, what: str) -> int:
    if len(y) != n or y.dtype.kind not in "iu" or (y < 0).any():
        raise ProbeError(f"labels must be one class index (0, 1, ...) per {what}")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if k < 2 or y.max() >= k:
        raise ProbeError(f"need at least two classes and labels below n_classes={k}")
    return k


def _state_arrays(net: torch.nn.Module, mu: np.ndarray, sd: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    arrays.update(mu=np.asarray(mu), sd=np.asarray(sd))
    return arrays


def _load_net(net: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    try:
        net.load_state_dict(
            {k[4:]: torch.as_tensor(v) for k, v in arrays.items() if k[:4] == "net."}
        )
    except RuntimeError as e:
        raise ProbeError(f"saved probe weights do not fit its settings: {e}") from e


class MLPProbe:
    """standardise -> Linear(d, width) -> ReLU -> Linear(width, classes) (width 0:
    one Linear, a logistic probe), trained full batch with AdamW."""

    def __init__(
        self,
        width: int = 64,
        weight_decay: float = 1e-2,
        *,
        lr: float = 1e-2,
        steps: int = 300,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        for key, value, low in (("width", width, 0), ("steps", steps, 1), ("seed", seed, 0)):
            if not is_int(value) or value < low:
                raise ProbeError(f"{key} must be an integer >= {low}, got {value!r}")
        if not weight_decay >= 0 or not lr > 0:
            raise ProbeError(f"weight_decay must be >= 0 and lr > 0, got {weight_decay}, {lr}")
        self.width, self.weight_decay, self.lr = int(width), float(weight_decay), float(lr)
        self.steps, self.seed = int(steps), int(seed)
        self.device = torch.device(device or "cpu")
        self.net: torch.nn.Module | None = None
        self.mu = self.sd = np.zeros(0)
        self.trace = Trace()

    def _build(self, d: int, k: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.width == 0:
                net: torch.nn.Module = torch.nn.Linear(d, k)
            else:
                net = torch.nn.Sequential(
                    torch.nn.Linear(d, self.width), torch.nn.ReLU(), torch.nn.Linear(self.width, k)
                )
        return net.to(self.device)

    def _inputs(self, x: Any, mu: np.ndarray, sd: np.ndarray) -> torch.Tensor:
        x = _rows64(x)
        if x.ndim != 2 or x.shape[1] != len(mu):
            raise ProbeError(f"features must be [rows, {len(mu)}], got {tuple(x.shape)}")
        return _standardised(x, mu, sd, self.device)

    def fit(
        self,
        x: Rows,
        y: np.ndarray,
        n_classes: int | None = None,
        *,
        val: tuple[Rows, np.ndarray] | None = None,
        stopping: Stopping | None = None,
    ) -> MLPProbe:
        """Fit on features `x` [rows, d] (numpy, or a tensor: standardised where it
        is) and class indices `y` (early stopping on `val` = (features, class indices)
        when given); on bad input nothing changes (the fitted state is replaced only
        once training has finished)."""
        x, y = _rows64(x), np.asarray(y)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ProbeError(
                f"need features [rows, d] and one label a row, got {tuple(x.shape)}, {y.shape}"
            )
        k = _check_labels(y, len(x), n_classes, "row")
        if not _all_finite(x):
            raise ProbeError("features contain NaN or inf")
        mu, sd = _scaler(x)
        net = self._build(x.shape[1], k)
        xs = self._inputs(x, mu, sd)
        yt = torch.as_tensor(y, dtype=torch.long, device=self.device)
        opt = AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        val_loss = None
        if val is not None and len(val[1]):
            xv = self._inputs(val[0], mu, sd)
            yv = torch.as_tensor(np.asarray(val[1]), dtype=torch.long, device=self.device)

            def val_loss() -> float:
                return float(torch.nn.functional.cross_entropy(net(xv), yv))

        def step_loss() -> torch.Tensor:
            return torch.nn.functional.cross_entropy(net(xs), yt)

        trace = train(net, opt, self.steps, step_loss, val_loss, stopping)
        self.net, self.mu, self.sd, self.trace = net.eval(), mu, sd, trace
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise ProbeError("this MLP probe is not fitted")
        with torch.no_grad():
            logits = self.net(self._inputs(x, self.mu, self.sd))
        return _proba(logits)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    def settings(self) -> dict[str, Any]:
        return {"width": self.width, "weight_decay": self.weight_decay, "lr": self.lr,
                "steps": self.steps, "seed": self.seed}  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted weights and scaler as plain arrays (what `from_arrays` reads)."""
        if self.net is None:
            raise ProbeError("this MLP probe is not fitted: nothing to save")
        return _state_arrays(self.net, self.mu, self.sd)

    @classmethod
    def from_arrays(
        cls, settings: dict[str, Any], arrays: dict[str, np.ndarray], device: Any = None
    ) -> MLPProbe:
        probe = cls(**settings, device=device)
        last = arrays["net.weight"] if probe.width == 0 else arrays.get("net.2.weight")
        if last is None:
            raise ProbeError("saved MLP probe weights do not fit its width")
        probe.net = probe._build(len(arrays["mu"]), last.shape[0])
        _load_net(probe.net, arrays)
        probe.net.eval()
        probe.mu, probe.sd = arrays["mu"], arrays["sd"]
        return probe

    def save(self, path: str | Path) -> None:
        """One safetensors file: the weights and scaler as arrays, the settings as
        JSON metadata (loading runs no code)."""
        from safetensors.numpy import save_file

        save_file(self.arrays(), str(path), metadata={"mlp_probe": json.dumps(self.settings())})

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> MLPProbe:
        meta, arrays = _read(path, "mlp_probe", "MLP probe")
        return cls.from_arrays(meta, arrays, device)

    def __repr__(self) -> str:
        state = "fitted" if self.net is not None else "not fitted"
        return (
            f"MLPProbe(width={self.width}, weight_decay={self.weight_decay}, "
            f"steps={self.steps}, {state})"
        )


def _read(path: str | Path, key: str, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = (f.metadata() or {}).get(key)
        if meta is None:
            raise ProbeError(f"{str(path)!r} is not a saved {what}")
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    return json.loads(meta), arrays


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


def check_texts(texts: Sequence[np.ndarray], width: int | None = None) -> int:
    """The feature width of texts given as one [tokens >= 1, d] array each."""
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
        self.trace = Trace()

    def _padded(
        self, texts: Sequence[Rows], mu: np.ndarray, sd: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised texts padded to [n, longest, d], and the mask of real tokens."""
        n, longest = len(texts), max(len(t) for t in texts)
        x = torch.zeros(n, longest, len(mu), device=self.device)
        mask = torch.zeros(n, longest, dtype=torch.bool, device=self.device)
        on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # the scaler, per device
        for i, t in enumerate(map(_rows64, texts)):
            stats = (mu, sd)
            if isinstance(t, torch.Tensor):
                if t.device not in on:
                    on[t.device] = tuple(torch.as_tensor(v, device=t.device) for v in stats)
                stats = on[t.device]
            x[i, : len(t)] = _standardised(t, *stats, self.device)
            mask[i, : len(t)] = True
        return x, mask

    def fit(
        self,
        texts: Sequence[Rows],
        y: np.ndarray,
        n_classes: int | None = None,
        *,
        val: tuple[Sequence[Rows], np.ndarray] | None = None,
        stopping: Stopping | None = None,
    ) -> AttentionProbe:
        """Fit on one [tokens, d] feature array per text (numpy, or tensors:
        standardised where they are) and class indices `y` (early stopping on `val` =
        (texts, class indices) when given); on bad input nothing changes (the fitted
        state is replaced once training is done)."""
        d = check_texts(texts)
        y = np.asarray(y)
        k = _check_labels(y, len(texts), n_classes, "text")
        rows = [_rows64(t) for t in texts]
        if not all(isinstance(t, torch.Tensor) for t in rows):  # numpy unless all are tensors
            rows = [t.cpu().numpy() if isinstance(t, torch.Tensor) else t for t in rows]
        flat = torch.cat(rows) if isinstance(rows[0], torch.Tensor) else np.concatenate(rows)
        if not _all_finite(flat):
            raise ProbeError("features contain NaN or inf")
        mu, sd = _scaler(flat)
        x, mask = self._padded(rows, mu, sd)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _AttentionNet(d, self.heads, k).to(self.device)
        yt = torch.as_tensor(y, dtype=torch.long, device=self.device)
        opt = AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        val_loss = None
        if val is not None and len(val[1]):
            check_texts(val[0], d)
            xv, mv = self._padded(val[0], mu, sd)
            yv = torch.as_tensor(np.asarray(val[1]), dtype=torch.long, device=self.device)

            def val_loss() -> float:
                return float(torch.nn.functional.cross_entropy(net(xv, mv)[0], yv))

        order, at = torch.randperm(len(y), generator=gen), 0

        def step_loss() -> torch.Tensor:
            nonlocal order, at
            if at >= len(order):
                order, at = torch.randperm(len(y), generator=gen), 0
            rows = order[at : at + self.batch_size].to(self.device)
            at += self.batch_size
            logits, _ = net(x[rows], mask[rows])
            return torch.nn.functional.cross_entropy(logits, yt[rows])

        trace = train(net, opt, self.steps, step_loss, val_loss, stopping)
        self.net, self.mu, self.sd, self.trace = net.eval(), mu, sd, trace
        return self

    def _run(self, texts: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.net is None:
            raise ProbeError("this attention probe is not fitted")
        check_texts(texts, len(self.mu))
        x, mask = self._padded(texts, self.mu, self.sd)
        with torch.no_grad():
            return self.net(x, mask)

    def predict_proba(self, texts: Sequence[np.ndarray]) -> np.ndarray:
        return _proba(self._run(texts)[0])

    def predict(self, texts: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba(texts).argmax(1)

    def token_weights(self, texts: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per text, each token's attention weight per head [tokens, heads] (each
        head's weights sum to 1 over the text): where the probe read."""
        weights = self._run(texts)[1].double().cpu().numpy()
        return [w[: len(t)] for w, t in zip(weights, texts, strict=True)]

    def settings(self) -> dict[str, Any]:
        return {"heads": self.heads, "weight_decay": self.weight_decay, "lr": self.lr,
                "steps": self.steps, "batch_size": self.batch_size, "seed": self.seed}  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted weights and scaler as plain arrays (what `from_arrays` reads)."""
        if self.net is None:
            raise ProbeError("this attention probe is not fitted: nothing to save")
        return _state_arrays(self.net, self.mu, self.sd)

    @classmethod
    def from_arrays(
        cls, settings: dict[str, Any], arrays: dict[str, np.ndarray], device: Any = None
    ) -> AttentionProbe:
        probe = cls(**settings, device=device)
        k = arrays["net.value.weight"].shape[0] // probe.heads
        net = _AttentionNet(len(arrays["mu"]), probe.heads, k)
        _load_net(net, arrays)
        probe.net, probe.mu, probe.sd = net.to(probe.device).eval(), arrays["mu"], arrays["sd"]
        return probe

    def save(self, path: str | Path) -> None:
        """One safetensors file: weights and scaler as arrays, settings as JSON
        metadata (loading runs no code)."""
        from safetensors.numpy import save_file

        meta = {"attention_probe": json.dumps(self.settings())}
        save_file(self.arrays(), str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> AttentionProbe:
        meta, arrays = _read(path, "attention_probe", "attention probe")
        return cls.from_arrays(meta, arrays, device)

    def __repr__(self) -> str:
        state = "fitted" if self.net is not None else "not fitted"
        return f"AttentionProbe(heads={self.heads}, steps={self.steps}, {state})"
