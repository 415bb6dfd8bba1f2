"""Who computed a feature: a fingerprint of the model that changes when any weight or
module does, and the hooks that make a forward compute something else.

Features are cached under the model's fingerprint, so a runner whose model was
fine-tuned, edited or reloaded with other weights never serves the old features. The
fingerprint also covers the module tree: every module's path, type and settings
(`extra_repr`, e.g. GELU's approximation or a dropout rate), so replacing a
parameter-free module (`mlp.act = torch.nn.Identity()`) changes it too.

Forward hooks cannot be fingerprinted (a hook's function may change what it does
without changing identity), so `forward_hooks` only lists them: the feature store is
bypassed while any is present, and the in-memory cache keys on which hooks are
registered (see `core.engine.feature_access`).
Hashing every weight costs about 0.3 s per 500 MB (SHA-1, for identity, not
security). Each fit hashes afresh; between fits the hash is reused while torch's own
change counters say no parameter or buffer changed (an in-place update bumps
`tensor._version`, a replaced tensor has a new data pointer; only writes through
`.data` slip past those, and the next fit catches them).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
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


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # a function's repr: differs per process


def _module_tree(module: torch.nn.Module) -> tuple[tuple[str, str, str], ...]:
    """(path, type, settings) of every submodule: what a parameter-free swap changes."""
    tree = []
    for name, m in module.named_modules():
        try:
            settings = _ADDRESS.sub("", m.extra_repr())
        except Exception:  # a module whose repr fails: its type still counts
            settings = "?"
        tree.append((name, f"{type(m).__module__}.{type(m).__qualname__}", settings))
    return tuple(tree)


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
    """Hex digest over the architecture (every module's path, type and settings),
    config, dtypes and every parameter and buffer. `verify=True` hashes the weights
    even when the change counters say nothing moved."""
    module = torch_module(model)
    tensors = _tensors(module)
    versions = (_versions(tensors), _module_tree(module))
    cached = _CACHE.get(module)
    if cached is not None and cached[0] == versions and not verify:
        return cached[1]
    h = hashlib.sha1(usedforsecurity=False)
    h.update(type(module).__qualname__.encode())
    h.update(_config_text(module).encode())
    h.update(json.dumps(versions[1]).encode())
    for name, t in tensors:
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        _hash_tensor(h, t)
    digest = h.hexdigest()
    _CACHE[module] = (versions, digest)
    return digest


_EDIT_IDS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_EDIT_COUNTER = itertools.count()


def _edit_id(edit: Any) -> int:
    """A number per nnsight edit object that is never reused (id() can be)."""
    try:
        if edit not in _EDIT_IDS:
            _EDIT_IDS[edit] = next(_EDIT_COUNTER)
        return _EDIT_IDS[edit]
    except TypeError:  # not weak-referenceable
        return id(edit)


def _ours(fn: Any) -> bool:
    """The library's own dry-run hooks (a runner being built in another thread): they
    only record shapes and order, and are gone when the dry run ends."""
    return getattr(fn, "__module__", None) == "lm_probe_widgets.core.engine.submodules"


def forward_hooks(model: Any) -> tuple[tuple[str, int], ...]:
    """What makes a forward of `model` compute something its weights and modules do not
    say: forward hooks and pre-hooks on any of its modules (the root too), global ones
    (`torch.nn.modules.module.register_module_forward_hook`), and nnsight edits
    (`model.edit(...)`). One (description, identity) pair each; torch numbers every
    registration afresh, so removing a hook and adding it back gives a new identity.
    Empty for a plain model (nnsight and accelerate add no torch hooks)."""
    import torch.nn.modules.module as torch_modules

    module = torch_module(model)
    found: list[tuple[str, int]] = []
    for kind, table in (
        ("global forward pre-hook", torch_modules._global_forward_pre_hooks),
        ("global forward hook", torch_modules._global_forward_hooks),
    ):
        found.extend((kind, int(hid)) for hid, fn in list(table.items()) if not _ours(fn))
    for name, m in module.named_modules():
        where = name or "the model itself"
        for kind, table in (("pre-hook", m._forward_pre_hooks), ("hook", m._forward_hooks)):
            found.extend(
                (f"forward {kind} on {where}", int(hid))
                for hid, fn in list(table.items())
                if not _ours(fn)
            )
    edits = getattr(model, "_edits", None) or ()
    found.extend(("nnsight edit (model.edit)", _edit_id(e)) for e in edits)
    return tuple(found)
