"""Probe directions at work: export them, and push the model along them.

A probe finding a property does not show the model *uses* it. The causal check
(as in Marks & Tegmark 2023, "mass-mean" directions) is to add a multiple of the
direction to the activation the probe reads and watch what changes downstream:
the probe's own prediction, the next-token distribution, a generated text.

`steer` runs the model through nnsight twice (unchanged and steered) and returns
both, so a learner sees how far the output moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..config import split_submodule
from ..engine.modeling import model_device, model_lock, wrap_model
from ..engine.plan import row_labels
from ..engine.pooling import last_pool, pool
from ..engine.probe import LinearProbe
from ..engine.progress import track
from ..engine.submodules import _first_tensor, envoy_path, model_inputs, validate_submodules
from ..errors import ProbeError
from ..labels import label_key

if TYPE_CHECKING:
    from ..runner import ProbeRunner


# -- directions --------------------------------------------------------------------------
def class_means(features: np.ndarray, y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean feature vector of each class, [classes, dim] (NaN rows for absent classes)."""
    features = np.asarray(features, dtype=np.float64)
    y_idx = np.asarray(y_idx, dtype=np.int64)
    if len(features) != len(y_idx):
        raise ProbeError(f"{len(features)} feature rows but {len(y_idx)} labels")
    sums = np.zeros((n_classes, features.shape[1]))
    np.add.at(sums, y_idx, features)
    counts = np.bincount(y_idx, minlength=n_classes)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def mass_mean_direction(
    runner: ProbeRunner,
    name: str,
    dataset: Any = None,
    *,
    features: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    positive: Any = None,
    normalize: bool = True,
) -> np.ndarray:
    """Difference of class means: mean(positive) - mean of the other classes' means.

    Features come from `features`/`labels` when given, else from `dataset` (default:
    the data the probe was trained on, read from the runner's feature cache, so no
    forward pass is needed). `normalize=False` keeps its natural length, a sensible
    steering scale of 1.
    """
    probe = runner[name]
    cfg = probe.config
    if features is None:
        ds = dataset if dataset is not None else runner.train_part
        if ds is None:
            raise ProbeError("no training data recorded: fit the runner or pass dataset=")
        features = runner.features(ds, [cfg.feature_key])[cfg.feature_key]
        labels = row_labels(cfg, ds)
    elif labels is None:
        raise ProbeError("pass labels= with features=")
    labels = np.asarray(labels)
    if cfg.token_level:
        keep = labels != cfg.null_label
        features, labels = np.asarray(features)[keep], labels[keep]
    means = class_means(features, probe.encode(labels), len(probe.classes))
    i = len(probe.classes) - 1 if positive is None else probe._class_index[label_key(positive)]
    others = np.delete(means, i, axis=0)
    if np.isnan(means[i]).any() or np.isnan(others).all():
        raise ProbeError("mass-mean needs examples of the positive class and of another class")
    v = means[i] - np.nanmean(others, axis=0)
    return v / (np.linalg.norm(v) + 1e-12) if normalize else v


def directions(
    runner: ProbeRunner, dataset: Any = None, positive: Any = None
) -> dict[str, dict[str, Any]]:
    """Every fitted probe's unit `probe` and `mass_mean` directions and their cosine,
    ready for `np.save` / safetensors."""
    out = {}
    for name, probe in runner.probes.items():
        p = probe.direction(positive)
        m = mass_mean_direction(runner, name, dataset, positive=positive)
        out[name] = {"probe": p, "mass_mean": m, "cosine": float(p @ m)}
    return out


# -- steering ----------------------------------------------------------------------------
@dataclass
class SteeringResult:
    """An unchanged and a steered run side by side.

    `proba_*`: the probe's class probabilities on the activation it reads (rows per
    example, or per real token for token-level probes); `top_*`: the k likeliest
    next tokens after each input; `kl`: KL(steered || unchanged) of the next-token
    distribution, in nats; `text_*`: generated continuations when `generate=True`.
    """

    submodule: str
    scale: float
    direction_norm: float
    activation_norm: float
    classes: list[Any]
    positive: Any
    proba_before: np.ndarray | None = None
    proba_after: np.ndarray | None = None
    top_before: list[list[tuple[str, float]]] = field(default_factory=list)
    top_after: list[list[tuple[str, float]]] = field(default_factory=list)
    kl: np.ndarray | None = None
    text_before: list[str] | None = None
    text_after: list[str] | None = None

    @property
    def delta(self) -> np.ndarray | None:
        """Change in the probe's probability of the positive class, per row."""
        if self.proba_before is None or self.proba_after is None:
            return None
        i = self.classes.index(self.positive)
        return self.proba_after[:, i] - self.proba_before[:, i]

    def __repr__(self) -> str:
        lines = [
            f"SteeringResult({self.submodule!r}, scale={self.scale:g}, "
            f"|direction|={self.direction_norm:.3g}, mean |activation|={self.activation_norm:.3g})"
        ]
        if self.delta is not None:
            i = self.classes.index(self.positive)
            lines.append(
                f"  P({self.positive!r}) {self.proba_before[:, i].mean():.3f} -> "
                f"{self.proba_after[:, i].mean():.3f} (mean over {len(self.delta)} rows)"
            )
        for k, (b, a) in enumerate(zip(self.top_before, self.top_after, strict=False)):
            fmt = ", ".join
            lines.append(f"  [{k}] next: {fmt(f'{t!r} {p:.3g}' for t, p in b[:3])}")
            lines.append(f"   steered: {fmt(f'{t!r} {p:.3g}' for t, p in a[:3])}")
            if self.kl is not None:
                lines.append(f"   KL = {self.kl[k]:.4f} nats")
        for k, (b, a) in enumerate(
            zip(self.text_before or [], self.text_after or [], strict=False)
        ):
            lines.append(f"  [{k}] generated: {b!r}")
            lines.append(f"   steered:   {a!r}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from ...display.steering_html import steering_html  # lazy: core never imports display

        return steering_html(self)


def _add(value: Any, delta: torch.Tensor, weight: torch.Tensor | None) -> Any:
    """value + delta at the weighted positions; tuples keep their other members."""
    if isinstance(value, tuple):
        return (_add(value[0], delta, weight), *value[1:])
    if not torch.is_tensor(value) or value.shape[-1] != delta.shape[0]:
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise ProbeError(f"cannot add a direction of width {delta.shape[0]} to {shape}")
    delta = delta.to(device=value.device, dtype=value.dtype)
    if value.dim() == 2 or weight is None:  # generation steps: every position given
        return value + delta
    return value + weight.to(value.device, value.dtype)[..., None] * delta


def _position_weight(mask: torch.Tensor, positions: str) -> torch.Tensor:
    if positions == "all":
        return mask.float()
    if positions == "last":
        idx = torch.where(mask.bool(), torch.arange(mask.shape[1]), -1).max(1).values
        w = torch.zeros(mask.shape)
        w[torch.arange(mask.shape[0]), idx] = 1.0
        return w
    raise ProbeError(f"positions must be 'all' or 'last', got {positions!r}")


def _encode(model: Any, inputs: Any, attention_mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str):
        tok = getattr(model, "tokenizer", None)
        if tok is None:
            raise ProbeError("texts need a tokenizer: pass token ids, or a model with a tokenizer")
        enc = tok(list(inputs), padding=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]
    ids = torch.as_tensor(np.asarray(inputs), dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask)
    return ids, mask.reshape(ids.shape).long()


def _forward(model, path, kind, ids, mask, edit=None):
    """One traced forward: optionally replace the activation at (path, kind) by
    `edit(activation)` (steering adds a direction, erasure projects one out); return
    the (possibly edited) activation there and the model's output."""
    got: dict[str, Any] = {}
    device = model_device(model)
    inputs = model_inputs(model, ids.to(device), mask.to(device))
    with model_lock(model), torch.inference_mode():
        with model.trace(**inputs):
            envoy = model.get(envoy_path(path)) if path else model
            if kind == "output":
                if edit is not None:
                    envoy.output = edit(envoy.output)
                got["h"] = envoy.output
            else:
                if edit is not None:
                    envoy.input = edit(envoy.input)
                got["h"] = envoy.input
            got["out"] = model.output
    return _first_tensor(got["h"]), got["out"]


def _generate(model, path, kind, ids, mask, delta, positions, max_new_tokens):
    if not hasattr(model, "generate") or not hasattr(model, "tokenizer"):
        raise ProbeError("generate=True needs a Hugging Face causal LM (nnsight TransformersModel)")
    got: dict[str, Any] = {}
    tok = model.tokenizer
    device = model_device(model)
    kwargs = dict(
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,  # a bounded step loop needs every step to happen
        do_sample=False,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    with model_lock(model), torch.inference_mode():
        with model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs
        ) as tracer:
            if delta is not None:
                envoy = model.get(envoy_path(path)) if path else model
                for _ in tracer.iter[:max_new_tokens]:
                    weight = None if positions == "all" else "last"
                    if kind == "output":
                        envoy.output = _add_last(envoy.output, delta, weight)
                    else:
                        envoy.input = _add_last(envoy.input, delta, weight)
            got["ids"] = tracer.result
    new = got["ids"][:, ids.shape[1] :]
    return [tok.decode(row, skip_special_tokens=True) for row in new]


def _add_last(value: Any, delta: torch.Tensor, weight: str | None) -> Any:
    """During generation: every position, or only the newest one ('last')."""
    if weight is None:
        return _add(value, delta, None)
    if isinstance(value, tuple):
        return (_add_last(value[0], delta, weight), *value[1:])
    w = torch.zeros(value.shape[:-1], device=value.device)
    w[..., -1] = 1.0
    return _add(value, delta, w)


def _top(tok: Any, probs: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
    values, idx = probs.topk(min(k, probs.shape[-1]), dim=-1)
    out = []
    for v_row, i_row in zip(values.tolist(), idx.tolist(), strict=True):
        names = [tok.decode([i]) if tok is not None else str(i) for i in i_row]
        out.append(list(zip(names, v_row, strict=True)))
    return out


def steer(
    runner_or_model: Any,
    probe: LinearProbe | str | None,
    inputs: Any,
    scale: float = 4.0,
    *,
    direction: Any = None,
    positive: Any = None,
    submodule: str | None = None,
    positions: str = "all",
    attention_mask: Any = None,
    generate: bool = False,
    max_new_tokens: int = 12,
    top_k: int = 5,
    tokenizer: Any = None,
) -> SteeringResult:
    """Add `scale * direction` at the probe's submodule and compare with an unchanged run.

    - `runner_or_model`: a fitted ProbeRunner (then `probe` may be a name) or a model.
    - `direction`: None for the probe's unit direction towards `positive` (default:
      the last class), "mass_mean" for the unit difference of class means (needs a
      runner), or any vector of the activation's width (used as given).
    - `inputs`: a text, a list of texts, or token ids (with `attention_mask`).
    - `positions`: "all" real tokens, or only the "last" one.
    - `generate=True` also generates `max_new_tokens` greedily, with and without the
      steering applied at every step.

    Scale is in activation units: compare it with `result.activation_norm`.
    """
    from ..engine.feature_access import FeatureAccess  # ProbeRunner's base: no import circle

    runner = runner_or_model if isinstance(runner_or_model, FeatureAccess) else None
    model = runner.model if runner is not None else runner_or_model
    model = wrap_model(model, tokenizer or getattr(model, "tokenizer", None))
    if isinstance(probe, str):
        if runner is None:
            raise ProbeError("a probe name needs a ProbeRunner; pass the LinearProbe itself")
        probe = runner[probe]
    if probe is None and (submodule is None or direction is None):
        raise ProbeError("without a probe, pass both submodule= and direction= (a vector)")
    sub = submodule or probe.config.submodule
    validate_submodules(model, [sub])
    path, kind = split_submodule(sub)
    if direction is None:
        vec = probe.direction(positive)
    elif isinstance(direction, str):
        if direction != "mass_mean" or runner is None or probe is None:
            raise ProbeError("direction='mass_mean' needs a ProbeRunner and a probe")
        vec = mass_mean_direction(runner, probe.name, positive=positive)
    else:
        vec = np.asarray(direction, dtype=np.float32).reshape(-1)
    if probe is not None and vec.shape[0] != probe.dim:
        raise ProbeError(f"direction has width {vec.shape[0]}, the probe reads {probe.dim}")
    delta = torch.as_tensor(float(scale) * vec, dtype=torch.float32)
    ids, mask = _encode(model, inputs, attention_mask)
    weight = _position_weight(mask, positions)
    tok = getattr(model, "tokenizer", None)

    runs = []
    for edit in (None, lambda value: _add(value, delta, weight)):
        h, out = _forward(model, path, kind, ids, mask, edit)
        runs.append((h, out))
    classes = list(probe.config.classes) if probe is not None else []
    pos = None
    if probe is not None:
        pos = classes[-1] if positive is None else positive
    result = SteeringResult(
        submodule=sub,
        scale=float(scale),
        direction_norm=float(np.linalg.norm(vec)),
        activation_norm=float(runs[0][0].float().norm(dim=-1)[mask.bool()].mean()),
        classes=classes,
        positive=pos,
    )
    if probe is not None:
        how = probe.config.pooling
        result.proba_before, result.proba_after = (
            probe.predict_proba(pool(h, mask.to(h.device), how).cpu().numpy()) for h, _ in runs
        )
    logits = [getattr(out, "logits", out if torch.is_tensor(out) else None) for _, out in runs]
    if all(torch.is_tensor(lg) and lg.dim() == 3 for lg in logits):
        logp = [torch.log_softmax(last_pool(lg, mask.to(lg.device)), -1) for lg in logits]
        result.top_before, result.top_after = (_top(tok, lp.exp(), top_k) for lp in logp)
        result.kl = ((logp[1].exp() * (logp[1] - logp[0])).sum(-1)).cpu().numpy()
    if generate:
        result.text_before = _generate(
            model, path, kind, ids, mask, None, positions, max_new_tokens
        )
        result.text_after = _generate(
            model, path, kind, ids, mask, delta, positions, max_new_tokens
        )
    return result


# -- a null distribution for steering effects ----------------------------------------------
MIN_RANDOM = 20
#: How random directions are matched to the tested one: the same length, or the same
#: mean KL of the next-token distribution to the unchanged run.
MATCHES = ("norm", "kl")
#: Most model runs one KL match may take before it gives up.
MAX_MATCH_STEPS = 40


@dataclass
class SteeringNull:
    """A direction's steering effect against random directions matched to it.

    The effect is the mean change in the probe's probability of `positive` (its own
    read-out at the steered layer, `SteeringResult.delta`), over the inputs. `observed`
    is the tested direction's effect, [`observed_low`, `observed_high`] its percentile
    bootstrap interval over the inputs; `kl` the tested direction's mean KL, with
    [`kl_low`, `kl_high`] its interval over the inputs. `null` holds the effect of each
    random direction, `null_kl` its mean KL and `null_scale` its length over the
    tested direction's: 1 with `match="norm"`, the length that gives the tested mean
    KL (within `kl_rtol`) with `match="kl"`. [`low`, `high`] is the central `level`
    range of `null`; `p` the share of random directions whose effect is at least as
    large in size (with the tested one counted, so never 0)."""

    observed: float
    observed_low: float
    observed_high: float
    kl: float
    null: np.ndarray
    null_kl: np.ndarray
    low: float
    high: float
    p: float
    level: float
    match: str = "norm"
    null_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    kl_low: float = np.nan
    kl_high: float = np.nan

    @property
    def outside(self) -> bool:
        """The effect and its whole interval lie outside the random band."""
        return self.observed_low > self.high or self.observed_high < self.low

    def __repr__(self) -> str:
        pct = f"{100 * self.level:.0f}%"
        return (
            f"SteeringNull(effect {self.observed:+.3f} [{pct} CI {self.observed_low:+.3f}, "
            f"{self.observed_high:+.3f}], {len(self.null)} random directions matched by "
            f"{self.match}: {pct} band [{self.low:+.3f}, {self.high:+.3f}], p={self.p:.3f}; "
            f"KL {self.kl:.3g} [{pct} CI {self.kl_low:.3g}, {self.kl_high:.3g}] vs random "
            f"median {np.median(self.null_kl):.3g})"
        )


def _mean_ci(values: np.ndarray, level: float, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean over inputs (a point when all agree)."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    if len(values) > 1 and np.ptp(values) > 0:
        ci = stats.bootstrap(
            (values,), np.mean, confidence_level=level, method="percentile", rng=seed
        ).confidence_interval
        return float(ci.low), float(ci.high)
    return float(values.mean()), float(values.mean())


def _match_kl(kl_at: Any, target: float, rtol: float) -> tuple[float, float]:
    """The factor s with mean KL `kl_at(s)` within `rtol` of `target`, and that KL:
    near zero KL grows as s², which gives each next guess until the target is
    bracketed, then bisection in log s."""
    s, k = 1.0, kl_at(1.0)
    lo = hi = None
    for _ in range(MAX_MATCH_STEPS):
        if abs(k - target) <= rtol * target:
            return s, k
        if k < target:
            lo = s
        else:
            hi = s
        if lo is not None and hi is not None:
            guess = s * np.sqrt(target / k) if k > 0 else np.sqrt(lo * hi)
            s = float(guess if lo < guess < hi else np.sqrt(lo * hi))
        else:
            s *= float(np.clip(np.sqrt(target / k), 0.1, 10.0)) if k > 0 else 10.0
        k = kl_at(s)
    raise ProbeError(
        f"no length of a random direction gave the tested mean KL {target:.3g} within "
        f"{rtol:.0%} in {MAX_MATCH_STEPS} runs (last: KL {k:.3g} at {s:.3g} times the "
        "tested length): the KL may saturate at this layer; use match='norm', or a "
        "smaller scale"
    )


def steering_null(
    runner: ProbeRunner,
    probe: LinearProbe | str,
    inputs: Any,
    scale: float = 4.0,
    *,
    direction: Any = None,
    n_random: int = MIN_RANDOM,
    level: float = 0.95,
    seed: int = 0,
    match: str = "norm",
    kl_rtol: float = 0.05,
    progress: Any = "auto",
    **steer_kwargs: Any,
) -> SteeringNull:
    """`steer` along `direction` (as `steer` takes it) and along `n_random` (>= 20)
    seeded random directions on the same inputs: the effect and KL with their
    intervals over inputs, and the band the random directions span. One random draw
    is no control: thirty of them spanned [-3.5, +1.7] in log-odds on SmolLM2.
    `progress` as in `fit_probes` (one step per random direction).

    `match="norm"` gives each random direction the tested one's length; `"kl"` scales
    each (by bisection, `kl_rtol` relative tolerance) to the tested direction's mean
    KL of the next-token distribution to the unchanged run: at the same length a
    random direction can disrupt the model twice as much, or half as much, so the
    same disruption is the fairer null for "the probe direction moves the read-out
    more than any push of that size"."""
    if n_random < MIN_RANDOM:
        raise ProbeError(f"n_random must be at least {MIN_RANDOM} for a null band, got {n_random}")
    if not 0 < level < 1:
        raise ProbeError(f"level must be in (0, 1), got {level}")
    if match not in MATCHES:
        raise ProbeError(f"match must be one of {MATCHES}, got {match!r}")
    if not 0 < kl_rtol < 1:
        raise ProbeError(f"kl_rtol must be in (0, 1), got {kl_rtol}")
    tested = steer(runner, probe, inputs, scale, direction=direction, **steer_kwargs)
    if tested.delta is None:
        raise ProbeError("a steering null needs a probe to read the effect with")
    target = float(np.mean(tested.kl)) if tested.kl is not None else np.nan
    if match == "kl" and not target > 0:
        raise ProbeError(
            "match='kl' needs the tested direction to move the next-token distribution "
            f"(its mean KL is {target}): a model with logits, and a scale that changes them"
        )
    width = (runner[probe] if isinstance(probe, str) else probe).dim
    rng = np.random.default_rng(seed)
    null, null_kl, null_scale = [], [], []
    with track(runner, "steering null", n_random, unit="directions", progress=progress) as t:
        for _ in range(n_random):
            v = rng.standard_normal(width)
            v *= tested.direction_norm / np.linalg.norm(v)
            factor = 1.0
            if match == "kl":

                def kl_at(s: float, v: np.ndarray = v) -> float:
                    r = steer(runner, probe, inputs, scale, direction=s * v, **steer_kwargs)
                    return float(np.mean(r.kl))

                factor, _ = _match_kl(kl_at, target, kl_rtol)
            r = steer(runner, probe, inputs, scale, direction=factor * v, **steer_kwargs)
            null.append(float(r.delta.mean()))
            null_kl.append(float(np.mean(r.kl)) if r.kl is not None else np.nan)
            null_scale.append(factor)
            t.advance()
    null_arr = np.asarray(null)
    observed = float(tested.delta.mean())
    low_ci, high_ci = _mean_ci(tested.delta, level, seed)
    kl_low, kl_high = _mean_ci(tested.kl, level, seed) if tested.kl is not None else (np.nan,) * 2
    tail = (1 - level) / 2
    return SteeringNull(
        observed=observed,
        observed_low=low_ci,
        observed_high=high_ci,
        kl=target,
        null=null_arr,
        null_kl=np.asarray(null_kl),
        low=float(np.quantile(null_arr, tail)),
        high=float(np.quantile(null_arr, 1 - tail)),
        p=float((1 + np.sum(np.abs(null_arr) >= abs(observed))) / (n_random + 1)),
        level=level,
        match=match,
        null_scale=np.asarray(null_scale),
        kl_low=kl_low,
        kl_high=kl_high,
    )
