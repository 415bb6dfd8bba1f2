"""How much memory a fit needs, checked before the first batch.

A run that dies from an out-of-memory error after an hour of extraction loses the
hour. The estimate here is cheap (no forward pass: widths come from the runner's
dry run) and conservative enough to catch the usual mistakes (a batch size or
sequence length far too large for the GPU, a pooled cache larger than RAM).

What a fit holds:
- the model's parameters (already loaded, so reported, not asked for again);
- per batch, on the device of each probed module: the activations read in one
  trace (batch x longest length x width x dtype bytes each, all alive until the
  trace ends) plus the forward pass's own working set;
- the pooled-feature cache: examples x width x 4 bytes per feature key and data set
  (one row per real token for token-level probes). Where the probe maths runs in
  torch (an accelerator) it is kept on that device up to the runner's
  ``device_budget`` (`FeatureCache.device_budget`), then in host RAM up to the runner's
  ``memory_budget``; past that it spills to disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ProbeError
from . import modeling
from .data import ProbeDataset
from .modeling import is_meta_model, model_device, torch_module

GiB = 1024**3
# Headroom kept free on every device: allocator fragmentation, CUDA context,
# Python objects, the probes themselves.
SAFETY = 1.2


class MemoryBudgetError(ProbeError, MemoryError):
    """A fit would not fit in memory; the message says what to change."""


def _fmt(n: float) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


@dataclass
class MemoryEstimate:
    """A readable breakdown of what a fit needs (all sizes in bytes)."""

    model: dict[str, int]  # device -> parameter + buffer bytes (already allocated)
    activations: dict[str, int]  # device -> peak per-batch bytes during one trace
    cache: int  # pooled features still to extract (host RAM or disk)
    cache_budget: int  # the runner's memory_budget: past it the cache spills to disk
    available: dict[str, int | None]  # device -> free bytes now (None: unknown)
    remote: bool = False
    notes: list[str] = field(default_factory=list)
    cache_device: str | None = None  # where the torch engine keeps features (None: host)
    cache_device_budget: int = 0  # room left in the cache's device budget there

    @property
    def cache_on_device(self) -> int:
        return min(self.cache, self.cache_device_budget) if self.cache_device else 0

    @property
    def cache_in_ram(self) -> int:
        return min(self.cache - self.cache_on_device, self.cache_budget)

    @property
    def cache_on_disk(self) -> int:
        return self.cache - self.cache_on_device - self.cache_in_ram

    def needed(self) -> dict[str, int]:
        """Bytes each device must still find (the model is already loaded)."""
        need = {d: int(b * SAFETY) for d, b in self.activations.items()}
        need["cpu"] = need.get("cpu", 0) + int(self.cache_in_ram * SAFETY)
        if self.cache_on_device:
            dev = self.cache_device
            need[dev] = need.get(dev, 0) + int(self.cache_on_device * SAFETY)
        return need

    def shortfalls(self) -> dict[str, tuple[int, int]]:
        """device -> (needed, available) where a device lacks room."""
        out = {}
        for dev, need in self.needed().items():
            free = self.available.get(dev)
            if free is not None and need > free:
                out[dev] = (need, free)
        return out

    def __str__(self) -> str:
        lines = ["memory estimate for this fit:"]
        where = "on the NDIF server" if self.remote else "already loaded"
        for dev, b in sorted(self.model.items()):
            lines.append(f"  model parameters on {dev}: {_fmt(b)} ({where})")
        for dev, b in sorted(self.activations.items()):
            lines.append(f"  activations per batch on {dev}: {_fmt(b)} (peak during one trace)")
        spill = f", {_fmt(self.cache_on_disk)} of it spills to disk" if self.cache_on_disk else ""
        if self.cache_on_device:
            lines.append(
                f"  pooled-feature cache on {self.cache_device}: {_fmt(self.cache_on_device)} "
                f"(room in its device budget {_fmt(self.cache_device_budget)})"
            )
        lines.append(
            f"  pooled-feature cache: {_fmt(self.cache - self.cache_on_device)} in host RAM "
            f"(budget {_fmt(self.cache_budget)}{spill})"
        )
        for dev, need in sorted(self.needed().items()):
            free = self.available.get(dev)
            shown = "unknown" if free is None else _fmt(free)
            lines.append(f"  needed on {dev} (x{SAFETY} headroom): {_fmt(need)}; free now: {shown}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython: print the breakdown
        p.text(str(self))


# ---------------------------------------------------------------------------- free memory


def host_available() -> int | None:
    """Free host RAM: MemAvailable from /proc/meminfo, else sysconf's free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def device_available(device: str) -> int | None:
    """Free bytes on an accelerator (CUDA via mem_get_info); host RAM for "cpu"."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return host_available()
    if dev.type == "cuda" and torch.cuda.is_available():
        try:
            free, _total = torch.cuda.mem_get_info(dev)
            return int(free)
        except RuntimeError:
            return None
    return None


# ---------------------------------------------------------------------------- estimate


def _dtype_bytes(module: torch.nn.Module) -> int:
    p = next(module.parameters(), None)
    return p.element_size() if p is not None and p.is_floating_point() else 4


def _module_device(module: torch.nn.Module, fallback: torch.device) -> str:
    p = next(module.parameters(), None)
    if p is None or p.device.type == "meta":
        return str(fallback)
    return str(p.device)


def _config_int(config: Any, *names: str) -> int | None:
    for n in names:
        v = getattr(config, n, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _model_bytes(module: torch.nn.Module) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in list(module.parameters()) + list(module.buffers()):
        dev = "offloaded" if t.device.type == "meta" else str(t.device)
        out[dev] = out.get(dev, 0) + t.numel() * t.element_size()
    return out


def _rows(ds: ProbeDataset, token_level: bool) -> int:
    return int(ds.lengths.sum()) if token_level else len(ds)


def estimate_memory(
    runner: Any,
    train_set: ProbeDataset,
    eval_set: ProbeDataset | None = None,
    batch_size: int = 32,
    *,
    available: dict[str, int] | None = None,
) -> MemoryEstimate:
    """Estimate what `runner.fit_probes(train_set, eval_set, batch_size=...)` needs.

    Print the result for a breakdown; `.shortfalls()` names devices that lack room.
    A data set whose features are already in the runner's cache is not counted again.
    `available` ({"cpu": bytes, "cuda:0": bytes}) replaces the measured free memory,
    e.g. to leave room for other jobs.
    """
    model = runner.model
    module = torch_module(model)
    remote = bool(getattr(runner, "remote", False))
    named = dict(module.named_modules())
    config = getattr(module, "config", None)
    hidden = _config_int(config, "hidden_size", "n_embd", "d_model") if config else None
    longest = max(
        (int(ds.lengths.max()) for ds in (train_set, eval_set) if ds is not None and len(ds)),
        default=1,
    )
    b = min(batch_size, max(len(train_set), 1))
    input_device = model_device(model)
    keys = sorted({c.feature_key for c in runner.configs})
    notes: list[str] = []

    activations: dict[str, int] = {}
    cache = 0
    # each data_key checks the weights' fingerprint: once per dataset, not per read
    datasets = [(runner.data_key(ds), ds) for ds in (train_set, eval_set) if ds is not None]
    for path, kind, how in keys:
        shape = runner.site_shapes.get(path) if kind == "output" else None
        width = shape[-1] if shape else hidden or 0
        if not width:
            notes.append(f"width of {path}.{kind} unknown; not counted")
            continue
        has_tokens = shape is None or len(shape) == 3
        sub = named.get(path, module)
        per_token = longest if has_tokens else 1
        act = b * per_token * width * _dtype_bytes(sub)
        pooled = b * (per_token if how == "none" else 1) * width * 4
        dev = _module_device(sub, input_device)
        if not remote:
            activations[dev] = activations.get(dev, 0) + act + pooled
        for fp, ds in datasets:
            if runner.cache.get(fp, (path, kind, how)) is None:
                cache += _rows(ds, how == "none") * width * 4

    if not remote and hidden:
        # The forward pass's own working set at its widest point: a few hidden-size
        # buffers, the MLP's intermediate activation, and attention scores (eager
        # attention materialises heads x length x length per example).
        inter = _config_int(config, "intermediate_size", "n_inner") or 4 * hidden
        heads = _config_int(config, "num_attention_heads", "n_head") or 1
        bytes_ = _dtype_bytes(module)
        working = b * longest * (3 * hidden + inter) * bytes_ + b * heads * longest**2 * bytes_
        dev = str(input_device)
        activations[dev] = activations.get(dev, 0) + working

    # features kept where the probe maths runs in torch (modeling.stack_device)
    engine = (
        None if remote else modeling.stack_device(getattr(runner, "probe_device", input_device))
    )
    stored = getattr(runner, "store", None) is not None  # then the store file holds rows
    cache_device = str(engine) if engine is not None and not stored else None
    held = runner.cache.device_nbytes
    device_room = max(runner.cache.device_budget(engine) - held, 0) if cache_device else 0

    model_bytes = _model_bytes(module)
    if is_meta_model(model):
        model_bytes = {"remote" if remote else "not loaded": sum(model_bytes.values())}
    devices = set(activations) | {"cpu"} | ({cache_device} if cache_device else set())
    free = {d: device_available(d) for d in devices}
    free.update(available or {})
    return MemoryEstimate(
        model=model_bytes,
        activations=activations,
        cache=cache,
        # with the persistent store on, pooled features live in memory-mapped files
        cache_budget=0 if getattr(runner, "store", None) is not None else runner.cache.budget_bytes,
        available=free,
        remote=remote,
        notes=notes,
        cache_device=cache_device,
        cache_device_budget=device_room,
    )


def guard_memory(
    runner: Any,
    train_set: ProbeDataset,
    eval_set: ProbeDataset | None,
    batch_size: int,
    *,
    available: dict[str, int] | None = None,
) -> MemoryEstimate:
    """Refuse a fit that cannot fit, before any batch runs.

    A cache too big for RAM is spilled to disk instead (the runner's cache budget
    is lowered, with a warning) when the disk has room; activations too big for a
    device are refused with what to change.
    """
    est = estimate_memory(runner, train_set, eval_set, batch_size, available=available)
    short = est.shortfalls()
    dev = est.cache_device
    if dev in short and est.cache_on_device:  # the device keeps less; the rest goes to host
        room = max(int((est.available[dev] or 0) / SAFETY) - est.activations.get(dev, 0), 0)
        est.cache_device_budget = room
        runner.cache.device_budget_bytes = runner.cache.device_nbytes + room
        short = est.shortfalls()
    cpu = short.get("cpu")
    if cpu is not None and est.cache_in_ram:
        free_ram = est.available["cpu"] or 0
        room = int(free_ram / SAFETY) - est.activations.get("cpu", 0)
        if dev == "cpu":  # the torch engine on the CPU: its "device" part is in RAM too
            room -= est.cache_on_device
        disk = shutil.disk_usage(tempfile.gettempdir()).free
        spill = est.cache - est.cache_on_device - max(room, 0)
        if room > 0 and spill < disk:
            warnings.warn(
                f"the pooled-feature cache ({_fmt(est.cache)}) does not fit in free RAM "
                f"({_fmt(free_ram)}); spilling past {_fmt(room)} to disk in "
                f"{tempfile.gettempdir()} (later epochs read from disk)",
                stacklevel=3,
            )
            runner.cache.budget_bytes = room
            est.cache_budget = room
            short = est.shortfalls()
    if short:
        worst = ", ".join(
            f"{dev} needs {_fmt(need)} but has {_fmt(free)} free"
            for dev, (need, free) in sorted(short.items())
        )
        raise MemoryBudgetError(
            f"this fit would run out of memory: {worst}.\n{est}\n"
            "Lower batch_size, or max_length when building the ProbeDataset, probe fewer "
            "submodules per fit, load the model in bfloat16 (load_model(..., "
            "dtype='bfloat16')) or shard it (device_map='auto'); a smaller "
            "ProbeRunner(memory_budget=...) spills the pooled cache to disk. "
            "fit_probes(..., memory_check=False) skips this check."
        )
    return est
