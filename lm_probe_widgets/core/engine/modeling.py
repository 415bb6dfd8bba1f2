"""Wrapping models for nnsight, and the one lock per model that serialises traces."""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from typing import Any

import torch

from ..errors import ProbeError

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


def stack_device(device: torch.device) -> torch.device | None:
    """Where the probe maths runs in torch, or None: numpy on the host. On the CPU
    numpy's small products are about twice as fast as torch's (benchmarks/README.md);
    MPS has no float64, which the losses and the final fit sum in. Tests replace this
    function (monkeypatch `modeling.stack_device` with `lambda _: torch.device("cpu")`)
    to run the torch engine, its stacks and device-resident features included, on CPU
    tensors."""
    return device if device.type == "cuda" else None


def probe_device(model: Any, requested: Any = None) -> torch.device:
    """Where the probe maths runs: `requested` (`ProbeRunner(probe_device=...)`), or
    else the model's input device. Checked when the runner is made, so a device
    that is not there fails before any work, with what to give instead."""
    if requested is None:
        return model_device(model)
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as e:
        raise ProbeError(
            f"probe_device={requested!r} is not a device torch knows; give e.g. 'cpu', "
            "'cuda' or 'cuda:1' (or leave it out: the model's device)"
        ) from e
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise ProbeError(
                f"probe_device={requested!r}: this machine has {count} CUDA device(s); "
                "give one of them, or 'cpu'"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ProbeError(f"probe_device={requested!r}: MPS is not available here; give 'cpu'")
    elif device.type != "cpu":
        raise ProbeError(
            f"probe_device={requested!r}: probes run on 'cpu', 'cuda[:n]' or 'mps', "
            f"not {device.type!r}"
        )
    return device


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


def model_limits(model: Any) -> tuple[int | None, int | None]:
    """(vocabulary size, longest input in tokens) the model takes, where it says."""
    module = torch_module(model)
    vocab = None
    get_emb = getattr(module, "get_input_embeddings", None)
    emb = get_emb() if callable(get_emb) else None
    if emb is None:
        emb = next((m for m in module.modules() if isinstance(m, torch.nn.Embedding)), None)
    if emb is not None and getattr(emb, "num_embeddings", None):
        vocab = int(emb.num_embeddings)
    config = getattr(module, "config", None)
    longest = None
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            longest = value
            break
    return vocab, longest


def limit_tokenizer_length(tokenizer: Any, model: Any) -> Any:
    """Give a tokenizer that says "no limit" (model_max_length ~1e30, as GGUF and
    in-process tokenizers do) the model's real limit, so `padding="max_length",
    truncation=True` pads and truncates as users of the original lm_probe expect."""
    _, longest = model_limits(model)
    if longest is not None and getattr(tokenizer, "model_max_length", 0) > 10**6:
        tokenizer.model_max_length = longest
    return tokenizer
