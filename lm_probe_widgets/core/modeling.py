"""Wrapping models for nnsight, and the one lock per model that serialises traces."""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from typing import Any

import torch

_LOCKS: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def is_nnsight_model(model: Any) -> bool:
    from nnsight.intervention.envoy import Envoy

    return isinstance(model, Envoy)


def wrap_model(model: Any, tokenizer: Any = None):
    """Return an nnsight model for `model`.

    nnsight models pass through unchanged; a Hugging Face model becomes a
    `TransformersModel` (causal LMs as text generators, encoders as feature
    extractors); any other `torch.nn.Module` becomes a plain `NNsight`.
    """
    import nnsight

    if is_nnsight_model(model):
        return model
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"expected an nnsight model or a torch.nn.Module, got {type(model).__name__}"
        )
    from transformers import PreTrainedModel

    if isinstance(model, PreTrainedModel) and tokenizer is not None:
        task = "text-generation" if model.can_generate() else "feature-extraction"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # renamed `output` submodules warn once each
            return nnsight.TransformersModel(model, task=task, tokenizer=tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nnsight.NNsight(model)


def torch_module(model: Any) -> torch.nn.Module:
    """The underlying torch module of an nnsight model (or the module itself)."""
    return model._module if is_nnsight_model(model) else model


def model_lock(model: Any) -> threading.RLock:
    """One re-entrant lock per underlying torch module: traces on it never overlap."""
    module = torch_module(model)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(module)
        if lock is None:
            lock = _LOCKS[module] = threading.RLock()
        return lock


@contextlib.contextmanager
def eval_mode(model: Any):
    """Run the model in eval mode (no dropout: features are deterministic), then put
    every submodule back in the mode it was in."""
    modes = [(m, m.training) for m in torch_module(model).modules()]
    if not any(training for _, training in modes):
        yield
        return
    for m, _ in modes:
        m.training = False
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def model_device(model: Any) -> torch.device:
    """Where input ids go: the input embedding's device.

    Under ``device_map="auto"`` the first parameter may live on another GPU than the
    embedding. A meta (not yet loaded, e.g. remote) model takes CPU inputs.
    """
    module = torch_module(model)
    device = None
    get_embeddings = getattr(module, "get_input_embeddings", None)
    if callable(get_embeddings):
        try:
            weight = getattr(get_embeddings(), "weight", None)
        except (NotImplementedError, AttributeError):
            weight = None
        device = weight.device if torch.is_tensor(weight) else None
    if device is None:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
    return torch.device("cpu") if device.type == "meta" else device


def is_meta_model(model: Any) -> bool:
    """True when the weights are not loaded (meta device): a model meant for remote runs.

    An nnsight model says so itself (`dispatched`); a module counts when every
    parameter is on meta (accelerate's disk offload keeps some there, not all)."""
    if getattr(model, "dispatched", True) is False:
        return True
    params = list(torch_module(model).parameters())
    return bool(params) and all(p.device.type == "meta" for p in params)


def shape_only(model: Any) -> contextlib.AbstractContextManager:
    """For a meta model, a fake-tensor mode in which a forward propagates shapes only
    (a dry run then needs no weights); otherwise a no-op."""
    if not is_meta_model(model):
        return contextlib.nullcontext()
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    return FakeTensorMode(
        allow_non_fake_inputs=True, shape_env=ShapeEnv(assume_static_by_default=True)
    )
