"""An online logistic-regression probe with honest early stopping.

Each probe trains a small bank of L2 strengths side by side (one batched matmul),
scores every batch before it learns from it (the prequential / online code
length of Voita & Titov), watches the loss on a real held-out validation split,
and keeps the weights of the best (strength, step) it has seen. The maths is
written over an optional leading probe axis: core.engine.probe_stack steps many
probes of one shape with the same functions.

Features are standardised inside the probe, with statistics from the training
data, folded into the weights (the standardised rows are never written out).

Online Adam with a fixed step size hovers around the optimum instead of reaching
it, so once training ends `refine` fits every strength to convergence on the
cached training features (full-batch L-BFGS from the online weights, every strength
and fold at once: core.engine.final_fit) and k-fold cross-validation picks the
strength (the validation split alone with `cv_folds=0`), looking a decade past the
grid's edge when it picks the edge (core.engine.l2_search).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import ProbeConfig
from ..errors import ProbeError
from ..labels import class_array, encode_labels, label_key
from .final_fit import FinalProblem, fit_many, group_bytes
from .l2_search import GridSearch
from .rows import concat_rows, float_rows
from .states import ProbeState


@dataclass
class _Scaler:
    """Running mean/variance (Chan et al.), frozen once the first epoch is done."""

    n: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    frozen: bool = False

    def update(self, x: np.ndarray) -> None:
        if self.frozen or len(x) == 0:
            return
        x = x.astype(np.float64)
        bn, bmean = len(x), x.mean(0)
        bm2 = ((x - bmean) ** 2).sum(0)
        if self.mean is None:
            self.n, self.mean, self.m2 = bn, bmean, bm2
            return
        delta = bmean - self.mean
        total = self.n + bn
        self.mean = self.mean + delta * bn / total
        self.m2 = self.m2 + bm2 + delta**2 * self.n * bn / total
        self.n = total

    @property
    def scale(self) -> np.ndarray:
        var = self.m2 / max(self.n, 1)
        std = np.sqrt(var)
        return np.where(std > 1e-8, std, 1.0)


@dataclass
class TrainingRecord:
    """What happened while fitting: the history the monitor and reprs show."""

    steps: int = 0
    epochs_done: int = 0
    examples_seen: int = 0
    best_step: int | None = None
    best_val_loss: float = math.inf
    best_l2: float | None = None
    evals_since_best: int = 0
    stop_reason: str | None = None
    state: str = ProbeState.NOT_FITTED
    history: list[dict[str, Any]] = field(default_factory=list)
    code_length_bits: float = 0.0  # prequential code of the first pass over the data
    uniform_bits: float = 0.0
    refined: bool = False  # weights in use = the converged fit of `refine`
    refined_val_loss: float = math.nan  # held-out loss of those weights (k-fold CV or split)
    cross_validated: bool = False  # the strength was chosen by k-fold CV on train + val
    # the strengths the final fit compared, ascending: the grid, extended past an edge
    # it chose (core.engine.l2_search); None when nothing chose
    l2_searched: list[float] | None = None

    @property
    def val_loss(self) -> float:
        """Validation loss of the weights in use."""
        if self.refined:
            return self.refined_val_loss
        return self.best_val_loss if math.isfinite(self.best_val_loss) else math.nan


class LinearProbe:
    """Multinomial logistic regression on pooled features, trained online."""

    _runner_ref: weakref.ref | None = None  # set by the runner whose results hold it

    def __init__(self, config: ProbeConfig, dim: int) -> None:
        if config.classes is None:  # made by hand, outside a fit plan: the original's 0/1
            config = dataclasses.replace(config, classes=(0, 1))
        self.classes = class_array(config.classes)
        self._class_index = {label_key(c): i for i, c in enumerate(config.classes)}
        self._init_params(config, dim, len(config.classes))

    def _init_params(self, config: ProbeConfig, dim: int, c: int) -> None:
        """Weights, optimiser state and records for `c` outputs per L2 member."""
        self.config = config
        self.name: str = config.name  # type: ignore[assignment]
        self.dim = int(dim)
        self.record = TrainingRecord()
        self.metrics: dict[str, Any] = {}  # latest held-out metrics, set by the runner
        self.scaler = _Scaler()
        k = len(config.l2)
        gen = torch.Generator().manual_seed(config.seed)
        # A tiny random start breaks symmetry between classes without favouring any.
        w0 = torch.zeros(k, self.dim, c).normal_(0.0, 1e-3, generator=gen)
        # Parameters live in numpy, laid out [dim, members, classes] so all L2 members
        # score a batch with one GEMM; `weight`/`bias` are torch views of them.
        self._w = np.ascontiguousarray(w0.numpy().transpose(1, 0, 2))
        self._b = np.zeros((k, c), dtype=np.float32)
        self._l2w = np.asarray(config.l2, dtype=np.float32)[None, :, None]
        # Adam (torch.optim.Adam's defaults) with the gradient of the L2-penalised softmax
        # loss written out: autograd and torch's small-GEMM dispatch cost ~10x the
        # arithmetic at probe sizes, and probe steps must stay cheap with 100+ probes.
        self._adam_t = 0
        self._adam_m = (np.zeros_like(self._w), np.zeros_like(self._b))
        self._adam_v = (np.zeros_like(self._w), np.zeros_like(self._b))
        self._ztab: tuple[Any, ...] | None = None
        # Best (L2 member, raw-space weight [dim, classes], bias) seen on validation. The
        # scaler is folded in, so later scaler updates cannot change what was best.
        self._best: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def runner(self) -> Any:
        """The runner whose results hold this probe (its repr reads the validity card
        there); None for a probe made by hand or once that runner is gone."""
        return self._runner_ref() if self._runner_ref is not None else None

    # -- labels ---------------------------------------------------------------------
    def encode(self, y: np.ndarray) -> np.ndarray:
        """Label values -> class indices; unknown labels are a clear error."""
        return encode_labels(self.name, self.config.classes, y, self._class_index)

    # -- training -------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.record.state

    @property
    def active(self) -> bool:
        return self.record.state == ProbeState.TRAINING

    @property
    def weight(self) -> torch.Tensor:
        """Training weights of every L2 member, [members, dim, classes] (a view)."""
        return torch.from_numpy(self._w).permute(1, 0, 2)

    @property
    def bias(self) -> torch.Tensor:
        return torch.from_numpy(self._b)

    def _scaler_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """float32 (mean, 1/scale), cached until the scaler changes."""
        sc = self.scaler
        if sc.mean is None:
            raise ProbeError(f"probe {self.name!r} is not fitted yet: call fit_probes first")
        tab = self._ztab
        if tab is None or tab[0] is not sc or tab[1] is not sc.mean or tab[2] != sc.n:
            mu = np.asarray(sc.mean, dtype=np.float32)
            inv = (1.0 / sc.scale).astype(np.float32)
            tab = self._ztab = (sc, sc.mean, sc.n, mu, inv)
        return tab[3], tab[4]

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        """float32 (x - mean) / scale."""
        mu, inv = self._scaler_arrays()
        return (np.asarray(x, dtype=np.float32) - mu) * inv

    def _outputs(self, x: np.ndarray) -> np.ndarray:  # -> [n, k, c]
        """Linear outputs of all L2 members for unstandardised rows, with one GEMM."""
        return scores(np.asarray(x, dtype=np.float32), self._w, self._b, *self._scaler_arrays())

    def _log_proba(self, x: np.ndarray) -> np.ndarray:  # -> [n, k, c]
        return _log_softmax(self._outputs(x))

    def _losses(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Mean loss per member [k] of outputs [n, k, c]: cross-entropy here."""
        return _member_losses(_log_softmax(out), y)

    def _loss_grad(self, out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(loss per member, d loss / d outputs) for one mini-batch."""
        logp = _log_softmax(out)
        return _member_losses(logp, y), _logit_grad(logp, y)

    def uniform_bits(self, n: int) -> float:
        """Bits of the uniform code for `n` labels (the MDL baseline)."""
        return n * math.log2(len(self.classes))

    def code_length(self, x: np.ndarray, y_idx: np.ndarray) -> float:
        """Bits to transmit `y` with the current model, before learning from it."""
        if self.scaler.mean is None:
            return len(y_idx) * math.log2(len(self.classes))
        logp = self._log_proba(x)[:, self._current_member()]
        return float(-logp[np.arange(len(y_idx)), y_idx].sum(dtype=np.float64) / math.log(2))

    def step(self, x: np.ndarray, y_idx: np.ndarray, lr: float | None = None) -> float:
        """One Adam step on a mini-batch (learning rate `lr`, default the config's);
        returns the current best member's loss."""
        x, y_idx = np.asarray(x, dtype=np.float32), np.asarray(y_idx)
        losses, g = self._loss_grad(self._outputs(x), y_idx)
        self._adam_t += 1
        adam_update(
            (self._w, self._b),
            weight_grads(x, g, self._w, self._l2w, *self._scaler_arrays()),
            self._adam_m,
            self._adam_v,
            self._adam_t,
            self.config.lr if lr is None else lr,
        )
        self.record.steps += 1
        self.record.examples_seen += len(y_idx)
        return float(losses[self._current_member()])

    def evaluate(self, x: np.ndarray, y_idx: np.ndarray) -> dict[str, Any]:
        """Validation loss per L2 strength; remembers the best weights seen."""
        return self.note_validation(self.val_losses(x, y_idx))

    def val_losses(self, x: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """Mean loss of each L2 member [k] on unstandardised rows."""
        return self._losses(self._outputs(x), np.asarray(y_idx))

    def note_validation(self, losses: np.ndarray) -> dict[str, Any]:
        """Record the members' validation `losses` [k] after a step: the best member
        and step so far, and what early stopping counts."""
        member = int(np.argmin(losses))
        val_loss = float(losses[member])
        rec = self.record
        improved = val_loss < rec.best_val_loss - self.config.threshold
        if improved or self._best is None:
            rec.best_val_loss = min(val_loss, rec.best_val_loss)
            rec.best_step = rec.steps
            rec.best_l2 = float(self.config.l2[member])
            rec.evals_since_best = 0
            self._best = (member, *self._fold(member))
        else:
            rec.evals_since_best += 1
        return {"val_loss": val_loss, "improved": improved}

    def should_stop(self) -> str | None:
        """A reason to stop now, or None."""
        cfg, rec = self.config, self.record
        if rec.steps >= cfg.max_steps:
            return f"reached max_steps={cfg.max_steps}"
        if (
            cfg.early_stopping
            and cfg.validation != "none"
            and rec.steps >= cfg.warmup_steps
            and rec.evals_since_best >= cfg.patience
        ):
            return (
                f"validation loss did not improve by more than {cfg.threshold:g} for "
                f"{cfg.patience} evaluations (best {rec.best_val_loss:.4f} at step {rec.best_step})"
            )
        return None

    def refine(
        self,
        x: np.ndarray,
        y_idx: np.ndarray,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        *,
        merge_validation: bool = True,
        max_iter: int = 500,
        tol: float = 1e-4,
        device: torch.device | str | None = None,
        groups: np.ndarray | None = None,
        val_groups: np.ndarray | None = None,
    ) -> None:
        """Fit the L2 strengths to convergence (full-batch L-BFGS from the online
        weights) and keep one, as `LogisticRegressionCV` does: with `cv_folds` >= 2
        the strength with the lowest k-fold cross-validated log-loss over training +
        validation rows, refitted on all of them (a 60-row validation slice alone
        picked strengths that cost points); with `cv_folds=0` the lowest loss on the
        validation split, or the strength in use without one. A choice on the grid's
        edge extends the grid a decade past it (x10 or /10), up to
        l2_search.EXTENSIONS times (`record.l2_searched` keeps what was compared).
        `merge_validation=False` keeps validation rows out of training (they are the
        evaluation set when `validation="eval"`). Every strength and fold is solved at once
        (core.engine.final_fit), on `device` (default the CPU). `groups` (and
        `val_groups`), one id per row: folds keep each group whole (grouped CV)."""
        inputs = dict(x=x, y_idx=y_idx, x_val=x_val, y_val=y_val)
        inputs.update(merge_validation=merge_validation, groups=groups, val_groups=val_groups)
        refine_many([self], [inputs], max_iter=max_iter, tol=tol, device=device)

    def final_problem(
        self,
        x: np.ndarray,
        y_idx: np.ndarray,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        merge_validation: bool = True,
        groups: np.ndarray | None = None,
        val_groups: np.ndarray | None = None,
    ) -> tuple[FinalProblem, list[int]]:
        """`refine`'s problem (core.engine.final_fit) and the L2 members it fits, for
        `final_search`: probes whose problems are solved together (`refine_many`)."""
        mu, inv = self._scaler_arrays()
        x, y_idx = float_rows(x), np.asarray(y_idx)  # device rows stay there
        folds = []
        if self.config.cv_folds >= 2:
            if x_val is not None and merge_validation:
                x = concat_rows(x, x_val)
                y_idx = np.concatenate([y_idx, np.asarray(y_val)])
                if groups is not None:
                    groups = np.concatenate([groups, np.asarray(val_groups)])
            folds = cv_folds(y_idx, self.config.cv_folds, self.config.seed, groups)
        if folds or x_val is not None:
            members = list(range(len(self.config.l2)))
        else:
            members = [self._current_member()]
        w0, b0 = _host(self._w)[:, members], _host(self._b)[members]
        l2 = [self.config.l2[m] for m in members]
        return FinalProblem(x, y_idx, w0, b0, l2, mu, inv, folds), members

    def final_search(
        self,
        problem: FinalProblem,
        members: list[int],
        w: np.ndarray,
        b: np.ndarray,
        cv_loss: np.ndarray,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> GridSearch:
        """The solved `members` of `problem` and their held-out losses (`refine`)."""
        losses = self._strength_losses(bool(problem.folds), w, b, cv_loss, x_val, y_val)
        default = self._current_member()
        return GridSearch(list(members), list(problem.l2), w, b, losses, default)

    def extension(self, problem: FinalProblem, search: GridSearch) -> FinalProblem | None:
        """`problem` for the strength a decade past the grid's edge the search chose
        (from the edge's fit; its folds from zero), or None."""
        strength = search.next_strength()
        if strength is None:
            return None
        i = search.chosen
        w0, b0 = search.w[:, i : i + 1], search.b[i : i + 1]
        return dataclasses.replace(problem, w0=w0, b0=b0, l2=[strength])

    def _strength_losses(
        self,
        cross_validated: bool,
        w: np.ndarray,
        b: np.ndarray,
        cv_loss: np.ndarray,
        x_val: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> np.ndarray | None:
        """Held-out loss [S] of each solved strength: k-fold CV, else the validation
        split's loss of the fits `w` [d, S, c], `b` [S, c]; None without either."""
        if cross_validated:
            return np.asarray(cv_loss, dtype=np.float64)
        if x_val is None:
            return None
        out = scores(np.asarray(x_val, dtype=np.float32), w, b, *self._scaler_arrays())
        return np.asarray(self._losses(out, np.asarray(y_val)), dtype=np.float64)

    def take_search(self, search: GridSearch, cross_validated: bool) -> None:
        """Keep the grid's fits in the bank and predict with the chosen strength's."""
        g = len(search.members)
        self._w[:, search.members], self._b[search.members] = search.w[:, :g], search.b[:g]
        i = search.chosen
        self._best = (search.bank_member(), *self._raw(search.w[:, i], search.b[i]))
        rec = self.record
        rec.best_l2 = float(search.strengths[i])
        val_loss = math.nan if search.losses is None else float(search.losses[i])
        rec.refined, rec.refined_val_loss = True, val_loss
        rec.cross_validated = cross_validated
        rec.l2_searched = search.searched

    def finish(self, state: str, reason: str | None = None) -> None:
        """End (or pause: stopped, interrupted) training; predictions use the best
        weights seen on the validation split. The scaler keeps learning until the
        first pass is complete, so a resumed first pass continues it."""
        self.record.state = state
        if reason is not None:
            self.record.stop_reason = reason

    def snapshot(self) -> dict[str, Any]:
        """Everything training changes, to put back if a resumed fit fails."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "config"})

    def restore(self, saved: dict[str, Any]) -> None:
        vars(self).update(copy.deepcopy(saved))

    def _current_member(self) -> int:
        return self._best[0] if self._best is not None else 0

    def _fold(self, member: int) -> tuple[np.ndarray, np.ndarray]:
        """Weights of one L2 member mapped to raw feature space (float64)."""
        return self._raw(self._w[:, member], self._b[member])

    def _raw(self, w: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        """Standardised weights [dim, c] and bias [c] mapped to raw feature space."""
        w = _host(w).astype(np.float64) / self.scaler.scale[:, None]
        b = _host(b).astype(np.float64) - self.scaler.mean @ w
        return w, b

    def _final_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Raw-space (weight [dim, classes], bias) used for prediction."""
        if self._best is not None:
            return self._best[1], self._best[2]
        if self.scaler.mean is None:
            raise ProbeError(f"probe {self.name!r} is not fitted yet: call fit_probes first")
        return self._fold(self._current_member())

    # -- prediction -----------------------------------------------------------------
    def _check_features(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ProbeError(
                f"probe {self.name!r} expects features of width {self.dim}, got shape {x.shape}; "
                "use runner.get_probe_features(...) to make them"
            )
        return x

    def decision_function(self, x: Any) -> np.ndarray:
        x = self._check_features(x)
        w, b = self._final_params()
        return x.astype(np.float64) @ w + b

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, columns in the order of `classes`."""
        logits = torch.as_tensor(self.decision_function(x))
        return torch.softmax(logits, -1).numpy()

    def predict(self, x: Any) -> np.ndarray:
        """Predicted class values (not indices), of the classes' own type."""
        return self.classes[self.decision_function(x).argmax(1)]

    def score(self, x: Any, y: Any) -> float:
        """Accuracy on (x, y), like scikit-learn's `score`."""
        return float(np.mean(self.encode(np.asarray(y)) == self.decision_function(x).argmax(1)))

    # -- directions -----------------------------------------------------------------
    @property
    def coef_(self) -> np.ndarray:
        """Weights in the raw feature space, [classes, dim] (scaler folded in)."""
        return self._final_params()[0].T.astype(np.float32)

    @property
    def intercept_(self) -> np.ndarray:
        return self._final_params()[1].astype(np.float32)

    def direction(self, positive: Any = None) -> np.ndarray:
        """Unit vector in activation space that raises the logit of `positive`
        (default: the last class) against the others."""
        coef = self.coef_
        i = len(self.classes) - 1 if positive is None else self._class_index[label_key(positive)]
        v = coef[i] - np.delete(coef, i, axis=0).mean(0)
        return v / (np.linalg.norm(v) + 1e-12)

    def __repr__(self) -> str:
        return (
            f"LinearProbe({self.name!r}, dim={self.dim}, classes={list(self.config.classes)}, "
            f"state={str(self.state)!r}, steps={self.record.steps})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from ...display.probe_html import probe_mimebundle  # lazy: core never imports HTML code

        return probe_mimebundle(self, include, exclude)

    def _repr_html_(self) -> str:
        from ...display.probe_html import probe_html

        return probe_html(self)

    # -- persistence helpers ----------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        w, b = self._final_params()
        return {"weight": w, "bias": b}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        w = np.asarray(arrays["weight"], dtype=np.float64)
        b = np.asarray(arrays["bias"], dtype=np.float64)
        if w.shape != (self.dim, len(self.classes)) or b.shape != (len(self.classes),):
            raise ProbeError(
                f"saved probe {self.name!r} has weights {w.shape}, expected "
                f"({self.dim}, {len(self.classes)}): was it saved for another model?"
            )
        self._best = (0, w, b)
        self.scaler.frozen = True


# The maths of online training, written once for one probe (rows [n, d], weights
# [d, k, c]) or for P probes stacked along a leading axis ([P, n, d], [P, d, k, c]):
# core.engine.probe_stack steps many probes with the same calls. The arrays are numpy
# arrays on the CPU or torch tensors on any device; the few operations the two spell
# differently go through `_ops` (on this CPU numpy's small GEMMs and broadcasts are
# about 2x faster than torch's at probe sizes: benchmarks/README.md, "Online maths").


def refine_many(
    probes: Sequence[LinearProbe],
    inputs: Iterable[dict[str, Any]],
    *,
    max_iter: int = 500,
    tol: float = 1e-4,
    device: torch.device | str | None = None,
) -> None:
    """`probe.refine(**kw)` for each probe and its `inputs` kw (an iterable: each is
    read when its turn comes), the final fits of probes of one shape in one batched
    solve (core.engine.final_fit.fit_many): what each probe's own `refine` gives, to
    float rounding, at one product per step. Probes are posed and solved in runs
    whose rows fit final_fit.group_bytes, so memory stays bounded however many."""
    run: list[tuple[LinearProbe, dict[str, Any], FinalProblem, list[int]]] = []
    size = 0
    for probe, kw in zip(probes, inputs, strict=True):
        problem, members = probe.final_problem(**kw)
        run.append((probe, kw, problem, members))
        size += problem.x.nbytes
        if size >= group_bytes(device):
            _solve_run(run, max_iter, tol, device)
            run, size = [], 0
    _solve_run(run, max_iter, tol, device)


def _solve_run(run: list, max_iter: int, tol: float, device: torch.device | str | None) -> None:
    """The run's final fits, then, while some choices sit on their grid's edge, the
    strength a decade past each such edge: all of them in one further batched solve."""
    solved = fit_many([r[2] for r in run], max_iter=max_iter, tol=tol, device=device)
    searches = [
        probe.final_search(problem, members, *fitted, kw.get("x_val"), kw.get("y_val"))
        for (probe, kw, problem, members), fitted in zip(run, solved, strict=True)
    ]
    while True:
        more = [(i, r[0].extension(r[2], searches[i])) for i, r in enumerate(run)]
        more = [(i, q) for i, q in more if q is not None]
        if not more:
            break
        solved = fit_many([q for _, q in more], max_iter=max_iter, tol=tol, device=device)
        for (i, q), (w, b, cv_loss) in zip(more, solved, strict=True):
            probe, kw = run[i][0], run[i][1]
            xv, yv = kw.get("x_val"), kw.get("y_val")
            losses = probe._strength_losses(bool(q.folds), w, b, cv_loss, xv, yv)
            searches[i].add(q.l2[0], w, b, losses)
    for (probe, _, problem, _), search in zip(run, searches, strict=True):
        probe.take_search(search, cross_validated=bool(problem.folds))


class _NumpyOps:
    """The operations the maths spells differently, for numpy arrays."""

    sqrt, exp = staticmethod(np.sqrt), staticmethod(np.exp)

    @staticmethod
    def rate(lr: Any, like: np.ndarray) -> np.ndarray:
        return np.asarray(lr, dtype=np.float32)

    @staticmethod
    def log_softmax(logits: np.ndarray) -> np.ndarray:
        """Log-probabilities along the last axis, computed in place."""
        if logits.shape[-1] == 2:  # numpy reduces short last axes slowly: 5x faster
            logits -= np.logaddexp(logits[..., :1], logits[..., 1:])
            return logits
        logits -= logits.max(-1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(-1, keepdims=True))
        return logits

    @staticmethod
    def picked(logp: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """[..., n, k] log-probability of each row's label under each member (one
        flat fancy index: take_along_axis costs ~100 us more at probe sizes)."""
        idx = np.broadcast_to(y_idx[..., None], logp.shape[:-1])
        flat = logp.reshape(-1, logp.shape[-1])
        return flat[np.arange(len(flat)), idx.ravel()].reshape(idx.shape)

    @staticmethod
    def minus_label(g: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """g [..., n, k, c] minus the one-hot of the labels, in place."""
        g -= y_idx[..., None, None] == np.arange(g.shape[-1])
        return g

    @staticmethod
    def sum64(a: np.ndarray, axis: int) -> np.ndarray:
        return a.sum(axis, dtype=np.float64)


class _TorchOps:
    """The same operations for torch tensors, on the tensors' device."""

    sqrt, exp = staticmethod(torch.sqrt), staticmethod(torch.exp)

    @staticmethod
    def rate(lr: Any, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(lr, dtype=np.float32), device=like.device)

    @staticmethod
    def log_softmax(logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits, -1)

    @staticmethod
    def picked(logp: torch.Tensor, y_idx: torch.Tensor) -> torch.Tensor:
        idx = y_idx[..., None, None].expand(*logp.shape[:-1], 1)
        return logp.gather(-1, idx)[..., 0]

    @staticmethod
    def minus_label(g: torch.Tensor, y_idx: torch.Tensor) -> torch.Tensor:
        idx = y_idx[..., None, None].expand(*g.shape[:-1], 1)
        return g.scatter_add_(-1, idx, torch.full(idx.shape, -1.0, dtype=g.dtype, device=g.device))

    @staticmethod
    def sum64(a: torch.Tensor, axis: int) -> torch.Tensor:
        return a.sum(axis, dtype=torch.float64)


def _ops(a: Any) -> type[_NumpyOps] | type[_TorchOps]:
    """The backend of array `a`: torch for tensors (any device), numpy otherwise."""
    return _TorchOps if isinstance(a, torch.Tensor) else _NumpyOps


def _host(a: Any) -> np.ndarray:
    """A numpy array of `a` (a tensor is copied to the CPU; an array is itself)."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a


def scores(x: Any, w: Any, b: Any, mu: Any, inv: Any) -> Any:
    """Outputs [..., n, k, c] of every L2 member for unstandardised rows x [..., n, d]:
    one matrix product per probe, the scaler (mu, inv [..., d]) folded into the
    weights, so the standardised rows are never written out."""
    *lead, d, k, c = w.shape
    w_raw = w.reshape(*lead, d, k * c) * inv[..., :, None]
    b_raw = b.reshape(*lead, 1, k * c) - mu[..., None, :] @ w_raw
    out = x @ w_raw + b_raw
    return out.reshape(*out.shape[:-1], k, c)


def weight_grads(x: Any, g: Any, w: Any, l2w: Any, mu: Any, inv: Any) -> tuple[Any, Any]:
    """Gradients (weights, bias) of the batch loss + 0.5*l2*|W|^2 for unstandardised
    rows x, from d loss / d outputs g [..., n, k, c]: z^T g = inv * (x^T g - mu sum(g))."""
    k, c = w.shape[-2:]
    g2 = g.reshape(*g.shape[:-2], k * c)
    gb = g2.sum(-2)
    gw = x.swapaxes(-1, -2) @ g2
    gw -= mu[..., :, None] * gb[..., None, :]
    gw *= inv[..., :, None]
    gw = gw.reshape(w.shape)
    gw += l2w * w
    return gw, gb.reshape(tuple(w.shape[:-3]) + (k, c))


def adam_update(
    params: tuple[Any, ...],
    grads: tuple[Any, ...],
    ms: tuple[Any, ...],
    vs: tuple[Any, ...],
    t: int,
    lr: float | np.ndarray,
) -> None:
    """torch.optim.Adam's update (betas 0.9/0.999, eps 1e-8) at step `t`, in place;
    `lr` is one rate, or one per stacked probe [P]."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    ops = _ops(params[0])
    step_size = ops.rate(np.asarray(lr) / (1 - b1**t), params[0])
    root_bc2 = math.sqrt(1 - b2**t)
    for p, g, m, v in zip(params, grads, ms, vs, strict=True):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        denom = ops.sqrt(v)
        denom /= root_bc2
        denom += eps
        rate = step_size.reshape(tuple(step_size.shape) + (1,) * (p.ndim - step_size.ndim))
        p -= rate * m / denom


def _log_softmax(logits: Any) -> Any:
    """Log-probabilities along the last axis (numpy: computed in place)."""
    return _ops(logits).log_softmax(logits)


def _member_losses(logp: Any, y_idx: Any) -> Any:
    """Mean cross-entropy per member [..., k] (float64) from log-probabilities
    [..., n, k, c]."""
    return _losses_of(_ops(logp).picked(logp, y_idx))


def _losses_of(picked: Any) -> Any:
    """Mean cross-entropy per member [..., k] (float64) from the labels'
    log-probabilities [..., n, k]."""
    return -_ops(picked).sum64(picked, -2) / picked.shape[-2]


def _logit_grad(logp: Any, y_idx: Any) -> Any:
    """d(mean cross-entropy)/d(logits) = (softmax - onehot) / n, shaped like logp."""
    ops = _ops(logp)
    g = ops.minus_label(ops.exp(logp), y_idx)
    g /= logp.shape[-3]
    return g


def _label_bits(picked: Any, members: Any) -> Any:
    """Bits [P] that member members[p] of stacked probe p needs for its labels
    (prequential code length), from their log-probabilities picked [P, n, k]."""
    rows = np.arange(len(members))
    return -_ops(picked).sum64(picked[rows, :, members], 1) / math.log(2)


def cv_folds(
    y_idx: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified k-fold: fewer folds when a class has fewer rows; none below 2.
    With `groups`, stratified group k-fold (each group in one fold; plain group k-fold
    when stratifying is impossible), at most one fold per group."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

    counts = np.bincount(y_idx)
    k = min(k, int(counts[counts > 0].min())) if len(y_idx) else 0
    if groups is not None:
        k = min(k, len(np.unique(groups)))
    if k < 2:
        return []
    x = np.zeros(len(y_idx))
    if groups is None:
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y_idx))
    folds = list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(x, y_idx, groups))
    if all(len(np.unique(y_idx[tr])) > 1 for tr, _ in folds):
        return folds
    return list(GroupKFold(k, shuffle=True, random_state=seed).split(x, groups=groups))
