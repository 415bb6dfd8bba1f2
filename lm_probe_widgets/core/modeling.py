"""Wrapping models for nnsight, and the one lock per model that serialises traces."""

from __future__ import annotations

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


def model_device(model: Any) -> torch.device:
    module = torch_module(model)
    for p in module.parameters():
        return p.device
    return torch.device("cpu")
