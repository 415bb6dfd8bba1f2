"""Remove it and see: concept erasure at a probe's read site.

Steering adds a direction; erasure takes the information away and asks what the model
does without it (amnesic probing, Elazar et al. 2021). LEACE (Belrose et al. 2023)
removes every linear trace of a concept with the least change to the activations, in
closed form; it comes from EleutherAI's `concept-erasure` package, not rewritten here.
INLP (Ravfogel et al. 2020) is the iterative baseline: train a linear probe, project
its directions out, repeat. A random subspace of the same rank, erased the same way,
is the null every behavioural effect is read against.

An eraser is fitted from the features the runner already holds (no forward pass):
`runner.erase("h[10]")`. `report()` re-probes the erased features (a linear probe
should fall to chance; a non-linear one may not, the known limit of linear erasure);
`intervene(model)` applies it inside the model's forward pass through the same traced
edit `steering.steer` uses; `effects(...)` measures the output's change against the
random-subspace null, every comparison paired over texts by `compare.compare_outcomes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..config import split_submodule
from ..engine.modeling import model_lock, wrap_model
from ..engine.plan import scored_labels
from ..engine.pooling import last_pool
from ..engine.submodules import validate_submodules
from ..errors import ProbeError
from .compare import LEVEL, Comparison, Outcomes, compare_outcomes, outcomes_from
from .steering import _encode, _forward, _position_weight

if TYPE_CHECKING:
    from ..runner import ProbeRunner

METHODS = ("leace", "inlp", "random")
FORMAT = "lm_probe_widgets.eraser/1"
MIN_RANDOM = 5  # random subspaces: fewer give no band to read an effect against
INLP_RANK = 8  # directions INLP removes by default (one per round for a binary concept)


@dataclasses.dataclass(frozen=True)
class _MeanOutcomes(Outcomes):
    """Per-text values of a continuous measure (a log-odds shift, a KL): the score is
    their mean, so `compare_outcomes` gives the paired interval of a mean difference."""

    def score(self) -> float:
        return float(self.gain.mean())


def _per_text(values: np.ndarray) -> _MeanOutcomes:
    values = np.asarray(values, dtype=np.float64)
    return _MeanOutcomes("mean", values, np.zeros(len(values)), np.arange(len(values)))


class ConceptEraser:
    """An affine erasure x -> x - ((x - bias) @ right.T) @ left.T at one read site.

    `left` [width, rank] and `right` [rank, width] span the removed subspace; `bias`
    (the fit data's mean) keeps the mean along it, so the model sees an ordinary value
    there instead of zero. `method` is "leace", "inlp" or "random" (the null)."""

    def __init__(
        self,
        probe: str,
        submodule: str,
        pooling: str,
        method: str,
        left: np.ndarray,
        right: np.ndarray,
        bias: np.ndarray | None,
        classes: Sequence[Any] = (),
        n_fit: int = 0,
        runner: ProbeRunner | None = None,
    ) -> None:
        self.probe, self.submodule, self.pooling, self.method = probe, submodule, pooling, method
        self.left = np.asarray(left, dtype=np.float32)
        self.right = np.asarray(right, dtype=np.float32)
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        self.classes = list(classes)
        self.n_fit = int(n_fit)
        self._runner_ref = weakref.ref(runner) if runner is not None else None

    @property
    def dim(self) -> int:
        return int(self.left.shape[0])

    @property
    def rank(self) -> int:
        return int(self.left.shape[1])

    @property
    def runner(self) -> ProbeRunner | None:
        return self._runner_ref() if self._runner_ref is not None else None

    # -- the map itself -------------------------------------------------------------------
    def apply(self, features: Any) -> Any:
        """Erased features, same shape and type (numpy in, numpy out; torch in, torch
        out); the last axis must be the site's width."""
        if torch.is_tensor(features):
            if features.shape[-1] != self.dim:
                raise ProbeError(f"features have width {features.shape[-1]}, not {self.dim}")
            x = features.float()
            left, right = (torch.as_tensor(a, device=x.device) for a in (self.left, self.right))
            centred = x
            if self.bias is not None:
                centred = x - torch.as_tensor(self.bias, device=x.device)
            return (x - (centred @ right.T) @ left.T).to(features.dtype)
        x = np.asarray(features)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ProbeError(f"features must end in width {self.dim}, got shape {x.shape}")
        x64 = x.astype(np.float64)
        centred = x64 - self.bias if self.bias is not None else x64
        return (x64 - (centred @ self.right.T.astype(np.float64)) @ self.left.T).astype(
            x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        )

    def _edit(self, weight: torch.Tensor | None) -> Callable[[Any], Any]:
        """The traced edit for `steering._forward`: erase at the weighted positions."""

        def edit(value: Any) -> Any:
            if isinstance(value, tuple):
                return (edit(value[0]), *value[1:])
            if not torch.is_tensor(value) or value.shape[-1] != self.dim:
                shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
                raise ProbeError(f"cannot erase a width-{self.dim} subspace from {shape}")
            erased = self.apply(value)
            if weight is None or value.dim() == 2:
                return erased
            w = weight.to(value.device, value.dtype)[..., None]
            return value + w * (erased - value)

        return edit

    def _positions(self, positions: str) -> str:
        if positions == "probe":  # an affine map commutes with the mean: pooled reads erased
            return "last" if self.pooling == "last" else "all"
        if positions not in ("all", "last"):
            raise ProbeError(f"positions must be 'probe', 'all' or 'last', got {positions!r}")
        return positions

    @contextlib.contextmanager
    def intervene(self, model: Any = None, positions: str = "probe") -> Iterator[ErasedRun]:
        """A context in which `run(inputs)` is a traced forward with this erasure
        applied at its site (`positions`: "probe" = where the probe read, "all" real
        tokens, or the "last"); `run(inputs, erase=False)` is the clean run. The model
        is locked for the block; nothing outside it changes."""
        model = self._model(model)
        where = self._positions(positions)
        self._check_site(model)
        with model_lock(model):
            yield ErasedRun(self, model, where)

    def _check_site(self, model: Any) -> None:
        """The site exists on `model` and has this eraser's width (a two-token dry run)."""
        if not self.submodule:
            raise ProbeError("this eraser has no site (fitted on plain features): apply() only")
        dry = validate_submodules(model, [self.submodule])
        path, kind = split_submodule(self.submodule)
        shape = dry.shapes.get(path) if kind == "output" else None
        if shape and shape[-1] != self.dim:
            raise ProbeError(
                f"the eraser was fitted for width {self.dim}, but {self.submodule!r} of this "
                f"model has width {shape[-1]}: fit it on this model's features"
            )

    def _model(self, model: Any) -> Any:
        if model is None:
            runner = self.runner
            if runner is None:
                raise ProbeError("this eraser has no runner (loaded from a file): pass model=")
            return runner.model
        return wrap_model(model, getattr(model, "tokenizer", None))

    # -- checks --------------------------------------------------------------------------
    def report(
        self,
        train: Any = None,
        test: Any = None,
        *,
        level: float = LEVEL,
        mlp: bool = True,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Re-probe after erasure: a fresh linear probe (and an MLP, `mlp=True`) trained
        on erased `train` features and scored on erased `test` features (defaults: the
        runner's training part and test set), each against the majority class, paired
        over test texts. A linear probe should "tie" with the majority (chance); an MLP
        may still read the concept (LEACE removes linear information only).
        `feature_change` is the mean relative size of the edit, |x - x'| / |x|."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        runner = self.runner
        if runner is None:
            raise ProbeError("report() re-probes the runner's features: this eraser has none")
        train = runner.train_part if train is None else train
        test = runner._scored_on if test is None else test
        if train is None or test is None:
            raise ProbeError("report() needs the fit's train and test data: fit with an eval_set")
        cfg = runner[self.probe].config
        x_train, y_train = _features(runner, cfg, train)
        x_test, y_test = _features(runner, cfg, test)
        majority = np.full(len(y_test), np.bincount(y_train).argmax())
        chance = outcomes_from(cfg, test, majority)
        models: dict[str, Any] = {
            "linear": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        }
        if mlp:
            models["mlp"] = lambda: make_pipeline(
                StandardScaler(), MLPClassifier((64,), alpha=1e-3, max_iter=500, random_state=seed)
            )
        if len(np.unique(y_train)) < 2:
            raise ProbeError("the training data hold one class: nothing to re-probe")
        rows = []
        erased_train, erased_test = self.apply(x_train), self.apply(x_test)
        change = np.linalg.norm(x_test - erased_test, axis=1) / (
            np.linalg.norm(x_test, axis=1) + 1e-12
        )
        for kind, make in models.items():
            for state, (a, b) in {
                "clean": (x_train, x_test),
                "erased": (erased_train, erased_test),
            }.items():
                pred = make().fit(a, y_train).predict(b)
                c = compare_outcomes(
                    outcomes_from(cfg, test, pred), chance, kind, "majority", level=level, seed=seed
                )
                rows.append(_row(f"{kind} re-probe ({state})", c, "majority"))
        df = pd.DataFrame(rows).set_index("measure")
        df.attrs["feature_change"] = float(change.mean())
        return df

    def effects(
        self,
        inputs: Any,
        *,
        labels: Any = None,
        positive: Sequence[Any] = (),
        negative: Sequence[Any] = (),
        n_random: int = 20,
        level: float = LEVEL,
        seed: int = 0,
        model: Any = None,
        positions: str = "probe",
        attention_mask: Any = None,
    ) -> pd.DataFrame:
        """Behaviour after erasure, against erasing `n_random` random subspaces of the
        same rank, per text of `inputs` (prompts whose next token is read):

        - `kl`: KL(erased || clean) of the next-token distribution, nats;
        - `log_odds_shift` (with `positive`/`negative` words or token ids): the change in
          log P(positive words) - log P(negative words);
        - `aligned_shift` (also `labels`, 1 = positive): that change signed towards each
          text's own label (negative: the output lost the concept);
        - `readout_accuracy`: is the model's verdict (log-odds > 0) the label?

        Each row compares the erasure with the random subspaces' mean on the same texts
        (paired bootstrap interval and permutation p, `compare.compare_outcomes`; the
        verdict "beats" means larger); `band_low`/`band_high` are the central `level`
        range of the random draws' means, `clean` the unerased value."""
        if n_random < MIN_RANDOM:
            raise ProbeError(f"n_random must be at least {MIN_RANDOM} for a null, got {n_random}")
        model = self._model(model)
        where = self._positions(positions)
        self._check_site(model)
        ids, mask = _encode(model, inputs, attention_mask)
        n = ids.shape[0]
        if n < 2:
            raise ProbeError("effects are compared over texts: give at least two inputs")
        pos_ids, neg_ids = _word_ids(model, positive), _word_ids(model, negative)
        if bool(pos_ids) != bool(neg_ids):
            raise ProbeError("give both positive= and negative= words, or neither")
        y = None
        if labels is not None:
            y = np.asarray(labels).astype(np.int64).reshape(-1)
            if len(y) != n or not np.isin(y, (0, 1)).all():
                raise ProbeError(f"labels must be {n} values of 0 or 1 (1 = positive)")
            if not pos_ids:
                raise ProbeError("labels= needs positive= and negative= words to read a verdict")
        with self.intervene(model, where) as run:
            clean = run.logprobs(ids, mask, erase=False)
            erased = run.logprobs(ids, mask)
        nulls = [
            ErasedRun(random_like(self, seed + 1 + j), model, where).logprobs(ids, mask)
            for j in range(n_random)
        ]
        measures = _measures(clean, erased, nulls, pos_ids, neg_ids, y)
        rows = []
        for name, (clean_v, erased_v, null_v) in measures.items():
            c = compare_outcomes(
                _per_text(erased_v),
                _per_text(null_v.mean(0)),
                self.method,
                "random",
                level=level,
                seed=seed,
            )
            tail = (1 - level) / 2
            row = _row(name, c, "random")
            row.update(
                clean=float(np.mean(clean_v)) if clean_v is not None else np.nan,
                band_low=float(np.quantile(null_v.mean(1), tail)),
                band_high=float(np.quantile(null_v.mean(1), 1 - tail)),
            )
            rows.append(row)
        df = pd.DataFrame(rows).set_index("measure")
        df.attrs.update(n_random=n_random, rank=self.rank, level=level)
        return df

    # -- saved without pickle ------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Arrays in safetensors, the rest as JSON metadata: loading runs no code."""
        from safetensors import SafetensorError
        from safetensors.numpy import save_file

        tensors = {"left": self.left, "right": self.right}
        if self.bias is not None:
            tensors["bias"] = self.bias
        meta = {
            "format": FORMAT,
            "eraser": json.dumps(
                {
                    "probe": self.probe,
                    "submodule": self.submodule,
                    "pooling": self.pooling,
                    "method": self.method,
                    "classes": [_jsonable(c) for c in self.classes],
                    "n_fit": self.n_fit,
                }
            ),
        }
        path = Path(path)
        if path.is_dir():
            raise ProbeError(f"{str(path)!r} is a folder: give a file name (eraser.safetensors)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), meta)
        except (OSError, SafetensorError) as e:
            raise ProbeError(f"cannot save to {str(path)!r}: {e}") from e

    @classmethod
    def load(cls, path: str | Path, runner: ProbeRunner | None = None) -> ConceptEraser:
        """An eraser saved with `save`; `runner` (optional) for `report()` and the model."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise ProbeError(f"no saved eraser at {str(path)!r}")
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as e:
            raise ProbeError(f"{str(path)!r} is not a saved eraser: {e}") from e
        if meta.get("format") != FORMAT or not {"left", "right"} <= set(arrays):
            raise ProbeError(f"{str(path)!r} is not a saved lm_probe_widgets eraser")
        m = json.loads(meta["eraser"])
        if runner is not None and runner[m["probe"]].dim != arrays["left"].shape[0]:
            raise ProbeError(f"the saved eraser's width does not match probe {m['probe']!r}")
        return cls(
            m["probe"],
            m["submodule"],
            m["pooling"],
            m["method"],
            arrays["left"],
            arrays["right"],
            arrays.get("bias"),
            m["classes"],
            m["n_fit"],
            runner,
        )

    # -- reprs ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"ConceptEraser({self.method}, probe={self.probe!r}, site={self.submodule!r}, "
            f"rank {self.rank} of width {self.dim}, fitted on {self.n_fit} rows)"
        )

    def _repr_html_(self) -> str:
        cells = [
            ("method", self.method),
            ("probe", self.probe),
            ("site", self.submodule),
            ("rank removed", f"{self.rank} of {self.dim}"),
            ("classes", ", ".join(map(str, self.classes))),
            ("fitted on", f"{self.n_fit} rows"),
        ]
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in cells
        )
        return f'<div class="lpw-repr"><b>ConceptEraser</b><table>{body}</table></div>'


class ErasedRun:
    """Traced forwards with an eraser at its site (from `ConceptEraser.intervene`)."""

    def __init__(self, eraser: ConceptEraser, model: Any, positions: str) -> None:
        self.eraser, self.model, self.positions = eraser, model, positions
        self.path, self.kind = split_submodule(eraser.submodule)

    def __call__(
        self, inputs: Any, attention_mask: Any = None, *, erase: bool = True
    ) -> tuple[torch.Tensor, Any]:
        """(the activation at the site, as the model went on with it; the model output)."""
        ids, mask = _encode(self.model, inputs, attention_mask)
        return self._run(ids, mask, erase)

    def _run(self, ids: torch.Tensor, mask: torch.Tensor, erase: bool) -> tuple[torch.Tensor, Any]:
        edit = self.eraser._edit(_position_weight(mask, self.positions)) if erase else None
        return _forward(self.model, self.path, self.kind, ids, mask, edit)

    def logprobs(self, ids: torch.Tensor, mask: torch.Tensor, erase: bool = True) -> torch.Tensor:
        """Next-token log-probabilities after each input's last real token."""
        _, out = self._run(ids, mask, erase)
        logits = getattr(out, "logits", out if torch.is_tensor(out) else None)
        if not torch.is_tensor(logits) or logits.dim() != 3:
            raise ProbeError("effects need a causal LM's next-token logits")
        return torch.log_softmax(last_pool(logits, mask.to(logits.device)).float(), -1).cpu()


# -- fitting ------------------------------------------------------------------------------
def fit_eraser(
    runner: ProbeRunner,
    name: str,
    method: str = "leace",
    *,
    rank: int | None = None,
    dataset: Any = None,
    seed: int = 0,
) -> ConceptEraser:
    """An eraser for probe `name`'s concept at its read site, fitted on `dataset`
    (default: the runner's training part) from cached features. `method`: "leace"
    (its rank is set by the concept: classes - 1), "inlp" (`rank` directions, default
    8, one linear probe per round) or "random" (a random subspace of `rank`)."""
    _check_method(method, rank)
    if name not in runner.probes:
        known = [c.name for c in runner.configs]
        hint = "fit the runner first" if name in known else f"known probes: {known}"
        raise ProbeError(f"no fitted probe {name!r} to erase: {hint}")
    probe = runner[name]
    cfg = probe.config
    if cfg.task != "classification":
        raise ProbeError(f"probe {name!r} is a {cfg.task} probe: erasure needs class labels")
    if rank is not None and not 1 <= rank < probe.dim:
        raise ProbeError(f"rank must be between 1 and {probe.dim - 1} (the site's width)")
    ds = runner.train_part if dataset is None else dataset
    if ds is None:
        raise ProbeError("no training data recorded: fit the runner, or pass dataset=")
    x, y = _features(runner, cfg, ds)
    eraser = eraser_from_features(x, y, method, rank=rank, n_classes=len(probe.classes), seed=seed)
    eraser.probe, eraser.submodule, eraser.pooling = name, cfg.submodule, cfg.pooling
    eraser.classes = list(probe.classes)
    eraser._runner_ref = weakref.ref(runner)
    return eraser


def eraser_from_features(
    features: Any,
    labels: Any,
    method: str = "leace",
    *,
    rank: int | None = None,
    n_classes: int | None = None,
    seed: int = 0,
) -> ConceptEraser:
    """An eraser fitted on plain arrays: `features` [rows, width], `labels` the class
    index of each row (0 .. n_classes - 1). No site: `apply` only, until a runner's
    `erase` names one."""
    _check_method(method, rank)
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ProbeError(f"features must be [rows, width] with one label per row, got {x.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise ProbeError("labels must be class indices (0, 1, ...)")
    width = x.shape[1]
    if rank is not None and not 1 <= rank < width:
        raise ProbeError(f"rank must be between 1 and {width - 1} (the width is {width})")
    if len(np.unique(y)) < 2:
        raise ProbeError("the fit data hold one class: there is no concept to erase")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    bias = x.mean(0)
    if method == "leace":
        left, right, bias = _leace(x, y, k)
    elif method == "inlp":
        basis = _inlp(x, y, INLP_RANK if rank is None else int(rank), seed)
        left, right = basis, basis.T
    else:
        basis = _random_basis(width, int(rank), seed)
        left, right = basis, basis.T
    return ConceptEraser("", "", "mean", method, left, right, bias, range(k), len(x))


def random_like(eraser: ConceptEraser, seed: int) -> ConceptEraser:
    """A random orthogonal subspace of `eraser`'s rank, erased about the same mean."""
    basis = _random_basis(eraser.dim, eraser.rank, seed)
    return ConceptEraser(
        eraser.probe,
        eraser.submodule,
        eraser.pooling,
        "random",
        basis,
        basis.T,
        eraser.bias,
        eraser.classes,
        eraser.n_fit,
    )


def _check_method(method: str, rank: Any) -> None:
    if method not in METHODS:
        raise ProbeError(f"method must be one of {METHODS}, got {method!r}")
    if method == "leace" and rank is not None:
        raise ProbeError("LEACE's rank is set by the concept (classes - 1): leave rank=None")
    if method == "random" and rank is None:
        raise ProbeError("a random subspace needs rank= (e.g. the LEACE eraser's .rank)")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer))):
        raise ProbeError(f"rank must be an integer, got {rank!r}")


def _features(runner: Any, cfg: Any, ds: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cached features of `ds` at the probe's site and their class indices."""
    if getattr(cfg, "kind", "linear") == "attention":
        raise ProbeError(
            f"probe {cfg.name!r} is an attention probe: it reads token rows, not one vector "
            "per example; erase at a linear probe of the same site (a pooling)"
        )
    x = runner.features(ds, [cfg.feature_key])[cfg.feature_key]
    keep, y = scored_labels(cfg, ds)
    x = np.asarray(x, dtype=np.float64)
    if len(keep) != len(x):
        x = x[keep]
    return x, np.asarray(y, dtype=np.int64)


def _leace(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """LEACE from the `concept-erasure` package, as a low-rank (left, right, bias)."""
    from concept_erasure import LeaceFitter

    z = np.eye(n_classes)[y] if n_classes > 2 else y[:, None].astype(np.float64)
    fitted = LeaceFitter.fit(torch.from_numpy(x), torch.from_numpy(z)).eraser
    # the package may return a full-width factorisation (its covariance-trace guard):
    # keep the directions the edit actually moves
    edit = (fitted.proj_left @ fitted.proj_right).numpy()
    u, s, vh = np.linalg.svd(edit)
    keep = s > 1e-8 * max(float(s[0]), 1e-30)
    left = u[:, keep] * s[keep]
    right = vh[keep]
    bias = fitted.bias.numpy() if fitted.bias is not None else np.zeros(x.shape[1])
    return left, right, bias


def _inlp(x: np.ndarray, y: np.ndarray, rank: int, seed: int) -> np.ndarray:
    """Iterative nullspace projection: fit a linear probe, project its directions out,
    repeat until `rank` orthonormal directions are removed; returns them [width, rank]."""
    from sklearn.linear_model import LogisticRegression

    centred = x - x.mean(0)
    centred = centred / (centred.std() + 1e-30)  # one scale: C=1 then regularises sensibly
    basis = np.zeros((x.shape[1], 0))
    while basis.shape[1] < rank:
        rest = centred - (centred @ basis) @ basis.T
        w = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(rest, y).coef_
        w = w - (w @ basis) @ basis.T
        q, r = np.linalg.qr(w.T)
        q = q[:, np.abs(np.diag(r)) > 1e-10]
        if q.shape[1] == 0:
            break  # nothing linear left to find
        basis = np.concatenate([basis, q[:, : rank - basis.shape[1]]], axis=1)
    return basis


def _random_basis(width: int, rank: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((width, rank)))
    return q


# -- behaviour ----------------------------------------------------------------------------
def _word_ids(model: Any, words: Sequence[Any]) -> list[int]:
    """First token id of each word (ints are taken as ids)."""
    if isinstance(words, str):
        raise ProbeError("give words as a list, e.g. positive=[' good', ' great']")
    tok = getattr(model, "tokenizer", None)
    out = []
    for w in words:
        if isinstance(w, (int, np.integer)):
            out.append(int(w))
        elif tok is None:
            raise ProbeError("words need a tokenizer: pass token ids instead")
        else:
            ids = tok.encode(w, add_special_tokens=False)
            if not ids:
                raise ProbeError(f"word {w!r} has no tokens")
            out.append(int(ids[0]))
    return sorted(set(out))


def _measures(
    clean: torch.Tensor,
    erased: torch.Tensor,
    nulls: list[torch.Tensor],
    pos: list[int],
    neg: list[int],
    y: np.ndarray | None,
) -> dict[str, tuple[np.ndarray | None, np.ndarray, np.ndarray]]:
    """{measure: (clean per text or None, erased per text, random [draw, text])}."""

    def kl(after: torch.Tensor) -> np.ndarray:
        return (after.exp() * (after - clean)).sum(-1).numpy()

    out: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {
        "kl": (None, kl(erased), np.stack([kl(r) for r in nulls]))
    }
    if not pos:
        return out

    def odds(lp: torch.Tensor) -> np.ndarray:
        return (torch.logsumexp(lp[:, pos], -1) - torch.logsumexp(lp[:, neg], -1)).numpy()

    base = odds(clean)
    shift = odds(erased) - base
    null_shift = np.stack([odds(r) - base for r in nulls])
    out["log_odds_shift"] = (None, shift, null_shift)
    if y is not None:
        sign = np.where(y == 1, 1.0, -1.0)
        out["aligned_shift"] = (None, sign * shift, sign * null_shift)
        right = (base > 0) == (y == 1)
        null_right = np.stack([((odds(r) > 0) == (y == 1)) for r in nulls]).astype(float)
        out["readout_accuracy"] = (
            right.astype(float),
            ((odds(erased) > 0) == (y == 1)).astype(float),
            null_right,
        )
    return out


def _row(measure: str, c: Comparison, against: str) -> dict[str, Any]:
    return {
        "measure": measure,
        "value": c.a_score,
        against: c.b_score,
        "difference": c.difference,
        "low": c.low,
        "high": c.high,
        "p": c.p,
        "verdict": c.verdict,
        "n_texts": c.n_texts,
    }


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
