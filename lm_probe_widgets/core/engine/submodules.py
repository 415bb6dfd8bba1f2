"""Submodule strings: validate them before any real forward pass, and order the reads.

A short dry run (two tokens, forward hooks on plain torch modules) tells which
modules really run, in what order their inputs and outputs appear, and the
shape of each output. nnsight needs reads in that order, and a module that never
runs would otherwise fail later with a misleading error.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any

import torch

from ..config import split_submodule
from ..errors import SubmoduleError
from .modeling import model_device, model_lock, shape_only, torch_module


@dataclass(frozen=True)
class DryRun:
    """What one tiny forward pass showed about a set of modules."""

    order: dict[tuple[str, str], int]  # (path, "input"|"output") -> position in time
    shapes: dict[str, tuple[int, ...] | None]  # path -> output shape (first tensor)


def model_inputs(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
    """Keyword arguments for the model's forward: mask always, no KV cache."""
    module = torch_module(model)
    params = inspect.signature(module.forward).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {"input_ids": input_ids}
    if "attention_mask" in params or accepts_any:
        kwargs["attention_mask"] = attention_mask
    config = getattr(module, "config", None)
    if (
        config is not None
        and hasattr(config, "use_cache")
        and ("use_cache" in params or accepts_any)
    ):
        kwargs["use_cache"] = False
    return kwargs


def _first_tensor(value: Any) -> torch.Tensor | None:
    if torch.is_tensor(value):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    if isinstance(value, dict):
        for v in value.values():
            t = _first_tensor(v)
            if t is not None:
                return t
    if hasattr(value, "to_tuple"):
        return _first_tensor(value.to_tuple())
    return None


def dry_run(model: Any, paths: list[str] | None = None) -> DryRun:
    """Run two tokens through the model with hooks on `paths` (all modules if None)."""
    module = torch_module(model)
    named = dict(module.named_modules())
    paths = list(named) if paths is None else paths
    order: dict[tuple[str, str], int] = {}
    shapes: dict[str, tuple[int, ...] | None] = {}
    clock = iter(range(10**9))
    handles = []

    def pre(path: str):
        def hook(_mod, _args):
            order.setdefault((path, "input"), next(clock))

        return hook

    def post(path: str):
        def hook(_mod, _args, out):
            if (path, "output") not in order:
                order[(path, "output")] = next(clock)
                t = _first_tensor(out)
                shapes[path] = tuple(t.shape) if t is not None else None

        return hook

    for p in paths:
        handles.append(named[p].register_forward_pre_hook(pre(p)))
        handles.append(named[p].register_forward_hook(post(p)))
    ids = torch.tensor([[1, 2]], device=model_device(model))
    mask = torch.ones_like(ids)
    try:
        with model_lock(model), torch.inference_mode(), shape_only(model):
            module(**model_inputs(model, ids, mask))
    finally:
        for h in handles:
            h.remove()
    return DryRun(order, shapes)


def _suggest(path: str, named: dict[str, torch.nn.Module]) -> str:
    parts = path.split(".") if path else []
    prefix = ""
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in named:
            prefix = cand
            break
    children = [n for n, _ in named[prefix].named_children()] if prefix in named else []
    close = difflib.get_close_matches(path, [n for n in named if n], n=5, cutoff=0.6)
    msg = [f"longest valid prefix: {prefix or '(the model itself)'!r}"]
    if children:
        shown = ", ".join(children[:12]) + (" ..." if len(children) > 12 else "")
        msg.append(f"its children: {shown}")
    if close:
        msg.append("did you mean: " + ", ".join(repr(c + ".output") for c in close))
    return "; ".join(msg)


def validate_submodules(model: Any, submodules: list[str]) -> DryRun:
    """Check every submodule string names a module that runs; return the dry run.

    Raises `SubmoduleError` naming the longest valid prefix, its children and close
    matches — before any real data is touched.
    """
    module = torch_module(model)
    named = dict(module.named_modules())
    params = dict(module.named_parameters())
    paths = []
    for sub in submodules:
        path, _kind = split_submodule(sub)
        if path in params or path.rsplit(".", 1)[0] in params:
            raise SubmoduleError(
                f"{sub!r} names a parameter, not a module: probe the module that owns it, "
                f"e.g. {path.rsplit('.', 1)[0] + '.output'!r}"
            )
        if path not in named:
            raise SubmoduleError(
                f"no submodule {path!r} in {type(module).__name__}; " + _suggest(path, named)
            )
        paths.append(path)
    run = dry_run(model, sorted(set(paths)))
    for sub in submodules:
        path, kind = split_submodule(sub)
        if (path, kind) not in run.order:
            raise SubmoduleError(
                f"{sub!r} never runs in a forward pass of {type(module).__name__} "
                "(an unused module?), so there is nothing to probe there"
            )
    return run


def execution_order(run: DryRun, reads: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """De-duplicated reads sorted by when their values appear in the forward pass."""
    return sorted(set(reads), key=lambda r: run.order[r])


# (transformer blocks, embeddings submodule) of common architectures.
_LAYOUTS: list[tuple[str, str]] = [
    ("model.layers", "model.embed_tokens.output"),  # Llama, Mistral, Qwen, Gemma, SmolLM
    ("transformer.h", "transformer.drop.output"),  # GPT-2: token + position embeddings
    ("gpt_neox.layers", "gpt_neox.embed_in.output"),  # Pythia
    ("encoder.layer", "embeddings.output"),  # BERT-style encoders (AutoModel)
    ("bert.encoder.layer", "bert.embeddings.output"),
]


def hidden_states(model: Any) -> list[str]:
    """The residual stream as submodule reads, numbered like ``output_hidden_states``:
    item 0 is the embeddings' output (h[0]), item i the output of block i (h[i]).
    A `SubmoduleError` for an architecture whose blocks it cannot find."""
    module = torch_module(model)
    for blocks, embeddings in _LAYOUTS:
        try:
            found = module.get_submodule(blocks)
        except AttributeError:
            continue
        if isinstance(found, torch.nn.ModuleList) and len(found):
            return [embeddings] + [f"{blocks}.{i}.output" for i in range(len(found))]
    raise SubmoduleError(
        f"cannot tell where the layers of {type(module).__name__} are; name the "
        "submodules yourself, e.g. 'model.layers.3.output' (module_tree(model) lists them)"
    )


def envoy_path(path: str) -> str:
    """The nnsight attribute path for a torch module path.

    nnsight mounts submodules whose names collide with its own attributes (BERT's
    `output`) under an `E_` prefix.
    """
    from nnsight.intervention.envoy import Envoy

    parts = []
    for part in path.split(".") if path else []:
        if not part.startswith("_") and inspect.isdatadescriptor(getattr(Envoy, part, None)):
            part = Envoy.OVERLOAD_PREFIX + part
        parts.append(part)
    return ".".join(parts)


def module_tree(model: Any) -> list[dict[str, Any]]:
    """Every module: name, class, depth, parent, output shape from a dry run, and
    whether it runs. Shapes use a (1, 2) token input."""
    module = torch_module(model)
    run = dry_run(model)
    rows = []
    for name, mod in module.named_modules():
        if not name:
            continue
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        rows.append(
            {
                "name": name,
                "type": type(mod).__name__,
                "depth": name.count("."),
                "parent": parent,
                "shape": list(run.shapes[name]) if run.shapes.get(name) else None,
                "runs": (name, "output") in run.order,
            }
        )
    return rows
