"""Who computed a feature: a fingerprint of the model that changes when any weight does.

Features are cached under the model's fingerprint, so a runner whose model was
fine-tuned, edited or reloaded with other weights never serves the old features.
Hashing every weight costs about 0.3 s per 500 MB (SHA-1, for identity, not
security). Each fit hashes afresh; between fits the hash is reused while torch's own
change counters say no parameter or buffer changed (an in-place update bumps
`tensor._version`, a replaced tensor has a new data pointer; only writes through
`.data` slip past those, and the next fit catches them).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

import numpy as np
import torch

from .modeling import torch_module

_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()
_CHUNK = 1 << 24  # elements hashed per step for tensors off the CPU


def _tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    params = list(module.named_parameters(remove_duplicate=True))
    return params + list(module.named_buffers(remove_duplicate=True))


def _version(t: torch.Tensor) -> int:
    """torch's in-place change counter; -1 where it has none (inference tensors:
    those cannot be changed in place outside inference mode, so -1 forces a rehash
    only through `verify`)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def _versions(tensors: list[tuple[str, torch.Tensor]]) -> tuple:
    return tuple(
        (name, t.data_ptr() if t.device.type != "meta" else 0, _version(t), t.dtype, tuple(t.shape))
        for name, t in tensors
    )


def _config_text(module: torch.nn.Module) -> str:
    config = getattr(module, "config", None)
    if config is None:
        return ""
    to_dict = getattr(config, "to_dict", None)
    data = to_dict() if callable(to_dict) else vars(config)
    return json.dumps(data, sort_keys=True, default=str)


def _hash_tensor(h: Any, t: torch.Tensor) -> None:
    if t.device.type == "meta":
        return  # not loaded (a remote model): its identity is its config and name
    flat = t.detach().reshape(-1)
    if flat.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw bits
        flat = flat.view(torch.int16)
    for start in range(0, flat.numel(), _CHUNK):
        part = flat[start : start + _CHUNK]
        if part.device.type != "cpu":
            part = part.cpu()
        h.update(memoryview(np.ascontiguousarray(part.numpy())).cast("B"))


def model_fingerprint(model: Any, *, verify: bool = False) -> str:
    """Hex digest over the architecture, config, dtypes and every parameter and buffer.
    `verify=True` hashes the weights even when the change counters say nothing moved."""
    module = torch_module(model)
    tensors = _tensors(module)
    versions = _versions(tensors)
    cached = _CACHE.get(module)
    if cached is not None and cached[0] == versions and not verify:
        return cached[1]
    h = hashlib.sha1(usedforsecurity=False)
    h.update(type(module).__qualname__.encode())
    h.update(_config_text(module).encode())
    for name, t in tensors:
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        _hash_tensor(h, t)
    digest = h.hexdigest()
    _CACHE[module] = (versions, digest)
    return digest
