"""Probe families inside a fit plan: `ProbeConfig(kind="mlp" | "sparse" | "attention")`.

A family probe takes no online steps. It waits (state "not fitted") while the linear
probes beside it train, then is fitted once in the final-fit stage from the cached
training features, with the plan's splits and seed: early stopping on the validation
split for the torch families (`core.engine.family_models`), the L2 strength chosen as a
linear probe's for the sparse one (`cv_folds`-fold CV, or the validation split;
`core.engine.sparse_model`). It answers what the fit loop,
the metrics, the reprs and `save`/`load` ask of a `LinearProbe` (its record, state,
snapshot, `predict_proba`), so a layer sweep can mix families in one `fit_probes`.

The torch families train on the fit's probe device (`FitLoop.device`: an accelerator,
else the CPU) and read their rows there: a fit on a GPU hands them the tensors its
feature cache keeps on it, so no feature goes to the host and back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..config import ProbeConfig
from ..errors import ProbeError
from .data import ProbeDataset
from .family_models import AttentionProbe, MLPProbe, Stopping
from .probe import LinearProbe, cv_folds
from .sparse_model import SparseModel
from .states import ProbeState

#: The torch families' AdamW learning rate (their classes' default).
FAMILY_LR = 1e-2
#: Texts per AdamW step of an attention probe.
ATTENTION_BATCH = 64
#: The families trained with torch, on the fit's probe device.
TORCH_KINDS = ("mlp", "attention")


def text_rows(x: Any, ds: ProbeDataset) -> list[Any]:
    """Token-level feature rows of `ds` (one per real token, text after text) as one
    [tokens, d] array per text: what an attention probe reads (views of a tensor stay
    tensors where they are)."""
    offsets = ds.token_offsets()
    if len(x) != offsets[-1]:
        raise ProbeError(
            f"an attention probe reads token rows: {len(x)} rows for {offsets[-1]} tokens"
        )
    if isinstance(x, torch.Tensor):
        return list(torch.split(x, np.diff(offsets).tolist()))
    return np.split(np.asarray(x), offsets[1:-1])


def family_inputs(cfg: ProbeConfig, x: Any, keep: np.ndarray, ds: ProbeDataset) -> Any:
    """The rows of `ds` a probe of `cfg` reads, from the features `x` of its feature
    key (numpy, or a tensor where the fit keeps it): texts for an attention probe (`x`
    split per text already, or not), the kept rows otherwise."""
    if getattr(cfg, "kind", "linear") == "attention":
        return list(x) if isinstance(x, (list, tuple)) else text_rows(x, ds)
    if len(keep) == len(x):
        return x
    return x[torch.as_tensor(keep, device=x.device)] if isinstance(x, torch.Tensor) else x[keep]


def check_widths(configs: Any, shapes: dict[str, Any]) -> None:
    """A sparse probe's `k` within its site's width, from the dry run's output shapes
    (checked when the runner is made, before any data reaches the model)."""
    for cfg in configs:
        path, kind = cfg.read
        shape = shapes.get(path) if cfg.kind == "sparse" and kind == "output" else None
        if shape and cfg.k > shape[-1]:
            raise ProbeError(
                f"probe {cfg.name!r}: k={cfg.k} is more than the width {shape[-1]} of "
                f"{cfg.submodule!r}; give k <= {shape[-1]}"
            )


class FamilyProbe(LinearProbe):
    """A family probe in a runner: a `LinearProbe`'s record, state, labels and reprs
    around the family's model (`self.model`), fitted by `refine`."""

    def __init__(self, config: ProbeConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.model: Any = None
        self.kind = config.kind

    def _new_model(self, device: Any = None) -> Any:
        cfg = self.config
        common = dict(lr=FAMILY_LR, steps=cfg.max_steps, seed=cfg.seed, device=device)
        if cfg.kind == "mlp":
            return MLPProbe(cfg.hidden, cfg.weight_decay, **common)
        if cfg.kind == "attention":
            return AttentionProbe(cfg.heads, cfg.weight_decay, batch_size=ATTENTION_BATCH, **common)
        return SparseModel(cfg.k, cfg.rank_by, cfg.l2)

    @property
    def active(self) -> bool:
        return False  # never takes an online step

    @property
    def fitted(self) -> bool:
        return self.model is not None

    # -- the fit (the fit loop's final-fit stage) ---------------------------------------
    def refine(
        self,
        x: Any,
        y_idx: np.ndarray,
        x_val: Any = None,
        y_val: np.ndarray | None = None,
        *,
        device: Any = None,
        poll: Any = None,
        merge_validation: bool = True,
        groups: np.ndarray | None = None,
        val_groups: np.ndarray | None = None,
        **_: Any,
    ) -> None:
        """Fit the family on the training rows `x` (texts for attention), early
        stopping on the validation rows; a sparse probe's L2 strength chosen as a
        linear probe's is (`cv_folds` >= 2: k-fold CV over training + validation rows,
        `groups` kept whole, then refitted on them all; else on the validation rows).
        The record says how it went. Nothing changes unless the fit completes (`poll`
        may raise to stop it)."""
        cfg, rec = self.config, self.record
        val = None if x_val is None else (x_val, np.asarray(y_val))
        model = self._new_model(device)
        k = len(self.classes)
        folds: list = []
        if isinstance(model, SparseModel):
            if cfg.cv_folds >= 2:
                if val is not None and merge_validation:
                    x, y_idx = np.concatenate([x, val[0]]), np.concatenate([y_idx, val[1]])
                    if groups is not None:
                        groups = np.concatenate([groups, np.asarray(val_groups)])
                folds = cv_folds(y_idx, cfg.cv_folds, cfg.seed, groups)
            model.fit(x, y_idx, k, None if folds else val, folds)
            steps, best_step, loss, early, history = 0, None, model.val_loss, False, []
            self.record.best_l2 = model.best_l2
        else:
            stopping = None
            if cfg.early_stopping and cfg.validation != "none":
                stopping = Stopping(cfg.patience, cfg.eval_every, cfg.warmup_steps, cfg.threshold)
            stopping = stopping or Stopping(0, cfg.eval_every)
            stopping.poll = poll
            model.fit(x, y_idx, k, val=val, stopping=stopping)
            t = model.trace
            steps, best_step, early, history = t.steps, t.best_step, t.stopped_early, t.history
            loss = t.best_val_loss if math.isfinite(t.best_val_loss) else math.nan
        n = len(y_idx)
        per_step = n if cfg.kind == "mlp" else min(ATTENTION_BATCH, n)
        rec.steps, rec.best_step = steps, best_step
        rec.examples_seen = steps * per_step
        rec.epochs_done = math.ceil(steps * per_step / n) if steps else 0
        rec.history = [dict(h, epoch=math.ceil(h["step"] * per_step / n)) for h in history]
        rec.best_val_loss = loss if math.isfinite(loss) else math.inf
        rec.refined, rec.refined_val_loss, rec.cross_validated = True, loss, bool(folds)
        if early:
            rec.state = ProbeState.EARLY_STOPPED
            rec.stop_reason = (
                f"validation loss did not improve by more than {cfg.threshold:g} for "
                f"{cfg.patience} evaluations (best {loss:.4f} at step {best_step})"
            )
        else:
            rec.state = ProbeState.FINISHED
            rec.stop_reason = (
                f"fitted in the final fit ({steps} AdamW steps)"
                if steps
                else f"fitted in the final fit (top {cfg.k} dimensions by {cfg.rank_by})"
            )
        self.model = model

    # -- prediction ---------------------------------------------------------------------
    def _check_features(self, x: Any) -> Any:
        if self.model is None:
            raise ProbeError(
                f"probe {self.name!r} ({self.kind}) is not fitted yet: it is fitted in the "
                "final fit of fit_probes"
            )
        if self.kind == "attention":
            texts = [x] if isinstance(x, np.ndarray) and x.ndim == 2 else list(x)
            if any(np.ndim(t) != 2 or np.shape(t)[1] != self.dim for t in texts):
                raise ProbeError(
                    f"probe {self.name!r} (attention) reads texts: one [tokens, {self.dim}] "
                    "array per text (runner.get_probe_features gives one text's rows)"
                )
            return [np.asarray(t, dtype=np.float64) for t in texts]
        return super()._check_features(x).astype(np.float64)

    def log_proba(self, x: Any) -> np.ndarray:
        """Log class probabilities [rows or texts, classes]."""
        x = self._check_features(x)
        if isinstance(self.model, SparseModel):
            return self.model.log_proba(x)
        return np.log(np.clip(self.model.predict_proba(x), 1e-300, None))

    def decision_function(self, x: Any) -> np.ndarray:
        """Log class probabilities: a family probe's scores, one column per class."""
        return self.log_proba(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, columns in the order of `classes`."""
        x = self._check_features(x)
        if isinstance(self.model, SparseModel):
            return np.exp(self.model.log_proba(x))
        return self.model.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes[self.predict_proba(x).argmax(1)]

    def score(self, x: Any, y: Any) -> float:
        return float(np.mean(self.encode(np.asarray(y)) == self.predict_proba(x).argmax(1)))

    # -- directions: a sparse probe has one (zero off its k dimensions) -----------------
    def _final_params(self) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.model, SparseModel):
            return self.model.raw_params(self.dim)
        if self.model is None:
            raise ProbeError(f"probe {self.name!r} ({self.kind}) is not fitted yet")
        raise ProbeError(
            f"probe {self.name!r} is a {self.kind} probe: it has no single weight direction "
            "(coef_, direction and steering need a linear or sparse probe)"
        )

    @property
    def dims(self) -> np.ndarray:
        """A sparse probe's k dimensions, best ranked first."""
        if not isinstance(self.model, SparseModel):
            raise ProbeError(f"probe {self.name!r} is a {self.kind} probe: dims are sparse's")
        return self.model.dims

    def token_weights(self, texts: Any) -> list[np.ndarray]:
        """An attention probe's weight per token and head, per text."""
        if self.kind != "attention":
            raise ProbeError(f"probe {self.name!r} is a {self.kind} probe: no token weights")
        return self.model.token_weights(self._check_features(texts))

    # -- persistence (core.io.persistence): plain arrays, settings from the config ------
    def state_arrays(self) -> dict[str, np.ndarray]:
        if self.model is None:
            raise ProbeError(f"probe {self.name!r} is not fitted: nothing to save")
        return self.model.arrays()

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        model = self._new_model()
        if isinstance(model, SparseModel):
            model.load_arrays(arrays)
        else:
            model = type(model).from_arrays(model.settings(), arrays)
        width = len(model.mu) if not isinstance(model, SparseModel) else None
        if width is not None and width != self.dim:
            raise ProbeError(f"saved probe {self.name!r} reads width {width}, not {self.dim}")
        self.model = model

    def __repr__(self) -> str:
        return (
            f"FamilyProbe({self.name!r}, kind={self.kind!r}, dim={self.dim}, "
            f"classes={list(self.config.classes)}, state={str(self.state)!r}, "
            f"steps={self.record.steps})"
        )
