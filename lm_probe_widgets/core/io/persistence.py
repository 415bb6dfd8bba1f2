"""Saving and loading runners as safetensors: plain arrays plus JSON metadata.

No pickle anywhere, so loading an untrusted file executes nothing. Family probes
(`ProbeConfig(kind=...)`) save their model's arrays; their settings are their config's.
A family probe a Stop left waiting for its final fit has no weights and is not saved.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ProbeConfig
from ..engine.fingerprint import model_fingerprint
from ..engine.fit import Cursor, FitResult
from ..engine.regression import make_probe
from ..engine.states import RunnerState
from ..errors import ProbeError

FORMAT = "lm_probe_widgets.runner/1"
_FLOAT_RECORD_FIELDS = {"best_val_loss": math.inf, "refined_val_loss": math.nan}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def save_runner(runner: Any, path: str | Path) -> None:
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    saved = {n: p for n, p in runner.probes.items() if getattr(p, "fitted", True)}
    if not saved:
        raise ProbeError("nothing to save: no probe has been fitted yet")
    tensors: dict[str, np.ndarray] = {}
    probes_meta = []
    for i, (name, probe) in enumerate(saved.items()):
        for key, arr in probe.state_arrays().items():
            tensors[f"probe{i}.{key}"] = np.ascontiguousarray(arr)
        rec = probe.record
        probes_meta.append(
            {
                "name": name,
                "config": probe.config.to_dict(),
                "dim": probe.dim,
                "record": {k: _jsonable(v) for k, v in vars(rec).items() if k != "history"},
                "history": [{k: _jsonable(v) for k, v in h.items()} for h in rec.history],
            }
        )
    # Control probes and baselines are not saved; the columns they gave are, as measured
    # (they leave with the rest of a probe's metrics at the next compute_metrics or fit).
    table = runner.metrics
    refs = [c for c in table.columns if c.startswith(("control_", "baseline_", "selectivity"))]
    metrics = {
        n: {k: _jsonable(v) for k, v in {**m, **table.loc[n, refs].to_dict()}.items()}
        for n, m in runner.last_result.metrics.items()
        if n in saved
    }
    meta = {
        "format": FORMAT,
        "model_class": type(runner.model._module).__name__,
        # whose features the metrics were measured on: load() into other weights says so
        "model_fingerprint": model_fingerprint(runner.model),
        "probes": json.dumps(probes_meta),
        "metrics": json.dumps(metrics),
    }
    path = Path(path)
    if path.is_dir():
        raise ProbeError(
            f"{str(path)!r} is a folder: save() writes one file; give a file name such "
            f"as {str(path / 'probes.safetensors')!r}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata=meta)
    except (OSError, SafetensorError) as e:
        raise ProbeError(f"cannot save to {str(path)!r}: {e}") from e


def load_runner(cls: Any, path: str | Path, model: Any, **kwargs: Any) -> tuple[Any, FitResult]:
    """A new `cls(model, configs, **kwargs)` for the saved probes, and the FitResult
    that the caller makes the runner's (its probes, metrics and state)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"no saved runner at {str(path)!r}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ProbeError(
            f"{str(path)!r} is not a saved runner (not a safetensors file): {e}"
        ) from e
    if meta.get("format") != FORMAT:
        raise ProbeError(f"{str(path)!r} is not a saved lm_probe_widgets runner")
    probes_meta = json.loads(meta["probes"])
    configs = [_config(m["config"], path) for m in probes_meta]
    runner = cls(model, configs, **kwargs)
    widths = _model_widths(runner, configs)
    probes = {}
    for i, m in enumerate(probes_meta):
        cfg = configs[i]
        if widths[cfg.feature_key] != m["dim"]:
            raise ProbeError(
                f"probe {cfg.name!r} was saved for width {m['dim']} but {cfg.submodule!r} of this "
                f"model has width {widths[cfg.feature_key]}: it was saved for another model "
                f"(saved with {meta.get('model_class')})"
            )
        probe = make_probe(cfg, m["dim"])
        arrays = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"probe{i}.")}
        probe.load_arrays(arrays)
        for k, v in m["record"].items():
            if v is None and k in _FLOAT_RECORD_FIELDS:
                v = _FLOAT_RECORD_FIELDS[k]  # JSON has no inf/nan
            setattr(probe.record, k, v)
        probe.record.history = m["history"]
        probes[cfg.name] = probe
    metrics = {
        n: {k: (math.nan if v is None else v) for k, v in row.items()}
        for n, row in json.loads(meta["metrics"]).items()
    }
    saved_fp = meta.get("model_fingerprint")
    if saved_fp is not None and saved_fp != model_fingerprint(runner.model):
        warnings.warn(
            f"{str(path)!r} was saved with other model weights (or modules) than this "
            "model's: its metrics were measured on those and are not shown as this "
            "runner's; runner.compute_metrics(dataset) measures the probes on this model",
            UserWarning,
            stacklevel=3,
        )
        metrics = {}
    for name, probe in probes.items():
        probe.metrics = metrics.get(name, {})
    done = Cursor(training_done=True)
    return runner, FitResult(probes=probes, metrics=metrics, cursor=done, state=RunnerState.FITTED)


def _config(saved: dict[str, Any], path: Path) -> ProbeConfig:
    """A saved probe's ProbeConfig; keys this version does not know are a clear error."""
    known = {f.name for f in dataclasses.fields(ProbeConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ProbeError(
            f"{str(path)!r} holds probe settings this version of lm_probe_widgets does not "
            f"know ({', '.join(unknown)}): it was saved by another version; upgrade "
            "lm_probe_widgets to load it"
        )
    try:
        return ProbeConfig(**saved)
    except (TypeError, ValueError) as e:
        raise ProbeError(f"{str(path)!r} holds probe settings that do not load: {e}") from e


def _model_widths(runner: Any, configs: list[ProbeConfig]) -> dict[tuple, int]:
    """Feature width of each probe's read on this model (one two-token trace)."""
    import torch

    from ..engine.data import Batch

    keys = [c.feature_key for c in configs]
    shapes = runner.site_shapes
    if getattr(runner, "remote", None) and all(k[1] == "output" and shapes.get(k[0]) for k in keys):
        return {k: shapes[k[0]][-1] for k in keys}  # from the local dry run: no remote job
    batch = Batch(np.arange(1), torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.long))
    feats = runner.extractor(keys)(batch)
    return {k: v.shape[1] for k, v in feats.items()}
