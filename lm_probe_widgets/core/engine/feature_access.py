"""How a runner reads pooled features: from its in-memory cache, from the persistent
store (`core.engine.disk_store`), else from the model, one trace per batch.

`FeatureAccess` is the part of `ProbeRunner` that does this; it uses the runner's
`model`, `configs`, `cache`, `store`, `remote`, `_dry` (the submodule dry run) and
`_extractors`. Keys: a data key names the model's weights and modules, the forward
hooks on it and the dataset's token ids (`data_key`), a feature key the read site and
pooling (`core.engine.extract.FeatureKey`).

Features follow the computation. Weights and the module tree are in the model's
fingerprint (`core.engine.fingerprint`), so an edited weight or a swapped module
(`mlp.act = torch.nn.Identity()`) never gets the old features, in memory or from the
store. A forward hook (or pre-hook, on any module, the root included, or global) or
an nnsight edit can change the features without changing anything that can be
hashed, so while one is present the persistent store is bypassed (neither read nor
written; one StoreWarning per set of hooks), and the in-memory cache keeps what is
computed under those very hooks (by registration: a hook removed and added back is
a new one). A hook that changes what it does while it stays registered must be
removed and added again (or call `runner.cache.clear()`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..config import ProbeConfig, split_submodule
from .data import Batch, ProbeDataset
from .disk_store import DiskStore, StoreWarning, entry_id, save_arrays
from .disk_store import export as export_entry
from .extract import Extractor, FeatureKey, with_cheap_poolings
from .feature_cache import (
    DeviceFeatures,
    DiskFeatures,
    FeatureStore,
    feature_offsets,
    row_index,
)
from .fingerprint import forward_hooks, model_fingerprint
from .plan import check_inputs
from .submodules import validate_submodules

# Part of every store key: bump when extraction or pooling changes what a row holds.
FEATURES_VERSION = 1
_WARNED_HOOKS: set[tuple] = set()  # hook sets already reported (one warning each)


def _hooks_token(hooks: tuple[tuple[str, int], ...]) -> str:
    """The part of a data key that names the hooks in place ('' when none)."""
    if not hooks:
        return ""
    return "+hooks:" + ",".join(str(hid) for _, hid in sorted(hooks, key=lambda h: h[1]))


class FeatureAccess:
    """Feature reading for `ProbeRunner` (see the module doc)."""

    # True inside a fit, whose start verified the weights' fingerprint: the change check
    # walks every parameter (~4 ms for SmolLM2), and a fit asks for keys hundreds of times.
    _weights_pinned = False
    _hooks: tuple[tuple[str, int], ...] = ()  # forward hooks the last data_key saw

    def data_key(self, ds: ProbeDataset) -> str:
        """Cache key of `ds`'s features under this model's current weights, modules and
        forward hooks."""
        if not self._weights_pinned or self._model_fp is None:
            self._model_fp = model_fingerprint(self.model)  # cheap unless a weight changed
        self._hooks = forward_hooks(self.model)
        return f"{self._model_fp}{_hooks_token(self._hooks)}/{ds.fingerprint()}"

    def _persistent(self) -> DiskStore | None:
        """The store to read and write through now: none while hooks are on the model
        (`data_key` just looked), said once per set of hooks."""
        hooks = getattr(self, "_hooks", ())
        if self.store is None or not hooks:
            return self.store
        seen = (id(self.model), hooks)
        if seen not in _WARNED_HOOKS:
            _WARNED_HOOKS.add(seen)
            names = sorted({what for what, _ in hooks})
            shown = "; ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
            warnings.warn(
                f"lm_probe_widgets: {shown}: features are computed with the hooks in place "
                "and kept out of the feature store while any hook is registered",
                StoreWarning,
                stacklevel=4,
            )
        return None

    def extractor(self, keys: Sequence[FeatureKey]) -> Extractor:
        k = tuple(sorted(set(keys)))
        if k not in self._extractors:
            if self.remote:
                from .remote import RemoteExtractor

                self._extractors[k] = RemoteExtractor(self.model, list(k), self._dry, self.remote)
            else:
                self._extractors[k] = Extractor(self.model, list(k), self._dry)
        return self._extractors[k]

    def _store_key(self, ds: ProbeDataset, key: FeatureKey) -> dict[str, Any]:
        """The persistent store's key: which weights, which token ids, which read."""
        self.data_key(ds)  # sets self._model_fp
        path, kind, how = key
        return {
            "model": self._model_fp,
            "data": ds.fingerprint(),
            "site": f"{path}.{kind}",
            "pooling": how,
            "version": FEATURES_VERSION,
        }

    def _feature_store(
        self, ds: ProbeDataset, fp: str, key: FeatureKey
    ) -> FeatureStore | DeviceFeatures | DiskFeatures | None:
        """Where `key`'s rows of `ds` are kept: the in-memory cache, else a persistent
        store entry (now also served through the cache), else None (nothing yet)."""
        found = self.cache.get(fp, key)
        store = self._persistent()
        if found is None and store is not None:
            entry = store.get(self._store_key(ds, key))
            if entry is not None and np.array_equal(entry.offsets, feature_offsets(ds, key)):
                found = self.cache.adopt(fp, key, DiskFeatures(entry))
        return found

    def _write_rows(
        self,
        ds: ProbeDataset,
        fp: str,
        key: FeatureKey,
        store: FeatureStore | DeviceFeatures | DiskFeatures | None,
        indices: np.ndarray,
        rows: np.ndarray | torch.Tensor,
        *,
        keep: frozenset[str] = frozenset(),
        optional: bool = False,
    ) -> FeatureStore | DeviceFeatures | DiskFeatures | None:
        """Write freshly extracted rows, creating the store if needed. Rows already
        filled are kept as they are (first write wins), so a feature never changes
        once handed out, even by float noise from another batch's padding.

        `keep`: the store entries being read now (never evicted for a new one).
        `optional`: rows kept in case they are wanted later (other poolings): stored
        only if they fit under the store's cap without evicting anything, else
        dropped (None)."""
        persistent = self._persistent()
        if store is None and optional and persistent is None:
            return None
        if store is None and persistent is not None:
            offsets = feature_offsets(ds, key)
            try:
                entry = persistent.open(
                    self._store_key(ds, key), offsets, rows.shape[1], keep=keep, optional=optional
                )
                if entry is None:  # optional, and no room for it
                    return None
            except OSError as e:
                if optional:
                    return None
                if persistent.writable():  # full disk, a file in the way...: memory only
                    warnings.warn(
                        f"feature store at {persistent.root} is unusable ({e}); this runner "
                        "keeps its features in memory only",
                        StoreWarning,
                        stacklevel=2,
                    )
                    self.store = None
                elif not getattr(self, "_read_only_said", False):
                    self._read_only_said = True  # read it, never write it
                    warnings.warn(
                        f"feature store at {persistent.root} is read-only: its complete "
                        "entries are read, features it lacks are kept in memory",
                        StoreWarning,
                        stacklevel=2,
                    )
            else:
                store = self.cache.adopt(fp, key, DiskFeatures(entry))
        if store is None:
            store = self.cache.store(ds, fp, key, rows.shape[1])
        new = ~store.filled[indices]
        if not new.all():
            lengths = np.diff(store.offsets)[indices]
            local = np.concatenate([[0], np.cumsum(lengths)])
            rows = rows[row_index(local, np.flatnonzero(new))]
            indices = indices[new]
        if len(indices):
            store.write(indices, rows)
        return store

    def iter_features(
        self,
        ds: ProbeDataset,
        keys: Sequence[FeatureKey],
        batch_size: int,
        seed: int | None = 0,
        on_batch: Any = None,
        *,
        skip: int = 0,
        device: torch.device | None = None,
    ) -> Iterator[tuple[Batch, dict[FeatureKey, np.ndarray | torch.Tensor]]]:
        """Batches of `ds` (the first `skip` left out) with pooled features. Rows come
        from the cache or the persistent store where filled; only the examples of a
        batch that miss a row are traced (one trace for all keys), and with the store
        on that trace also keeps every cheap pooling of its sites. `on_batch(batch,
        examples_done)` runs once the consumer is done with a batch. `device`: where
        the probe maths reads (None: numpy; rows kept there come as tensors there,
        others as numpy, see FeatureStore.resident)."""
        keys = sorted(set(keys))
        fp = self.data_key(ds)

        def reads_for(missing: list[FeatureKey]) -> list[FeatureKey]:
            """What a trace for rows of `missing` keys reads: only their sites, so the
            forward stops at the deepest site still missing rows; with the store on,
            also every cheap pooling of those sites and the input embeddings."""
            if self._persistent() is None:
                return missing
            site = getattr(self, "_companions", None)  # the input embeddings (runner)
            extra = [(*split_submodule(site), "mean")] if site else []
            return with_cheap_poolings(missing + extra, self._dry)

        stores = {k: self._feature_store(ds, fp, k) for k in reads_for(keys)}
        persistent = self._persistent()
        keep = frozenset(
            entry_id(self._store_key(ds, k)) for k in keys if persistent is not None
        )  # what this read needs: never evicted to make room for another entry
        dropped: set[FeatureKey] = set()  # optional reads with no room in the store
        done = 0
        for i, batch in enumerate(ds.batches(batch_size, seed=seed)):
            done += len(batch.indices)
            if i < skip:
                continue
            todo = np.zeros(len(batch.indices), dtype=bool)
            missing = []
            for k in keys:
                s = stores[k]
                lacks = True if s is None else ~s.filled[batch.indices]
                if np.any(lacks):
                    missing.append(k)
                todo |= lacks
            if todo.any():
                part = batch if todo.all() else ds.pad(batch.indices[todo])
                fresh = self.extractor(reads_for(missing))(part)
                for k, rows in fresh.items():
                    if k in dropped:
                        continue
                    optional = k not in keys
                    stores[k] = self._write_rows(
                        ds, fp, k, stores[k], part.indices, rows, keep=keep, optional=optional
                    )
                    if stores[k] is None:
                        dropped.add(k)
            batch.traced = int(todo.sum())  # examples that ran through the model
            feats = {k: stores[k].resident(batch.indices, device) for k in keys}
            yield batch, feats
            if on_batch is not None:
                on_batch(batch, done)

    def features(
        self,
        ds: ProbeDataset,
        keys: Sequence[FeatureKey],
        batch_size: int = 32,
        on_batch: Any = None,
        *,
        persist: bool = True,
        device: torch.device | None = None,
    ) -> dict[FeatureKey, np.ndarray | torch.Tensor]:
        """All rows of `ds` for each key, in dataset order. `persist=False` keeps them
        out of the persistent store (throwaway inputs, e.g. a sentence being typed).
        Numpy on the host; with a `device` (the fit's torch engine), rows kept on that
        device come as tensors there (FeatureStore.resident)."""
        with contextlib.nullcontext() if persist else self._store_paused():
            # (each batch is read where `device` says: no host copy of device rows)
            for _ in self.iter_features(ds, keys, batch_size, None, on_batch, device=device):
                pass
        fp = self.data_key(ds)
        return {k: self.cache.get(fp, k).resident(None, device) for k in set(keys)}

    @contextlib.contextmanager
    def _store_paused(self) -> Iterator[None]:
        store, self.store = self.store, None
        try:
            yield
        finally:
            self.store = store

    def export_features(
        self,
        dataset: ProbeDataset,
        probe_or_submodule: str,
        path: str | os.PathLike | None = None,
        *,
        pooling: str | None = None,
        batch_size: int = 32,
    ) -> np.ndarray | Any:
        """Features of `dataset` at a probe's read (by probe name) or at any submodule
        ("transformer.h.1.output", with `pooling`, default "mean"), for your own analysis.

        Rows are in dataset example order: row i is example i (token-level,
        `pooling="none"`: example i's real tokens in order, `dataset.token_offsets()`
        says where each starts). Missing rows are computed first (and stored). Without
        `path`, returns the array; with a `.npz` or `.safetensors` path, writes it there
        (arrays `features`, `offsets`, `filled`, `examples`, see `disk_store.export`)
        and returns the path.
        """
        by_name = {c.name: c for c in self.configs}
        if probe_or_submodule in by_name:
            cfg = by_name[probe_or_submodule]
            if pooling is not None and pooling != cfg.pooling:
                cfg = dataclasses.replace(cfg, pooling=pooling)
        else:
            cfg = ProbeConfig(probe_or_submodule, pooling=pooling or "mean")
            subs = {c.submodule for c in self.configs}
            companion = getattr(self, "_companions", None)
            if companion:
                subs.add(companion)
            if cfg.submodule not in subs:  # a new read: learn where it sits in the forward
                self._dry = validate_submodules(self.model, sorted(subs | {cfg.submodule}))
                self._extractors.clear()
        check_inputs(self.model, dataset, "dataset")
        key = cfg.feature_key
        rows = self.features(dataset, [key], batch_size)[key]
        if path is None:
            return np.array(rows)
        held = self.cache.get(self.data_key(dataset), key)
        if isinstance(held, DiskFeatures):
            return export_entry(held.entry, path)
        offsets = feature_offsets(dataset, key)
        n = len(offsets) - 1
        arrays = {
            "features": np.ascontiguousarray(rows, dtype=np.float32),
            "offsets": offsets.astype(np.int64),
            "filled": np.ones(n, dtype=bool),
            "examples": np.arange(n, dtype=np.int64),
        }
        return save_arrays(path, arrays, self._store_key(dataset, key))

    def store_info(self) -> dict[str, Any] | None:
        """The persistent store this runner reads through (None when off): root, entries
        (those of this model's current weights), bytes on disk and the size cap.
        `lm-probe store ls|du|clear` list and empty it."""
        if self.store is None:
            return None
        entries = self.store.entries()
        model_fp = model_fingerprint(self.model)
        return StoreInfo(
            root=str(self.store.root),
            entries=len(entries),
            this_model=sum((e["key"] or {}).get("model") == model_fp for e in entries),
            bytes=sum(e["bytes"] for e in entries),
            max_bytes=self.store.max_bytes,
        )


class StoreInfo(dict):
    """`store_info()`'s answer: a plain dict (sizes in bytes, for code) that prints its
    sizes readably (for people: "12.40 MiB of 2.00 GiB")."""

    def __repr__(self) -> str:
        from .memory import _fmt

        cap = self.get("max_bytes")
        size = _fmt(self["bytes"]) + (f" of {_fmt(cap)}" if cap else " (no size cap)")
        return (
            f"store at {self['root']}: {self['entries']} entries "
            f"({self['this_model']} of this model), {size}"
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython: not its dict printer
        p.text(repr(self))
