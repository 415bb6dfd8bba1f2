"""Model and output flags checked before anything loads: --test-size, --dtype,
--device-map, --out, and --layers turned into probe sites.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .errors import CLIError


def check_test_size(test_size: float) -> None:
    if not 0 < test_size < 1:
        raise CLIError(f"--test-size must be between 0 and 1, got {test_size}")


# --dtype values a model's weights load in (names as torch spells them, and short forms)
DTYPES = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "double": "float64",
}


def check_model_args(args: argparse.Namespace) -> None:
    """--dtype and --device-map, checked before anything loads: torch's own errors for
    them are tracebacks from deep inside a load."""
    if args.dtype is not None:
        name = str(args.dtype).strip().lower().removeprefix("torch.")
        if name not in DTYPES:
            raise CLIError(
                f"--dtype {args.dtype}: weights load as float32, float16, bfloat16 (or "
                "auto, as saved); integer types such as int8 are quantisation, which "
                "lm-probe does not do"
            )
        args.dtype = DTYPES[name]
    if args.device_map is not None:
        args.device_map = _check_device(str(args.device_map).strip())
    _check_out(args.out)


def _check_out(out: Path) -> None:
    """--out must be (or become) a folder: found out now, not after every probe fitted."""
    for place in (out, *out.parents):
        if place.exists():
            if not place.is_dir():
                what = "--out" if place == out else f"--out {out}: {place}"
                raise CLIError(
                    f"{what} is a file; --out names a folder for metrics.csv, "
                    "metrics.json and report.html"
                )
            if not os.access(place, os.W_OK):
                raise CLIError(f"--out {out}: cannot write in {place}")
            return


def _check_device(spec: str) -> str:
    if spec in ("auto", "balanced", "balanced_low_0", "sequential", "cpu"):
        return spec
    kind, _, index = spec.partition(":")
    if kind not in ("cuda", "mps", "xpu") or (index and not index.isdigit()):
        raise CLIError(
            f"--device-map {spec}: use auto (spread over the GPUs there are, else the "
            "CPU), cpu, or one device such as cuda:0"
        )
    import torch

    backend = getattr(torch, kind, None) if kind != "mps" else torch.backends.mps
    available = backend is not None and backend.is_available()
    count = torch.cuda.device_count() if kind == "cuda" and available else None
    if not available:
        raise CLIError(
            f"--device-map {spec}: this machine has no {kind.upper()} device that torch "
            f"{torch.__version__} can use; use --device-map cpu (or auto)"
        )
    if count is not None and index and int(index) >= count:
        raise CLIError(
            f"--device-map {spec}: there are {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
        )
    return spec


def resolve_layers(spec: str | None, model: Any) -> list[tuple[str, str]]:
    """Turn "0,5,15" / "all" / submodule names into (probe name, submodule) pairs.

    A number i means h[i]: 0 = the embeddings, i > 0 = the output of block i.
    Anything with a dot is taken as a submodule name as is.
    """
    items = [s.strip() for s in (spec or "").split(",") if s.strip()]
    needs_layout = not items or any("." not in s for s in items)
    sites: list[str] = []
    if needs_layout:
        from ..core.engine.submodules import hidden_states
        from ..core.errors import SubmoduleError

        try:
            sites = hidden_states(model)
        except SubmoduleError as e:
            raise CLIError(
                f"{e}; or pass them to --layers, e.g. "
                "--layers model.layers.3.output,model.layers.7.output"
            ) from None
    n_blocks = len(sites) - 1
    if not items:  # seven evenly spaced depths, embeddings and last block included
        items = [str(i) for i in sorted({round(k * n_blocks / 6) for k in range(7)})]
    elif items == ["all"]:
        items = [str(i) for i in range(n_blocks + 1)]
    out: list[tuple[str, str]] = []
    for item in items:
        if "." in item:
            out.append((item, item if item.endswith((".output", ".input")) else item + ".output"))
            continue
        try:
            i = int(item)
        except ValueError:
            raise CLIError(
                f"--layers: {item!r} is neither a layer number nor a submodule name"
            ) from None
        if not 0 <= i <= n_blocks:
            raise CLIError(
                f"--layers: {i} is out of range; this model has h[0] (embeddings) to "
                f"h[{n_blocks}] ({n_blocks} blocks)"
            )
        out.append((f"h{i}", sites[i]))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise CLIError(f"--layers lists a layer twice: {','.join(names)}")
    return out
