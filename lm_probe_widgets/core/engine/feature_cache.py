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
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict

import numpy as np

from ..errors import ProbeError
from .data import ProbeDataset
from .disk_store import Entry
from .extract import FeatureKey

DEFAULT_BUDGET_BYTES = 2 * 1024**3


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

    def write(self, indices: np.ndarray, rows: np.ndarray) -> None:
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
            missing = int((~filled).sum()) if self.array is not None else len(filled)
            raise ProbeError(
                f"{missing} example(s) have no computed features yet; this is a bug if it "
                "reaches you: please report it"
            )
        if indices is None:
            return self.array
        return self.array[row_index(self.offsets, indices)]


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

    def write(self, indices: np.ndarray, rows: np.ndarray) -> None:
        self.entry.write(indices, rows)

    def rows(self, indices: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self.entry.rows(indices))


def feature_offsets(ds: ProbeDataset, key: FeatureKey) -> np.ndarray:
    """Example i owns rows offsets[i]:offsets[i+1]: one row, or one per real token."""
    return np.arange(len(ds) + 1) if key[2] != "none" else ds.token_offsets()


def row_index(offsets: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Row numbers of the given examples, in order."""
    if np.all(np.diff(offsets) == 1):
        return np.asarray(indices)
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])


class FeatureCache:
    """FeatureStores keyed by (data key, feature key), least recently used first.
    A data key names the model's weights and the dataset's token ids together
    (`ProbeRunner.data_key`), so other weights never get these features; `pinned`
    data keys (the latest fit's data) are never forgotten."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.pinned: set[str] = set()
        self._stores: OrderedDict[str, dict[FeatureKey, FeatureStore]] = OrderedDict()
        self._spill: tempfile.TemporaryDirectory | None = None

    def get(self, fp: str, key: FeatureKey) -> FeatureStore | None:
        stores = self._stores.get(fp)
        if stores is None:
            return None
        self._stores.move_to_end(fp)
        return stores.get(key)

    def store(self, ds: ProbeDataset, fp: str, key: FeatureKey, width: int) -> FeatureStore:
        found = self.get(fp, key)
        if found is not None:
            return found
        offsets = feature_offsets(ds, key)
        need = int(offsets[-1]) * width * 4
        self._forget_unused(need, keep=fp)
        spill = None
        if self.nbytes + need > self.budget_bytes:
            if self._spill is None:
                self._spill = tempfile.TemporaryDirectory(prefix="lm_probe_features_")
            spill = self._spill.name
        store = self._stores.setdefault(fp, {})[key] = FeatureStore(offsets, spill)
        self._stores.move_to_end(fp)
        return store

    def adopt(self, fp: str, key: FeatureKey, store: DiskFeatures) -> DiskFeatures:
        """Serve `key` of data `fp` from a store entry from now on."""
        self._stores.setdefault(fp, {})[key] = store
        self._stores.move_to_end(fp)
        return store

    def _forget_unused(self, need: int, keep: str) -> None:
        """Drop least recently used, unpinned datasets until `need` more bytes fit.
        (Arrays already handed out stay valid: forgetting only drops references.)"""
        for fp in list(self._stores):
            if self.nbytes + need <= self.budget_bytes:
                return
            if fp != keep and fp not in self.pinned:
                del self._stores[fp]

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for stores in self._stores.values() for s in stores.values())

    @property
    def spilled(self) -> bool:
        return self._spill is not None

    def clear(self) -> None:
        self._stores.clear()
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None
