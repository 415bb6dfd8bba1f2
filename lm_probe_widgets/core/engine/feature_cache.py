"""The pooled-feature cache: the model runs once per example, every later epoch
and every evaluation reads from here.

Pooled features are small (examples x width x 4 bytes per probe). Past a memory
budget the cache first forgets the least recently used datasets that the latest
fit does not use (features asked for by get_probe_features, compute_metrics on
other data), then spills to a disk-backed array in a temporary folder, trading
some speed in later epochs for bounded RAM.

With the persistent store on (`ProbeRunner(store=...)`), a key's rows live in a
`DiskFeatures` instead: the on-disk entry (core.engine.disk_store) is the array, so rows
survive the process and other runners and kernels read them without the model.

Where the probe maths runs in torch (a fit on an accelerator: `FeatureCache.device`),
rows stay on that device (`DeviceFeatures`) while they fit the device budget, so a GPU
fit never sends a feature to the host and back; past it they go to host RAM and the
disk spill as above. A persistent store entry stays the home of its rows (a host file
that outlives the process); the fit copies what it reads of it to the device.
Readers ask `resident(indices, device)`: a tensor where the rows are on the device, else
numpy, and move only what they gather (`rows_on`).
"""

from __future__ import annotations

import numbers
import os
import tempfile
from collections import OrderedDict

import numpy as np
import torch

from ..errors import ProbeError
from .data import ProbeDataset
from .disk_store import Entry
from .extract import FeatureKey
from .rows import rows_on

DEFAULT_BUDGET_BYTES = 2 * 1024**3
# Default device budget: this share of the device's free memory when the cache first
# keeps rows there (the rest is for the forward pass's activations and the probes).
DEVICE_SHARE = 0.25


def check_budget(name: str, value: object) -> int:
    """`value` as a budget in bytes (a whole number >= 0), or a ProbeError that says
    what to give (checked when the runner is made, before anything runs)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        hint = ", or None for the default" if name == "device_budget" else ""
        raise ProbeError(
            f"{name} must be a whole number of bytes >= 0 (e.g. 2 * 1024**3){hint}; got {value!r}"
        )
    return int(value)


def _unfilled(filled: np.ndarray) -> ProbeError:
    missing = int((~filled).sum())
    return ProbeError(
        f"{missing} example(s) have no computed features yet; this is a bug if it "
        "reaches you: please report it"
    )


class FeatureStore:
    """Rows of one feature key for one dataset; `offsets[i]:offsets[i+1]` are
    example i's rows (one row per example, or one per real token)."""

    def __init__(self, offsets: np.ndarray, spill_dir: str | None = None) -> None:
        self.offsets = offsets
        self.filled = np.zeros(len(offsets) - 1, dtype=bool)
        self.array: np.ndarray | None = None
        self._spill_dir = spill_dir

    @property
    def nbytes(self) -> int:
        return 0 if self.array is None else self.array.nbytes

    def write(self, indices: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
        rows = rows_on(rows, None)
        if self.array is None:
            shape = (int(self.offsets[-1]), rows.shape[1])
            if self._spill_dir is not None:
                fd, path = tempfile.mkstemp(suffix=".f32", dir=self._spill_dir)
                os.close(fd)
                self.array = np.lib.format.open_memmap(path, "w+", np.float32, shape)
            else:
                self.array = np.empty(shape, dtype=np.float32)
        starts, ends = self.offsets[indices], self.offsets[indices + 1]
        if np.all(ends - starts == 1):
            self.array[starts] = rows
        else:
            pos = 0
            for s, e in zip(starts, ends, strict=True):
                self.array[s:e] = rows[pos : pos + e - s]
                pos += e - s
        self.filled[indices] = True

    def rows(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Rows of the given examples (all when None); refuses any example whose rows
        were never computed, so an interrupted extraction cannot leak garbage."""
        filled = self.filled if indices is None else self.filled[indices]
        if self.array is None or not filled.all():
            raise _unfilled(filled if self.array is not None else np.zeros_like(filled))
        if indices is None:
            return self.array
        return self.array[row_index(self.offsets, indices)]

    def resident(self, indices: np.ndarray | None = None, device: torch.device | None = None):
        """`rows` as they are kept: on the host, numpy."""
        return self.rows(indices)


class DeviceFeatures:
    """A FeatureStore whose rows are a float32 tensor on `device` (where the probe maths
    runs in torch): written from the device each site ran on, read there."""

    nbytes = 0  # of host RAM

    def __init__(self, offsets: np.ndarray, width: int, device: torch.device) -> None:
        self.offsets, self.device = offsets, device
        self.filled = np.zeros(len(offsets) - 1, dtype=bool)
        self.array = torch.empty((int(offsets[-1]), width), dtype=torch.float32, device=device)

    @property
    def device_nbytes(self) -> int:
        return self.array.numel() * 4

    def write(self, indices: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
        at = torch.as_tensor(row_index(self.offsets, indices), device=self.device)
        self.array[at] = rows_on(rows, self.device).float()
        self.filled[indices] = True

    def resident(self, indices: np.ndarray | None = None, device: torch.device | None = None):
        """Rows of the given examples (all when None): a tensor on `device`, or numpy
        on the host when `device` is None (the numpy edges)."""
        filled = self.filled if indices is None else self.filled[indices]
        if not filled.all():
            raise _unfilled(filled)
        x = self.array
        if indices is not None:
            x = x[torch.as_tensor(row_index(self.offsets, indices), device=self.device)]
        return rows_on(x, device)

    def rows(self, indices: np.ndarray | None = None) -> np.ndarray:
        """A host copy of the rows (for code that reads numpy)."""
        return self.resident(indices, None)


class DiskFeatures:
    """A FeatureStore whose rows are a persistent store entry (memory-mapped, so they
    cost page cache, not budgeted RAM). `filled` is the entry's on-disk mask: rows
    another process writes meanwhile count too, and unwritten rows are never read."""

    nbytes = 0

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.offsets = entry.offsets

    @property
    def filled(self) -> np.ndarray:
        return self.entry.filled

    def write(self, indices: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
        self.entry.write(indices, rows_on(rows, None))

    def rows(self, indices: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self.entry.rows(indices))

    def resident(self, indices: np.ndarray | None = None, device: torch.device | None = None):
        """`rows` as they are kept: in the store's file, numpy."""
        return self.rows(indices)


def feature_offsets(ds: ProbeDataset, key: FeatureKey) -> np.ndarray:
    """Example i owns rows offsets[i]:offsets[i+1]: one row, or one per real token."""
    return np.arange(len(ds) + 1) if key[2] != "none" else ds.token_offsets()


def row_index(offsets: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Row numbers of the given examples, in order."""
    if np.all(np.diff(offsets) == 1):
        return np.asarray(indices)
    if len(indices) == 0:  # e.g. a batch whose token rows of this key are all stored
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])


class FeatureCache:
    """FeatureStores keyed by (data key, feature key), least recently used first.
    A data key names the model's weights and the dataset's token ids together
    (`ProbeRunner.data_key`), so other weights never get these features; `pinned`
    data keys (the latest fit's data) are never forgotten.

    `device` (set by a fit whose probe maths runs in torch; None: numpy on the host)
    is where new rows are kept while `device_budget()` allows: `device_budget_bytes`
    (`ProbeRunner(device_budget=...)`), else `DEVICE_SHARE` of the device's free memory
    when rows first go there."""

    def __init__(
        self, budget_bytes: int = DEFAULT_BUDGET_BYTES, device_budget_bytes: int | None = None
    ) -> None:
        self.budget_bytes = budget_bytes
        self.device_budget_bytes = device_budget_bytes
        self.device: torch.device | None = None
        self.pinned: set[str] = set()
        self._stores: OrderedDict[str, dict[FeatureKey, FeatureStore]] = OrderedDict()
        self._spill: tempfile.TemporaryDirectory | None = None
        self._measured: dict[str, int] = {}  # device -> the default budget, measured once

    def get(self, fp: str, key: FeatureKey) -> FeatureStore | None:
        stores = self._stores.get(fp)
        if stores is None:
            return None
        self._stores.move_to_end(fp)
        return stores.get(key)

    def device_budget(self, device: torch.device | None = None) -> int:
        """Bytes of rows the cache keeps on `device` (default `self.device`; 0 for None)."""
        device = self.device if device is None else device
        if device is None:
            return 0
        if self.device_budget_bytes is not None:
            return self.device_budget_bytes
        name = str(device)
        if name not in self._measured:
            from .memory import device_available

            free = device_available(name)
            self._measured[name] = int(DEVICE_SHARE * free) if free else 0
        return self._measured[name]

    def store(self, ds: ProbeDataset, fp: str, key: FeatureKey, width: int) -> FeatureStore:
        found = self.get(fp, key)
        if found is not None:
            return found
        offsets = feature_offsets(ds, key)
        need = int(offsets[-1]) * width * 4
        if self.device is not None:
            self._forget_unused(need, keep=fp, on_device=True)
            if self.device_nbytes + need <= self.device_budget():
                return self._keep(fp, key, DeviceFeatures(offsets, width, self.device))
        self._forget_unused(need, keep=fp)
        spill = None
        if self.nbytes + need > self.budget_bytes:
            if self._spill is None:
                self._spill = tempfile.TemporaryDirectory(prefix="lm_probe_features_")
            spill = self._spill.name
        return self._keep(fp, key, FeatureStore(offsets, spill))

    def _keep(self, fp: str, key: FeatureKey, store: FeatureStore) -> FeatureStore:
        self._stores.setdefault(fp, {})[key] = store
        self._stores.move_to_end(fp)
        return store

    def adopt(self, fp: str, key: FeatureKey, store: DiskFeatures) -> DiskFeatures:
        """Serve `key` of data `fp` from a store entry from now on."""
        return self._keep(fp, key, store)

    def _forget_unused(self, need: int, keep: str, on_device: bool = False) -> None:
        """Drop least recently used, unpinned datasets until `need` more bytes fit in
        host RAM (or on the device). (Arrays already handed out stay valid: forgetting
        only drops references.)"""
        room = self.device_budget() if on_device else self.budget_bytes
        for fp in list(self._stores):
            used = self.device_nbytes if on_device else self.nbytes
            if used + need <= room:
                return
            if fp != keep and fp not in self.pinned:
                del self._stores[fp]

    def _all(self) -> list:
        return [s for stores in self._stores.values() for s in stores.values()]

    @property
    def nbytes(self) -> int:
        """Bytes of rows in host RAM (spilled rows count: the spill is the budget's)."""
        return sum(s.nbytes for s in self._all())

    @property
    def device_nbytes(self) -> int:
        """Bytes of rows kept on devices."""
        return sum(getattr(s, "device_nbytes", 0) for s in self._all())

    @property
    def spilled(self) -> bool:
        return self._spill is not None

    def clear(self) -> None:
        self._stores.clear()
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None
