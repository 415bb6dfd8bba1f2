"""One nnsight trace per batch feeds every probe.

Every requested activation is read inside a single trace, in execution order, and
the trace stops right after the deepest one (nothing after it runs, not even the
LM head). Pooling happens on the activation's own device, and the pooled float32
features stay there: the feature cache puts them where the probe maths reads them
(core.engine.feature_cache), a device-to-device copy on an accelerator.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ProbeError
from .data import Batch
from .modeling import eval_mode, model_device, model_lock
from .pooling import pool
from .submodules import DryRun, envoy_path, execution_order, model_inputs

FeatureKey = tuple[str, str, str]  # (module path, "output"|"input", pooling)
CHEAP_POOLINGS = ("mean", "last", "first", "max")


def with_cheap_poolings(keys: list[FeatureKey], dry: DryRun) -> list[FeatureKey]:
    """`keys` plus every cheap pooling of each site read with one: a few extra pooled
    vectors per example in the same trace, so that a later switch of pooling (with the
    persistent store) never runs the model. Token-level keys stay as asked, and a
    site without a token axis (all poolings equal) gets nothing extra."""
    out = set(keys)
    for path, kind, how in keys:
        shape = dry.shapes.get(path) if kind == "output" else None
        if how in CHEAP_POOLINGS and not (shape is not None and len(shape) == 2):
            out.update((path, kind, other) for other in CHEAP_POOLINGS)
    return sorted(out)


class Extractor:
    """Reads and pools `keys` for a batch with one trace.

    Each activation is pooled inside the trace, as soon as the forward pass produces
    it, so no layer's full [batch, tokens, width] output outlives its own step of the
    forward: memory stays at one activation plus pooled vectors, however many layers
    are probed. The same trace runs remotely (see remote.py).
    """

    def __init__(self, model: Any, keys: list[FeatureKey], dry: DryRun) -> None:
        self.model = model
        self.keys = sorted(set(keys))
        self.reads = execution_order(dry, [(p, k) for p, k, _ in self.keys])
        self._envoy_paths = {path: envoy_path(path) for path, _ in self.reads}
        self.hows: dict[tuple[str, str], list[str]] = {}
        for path, kind, how in self.keys:
            self.hows.setdefault((path, kind), []).append(how)
        for path, kind in self.reads:
            shape = dry.shapes.get(path) if kind == "output" else None
            if shape is not None and len(shape) == 3 and shape[1] != 2:  # dry run: 2 tokens
                raise ProbeError(
                    f"{path}.{kind} has {shape[1]} positions for 2 tokens; probe a module "
                    "whose output has one vector per token"
                )

    def _pooled(self, batch: Batch) -> list[torch.Tensor]:
        device = model_device(self.model)
        return pooled_trace(
            self.model,
            self.reads,
            self.hows,
            self._envoy_paths,
            batch.input_ids.to(device),
            batch.attention_mask.to(device),
        )

    def __call__(self, batch: Batch) -> dict[FeatureKey, torch.Tensor]:
        """Pooled float32 rows of every key, each on the device its site ran on."""
        pooled = iter(self._pooled(batch))
        out: dict[FeatureKey, torch.Tensor] = {}
        for path, kind in self.reads:
            for how in self.hows[(path, kind)]:
                x = next(pooled)
                if not torch.isfinite(x).all():
                    raise ProbeError(
                        f"activations of {path}.{kind} contain NaN or inf for this batch "
                        f"(examples {batch.indices[:5].tolist()}...). Check the model's dtype "
                        "(fp16 overflow?) and inputs; probes trained so far are kept."
                    )
                out[(path, kind, how)] = x
        return out


def pooled_trace(
    model: Any,
    reads: list[tuple[str, str]],
    hows: dict[tuple[str, str], list[str]],
    envoy_paths: dict[str, str],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    **trace_kwargs: Any,
) -> list[torch.Tensor]:
    """One trace that reads every activation in execution order, pools it where it
    lives and stops after the last read; returns the pooled float32 vectors in
    `reads` x `hows` order. `trace_kwargs` (e.g. a remote `backend`) go to nnsight."""
    import nnsight

    mask = attention_mask
    inputs = model_inputs(model, input_ids, attention_mask)
    with model_lock(model), eval_mode(model), torch.inference_mode():
        with model.trace(**inputs, **trace_kwargs) as tracer:
            pooled = nnsight.save([])  # saved: a remote trace sends only this back
            for path, kind in reads:
                envoy = model.get(envoy_paths[path]) if path else model
                value = envoy.output if kind == "output" else envoy.input
                h = value if torch.is_tensor(value) else value[0]
                for how in hows[(path, kind)]:
                    pooled.append(pool(h, mask, how))
            tracer.stop()
    return pooled
