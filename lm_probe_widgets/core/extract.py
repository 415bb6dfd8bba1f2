"""One nnsight trace per batch feeds every probe.

Every requested activation is read inside a single trace, in execution order, and
the trace stops right after the deepest one (nothing after it runs, not even the
LM head). Pooling happens on the activation's own device; only pooled float32
features leave it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .data import Batch
from .errors import ProbeError
from .modeling import model_device, model_lock
from .pooling import pool
from .submodules import DryRun, _first_tensor, envoy_path, execution_order, model_inputs

FeatureKey = tuple[str, str, str]  # (module path, "output"|"input", pooling)


class Extractor:
    """Reads and pools `keys` for a batch with one trace."""

    def __init__(self, model: Any, keys: list[FeatureKey], dry: DryRun) -> None:
        self.model = model
        self.keys = sorted(set(keys))
        self.reads = execution_order(dry, [(p, k) for p, k, _ in self.keys])
        self._envoy_paths = {path: envoy_path(path) for path, _ in self.reads}

    def activations(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        """Raw activations for every read (shares storage with the model's outputs)."""
        model = self.model
        device = model_device(model)
        inputs = model_inputs(model, input_ids.to(device), attention_mask.to(device))
        acts: dict[tuple[str, str], Any] = {}
        reads = self.reads
        paths = self._envoy_paths
        with model_lock(model), torch.inference_mode():
            with model.trace(**inputs) as tracer:
                for path, kind in reads:
                    envoy = model.get(paths[path]) if path else model
                    acts[(path, kind)] = envoy.output if kind == "output" else envoy.input
                tracer.stop()
        return acts

    def __call__(self, batch: Batch) -> dict[FeatureKey, np.ndarray]:
        acts = self.activations(batch.input_ids, batch.attention_mask)
        out: dict[FeatureKey, np.ndarray] = {}
        for path, kind, how in self.keys:
            h = _first_tensor(acts[(path, kind)])
            if h is None:
                raise ProbeError(f"{path}.{kind} produced no tensor to probe")
            mask = batch.attention_mask
            if h.dim() == 3 and h.shape[1] != mask.shape[1]:
                raise ProbeError(
                    f"{path}.{kind} has {h.shape[1]} positions for {mask.shape[1]} tokens; "
                    "probe a module whose output has one vector per token"
                )
            pooled = pool(h, mask, how)
            if not torch.isfinite(pooled).all():
                raise ProbeError(
                    f"activations of {path}.{kind} contain NaN or inf for this batch "
                    f"(examples {batch.indices[:5].tolist()}...). Check the model's dtype "
                    "(fp16 overflow?) and inputs; probes trained so far are kept."
                )
            out[(path, kind, how)] = pooled.cpu().numpy()
        return out
