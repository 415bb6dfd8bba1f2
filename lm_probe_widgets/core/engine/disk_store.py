"""The persistent feature store: pooled features on disk, so that a new process, a
kernel restart or a new runner never runs the model again for rows it already has.

One entry per feature key (model, data, site, pooling...), named by the sha256 of the
key's canonical JSON, in its own folder under the store root::

    <id>/manifest.json  key, shape, created, checksum once complete (mtime = last used)
    <id>/offsets.npy    int64; example i owns rows offsets[i]:offsets[i+1]
    <id>/features.npy   float32 (rows, width), memory-mapped
    <id>/filled.npy     uint8 per example, memory-mapped: 1 = its rows are on disk
    <id>/sums.npy       uint32 per example: CRC-32 of its rows, written with them
    .locks/<id>.lock    flock'ed for creation, mask and manifest updates, removal
    .tmp/               entries being built, and entries being deleted

Only plain .npy arrays (loaded without pickle) and JSON: nothing executable.
Rows are written and flushed before their examples are marked filled, so a crash
leaves computed-but-unmarked rows (recomputed later), never marked-but-missing ones.
Every byte read is checked when an entry is opened: headers (any parse error), sizes,
the mask (only 0 or 1), the rows of every example marked filled against their CRC-32
while the entry is unfinished, the whole array against its checksum once complete.
Examples whose rows fail are unmarked (computed again); an unreadable entry is
discarded, both with a StoreWarning.
Entries are built in .tmp and renamed into place, so no reader sees half an entry.
Their arrays are allocated on disk when created (`posix_fallocate`, else by writing
zeros), so a full disk raises ENOSPC there (the runner then keeps its features in
memory) and never a SIGBUS later, when a write through the memory map finds no block.

A store this process cannot write (a read-only mount, a shared cache of another user)
is read, never written: its complete entries are served (locked shared where the lock
files can be opened), anything else raises PermissionError in `open`, on which the
runner computes in memory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ProbeError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking between processes
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DiskStore",
    "Entry",
    "StoreWarning",
    "cache_dir",
    "default_store_root",
    "entry_id",
    "export",
    "open_store",
    "save_arrays",
]

DEFAULT_MAX_BYTES = 20 * 1024**3
MAX_BYTES_ENV = "LM_PROBE_WIDGETS_STORE_MAX_BYTES"
STORE_ENV = "LM_PROBE_WIDGETS_STORE"  # 1/0: runners' default store on/off
# On for users; the test suite sets LM_PROBE_WIDGETS_STORE=0 (its tests count model
# forwards, which a warm store would skip) and its store tests opt in.
DEFAULT_STORE_ON = True
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
FORMAT = 2  # 2: per-example row checksums (sums.npy)
_MANIFEST, _OFFSETS, _FEATURES, _FILLED, _SUMS = (
    "manifest.json",
    "offsets.npy",
    "features.npy",
    "filled.npy",
    "sums.npy",
)
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
_STALE_TMP_S = 600  # a build in .tmp older than this was abandoned by a crashed process


class StoreWarning(UserWarning):
    """The feature store could not serve something, which is computed instead: an
    unusable entry (discarded) or damaged rows (unmarked), a full or read-only disk,
    hooks on the model."""


class _Invalid(Exception):
    """Why an entry on disk cannot be used."""


def cache_dir() -> Path:
    """The user cache folder: $LM_PROBE_WIDGETS_CACHE, else $XDG_CACHE_HOME/lm_probe_widgets,
    else ~/.cache/lm_probe_widgets. Not created here."""
    override = os.environ.get("LM_PROBE_WIDGETS_CACHE")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lm_probe_widgets"


def default_store_root() -> Path:
    """`cache_dir()/features` (so $LM_PROBE_WIDGETS_CACHE moves it too)."""
    return cache_dir() / "features"


def _canonical(key: dict[str, Any]) -> str:
    if not isinstance(key, dict):
        raise ProbeError(f"a feature store key must be a dict, got {type(key).__name__}")
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ProbeError(f"a feature store key must be JSON-able: {e}") from e


def entry_id(key: dict[str, Any]) -> str:
    """sha256 of the key's canonical JSON: equal keys share an entry across processes."""
    return hashlib.sha256(_canonical(key).encode()).hexdigest()


def _checksum(features: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=32)
    flat = features.reshape(-1)
    step = max(1, (64 << 20) // 4)  # hash in 64 MB pieces: no full copy of a large entry
    for i in range(0, len(flat), step):
        h.update(flat[i : i + step].tobytes())
    return h.hexdigest()


def _row_index(offsets: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Row numbers of the given examples, in order (each example's rows in sequence)."""
    starts, ends = offsets[indices], offsets[indices + 1]
    lengths = ends - starts
    if np.all(lengths == 1):
        return starts
    total = int(lengths.sum())
    # start of each example's rows, repeated per row, plus the row's place within it
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - before, lengths) + np.arange(total, dtype=np.int64)


def _example_sums(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC-32 of each example's rows; `rows` holds the examples' rows in sequence."""
    ends = np.cumsum(lengths)
    out = np.empty(len(lengths), dtype=np.uint32)
    for j, (a, b) in enumerate(zip(ends - lengths, ends, strict=True)):
        out[j] = zlib.crc32(np.ascontiguousarray(rows[a:b]))
    return out


def _failing_sums(
    features: np.ndarray, offsets: np.ndarray, sums: np.ndarray, examples: np.ndarray
) -> np.ndarray:
    """The given examples whose stored rows do not match their stored CRC-32 (read in
    pieces of about 64 MB: no full copy of a large entry)."""
    lengths = np.diff(offsets)[examples]
    bad = []
    start, budget = 0, max(1, (64 << 20) // (4 * max(1, features.shape[1])))  # rows
    while start < len(examples):
        stop = start + max(1, int(np.searchsorted(np.cumsum(lengths[start:]), budget)))
        part = examples[start:stop]
        rows = np.asarray(features[_row_index(offsets, part)])
        got = _example_sums(rows, lengths[start:stop])
        bad.append(part[got != sums[part]])
        start = stop
    return np.concatenate(bad) if bad else examples[:0]


def _write_json(path: Path, obj: Any) -> None:
    """Write temp + fsync + os.replace: readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_npy(path: Path, dtype: Any, shape: tuple[int, ...], writable: bool = True) -> np.memmap:
    """Memory-map an .npy file (for writing unless `writable` is False) after checking
    its header and size: numpy's own r+ mode would silently extend a truncated file
    with zeros."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
            if version not in read:
                raise ValueError(f"unsupported .npy version {version}")
            stored_shape, fortran, stored_dtype = read[version](f)
            offset = f.tell()
    except Exception as e:  # missing, cut short or garbled: numpy's header
        # parser raises ValueError, tokenize.TokenError, SyntaxError... on damaged bytes
        raise _Invalid(f"{path.name} is unreadable, truncated or garbled ({e!r})") from e
    if stored_dtype != np.dtype(dtype) or stored_shape != shape or fortran:
        raise _Invalid(f"{path.name} holds {stored_dtype} {stored_shape}, expected {dtype} {shape}")
    if path.stat().st_size != offset + int(np.prod(shape)) * np.dtype(dtype).itemsize:
        raise _Invalid(f"{path.name} has the wrong size (truncated or appended to)")
    try:
        return np.memmap(
            path, dtype=dtype, mode="r+" if writable else "r", offset=offset, shape=shape
        )
    except OSError as e:
        raise _Invalid(f"{path.name} cannot be mapped ({e})") from e


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _preallocate(path: Path, data_bytes: int) -> None:
    """Give every byte of `path` (a new .npy file whose last `data_bytes` are its zero
    data) a block on disk now: a memory-mapped write into a sparse file on a full disk
    kills the process with SIGBUS, an OSError here does not."""
    size = path.stat().st_size
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None and size:
        fd = os.open(path, os.O_RDWR)
        try:
            fallocate(fd, 0, size)
            return
        except OSError as e:
            if e.errno in _NO_SPACE:
                raise
            # the file system cannot (EOPNOTSUPP, EINVAL...): write the zeros instead
        finally:
            os.close(fd)
    step = 1 << 22
    zeros = bytes(min(step, data_bytes))
    with open(path, "r+b") as f:
        f.seek(size - data_bytes)  # after the header
        for start in range(size - data_bytes, size, step):
            f.write(zeros[: min(step, size - start)])
        f.flush()
        os.fsync(f.fileno())


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:  # removed meanwhile by another process
                pass
    return total


def _env_max_bytes() -> int:
    raw = os.environ.get(MAX_BYTES_ENV)
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    return _check_max_bytes(value, f"{MAX_BYTES_ENV}={raw!r}")


def _check_max_bytes(value: Any, what: str) -> int:
    """A cap in bytes: a whole, finite number >= 0 (0: keep nothing stored)."""
    try:
        ok = not isinstance(value, bool) and math.isfinite(value) and value >= 0
    except TypeError:
        ok = False
    if not ok:
        raise ProbeError(
            f"{what} is not a size cap: give a number of bytes >= 0, e.g. "
            f"{DEFAULT_MAX_BYTES} (the default, 20 GiB); to keep features out of the "
            f"store, turn it off ({STORE_ENV}=0 or store=False)"
        )
    return int(value)


class Entry:
    """The stored rows of one feature key. `filled` is a read-only view of the on-disk
    mask, so it also shows rows that other processes write into the same entry."""

    def __init__(
        self,
        store: DiskStore,
        path: Path,
        manifest: dict,
        offsets: np.ndarray,
        features: np.memmap,
        mask: np.memmap,
        sums: np.memmap,
    ) -> None:
        self.id: str = path.name
        self.path = path
        self.key: dict = manifest["key"]
        self.offsets = offsets
        self.width: int = int(manifest["width"])
        self._created = manifest.get("created")
        self._store = store
        self._features = features
        self._mask = mask
        self._sums = sums
        self.filled: np.ndarray = mask.view(np.bool_)
        self.filled.flags.writeable = False

    def __repr__(self) -> str:
        done = int(self._mask.sum())
        return f"Entry({self.id[:12]}, {len(self.filled)} examples ({done} filled), {self.key})"

    @property
    def n_examples(self) -> int:
        return len(self.offsets) - 1

    @property
    def complete(self) -> bool:
        return bool(self._mask.all())

    def _indices(self, indices: Any) -> np.ndarray:
        if indices is None:
            return np.arange(self.n_examples)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_examples):
            raise ProbeError(f"example index out of range 0..{self.n_examples - 1}")
        return idx

    def missing(self, indices: Any = None) -> np.ndarray:
        """The given examples (default all) whose rows are not on disk yet."""
        idx = self._indices(indices)
        return idx[~self.filled[idx]]

    def write(self, indices: Any, rows: np.ndarray) -> None:
        """Store `rows` for `indices`: each example's rows in sequence, in `indices` order.

        The rows are flushed before the mask marks them, so a crash in between leaves
        them unmarked (recomputed), never marked but unwritten.
        """
        if not self._store.writable():
            raise PermissionError(errno.EACCES, f"feature store {self._store.root} is read-only")
        idx = self._indices(indices)
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        r = _row_index(self.offsets, idx)
        if rows.shape != (len(r), self.width):
            raise ProbeError(
                f"write: expected rows of shape {(len(r), self.width)} for {len(idx)} "
                f"examples, got {rows.shape}"
            )
        self._features[r] = rows
        self._sums[idx] = _example_sums(rows, np.diff(self.offsets)[idx])
        self._features.flush()
        self._sums.flush()
        if not (self.path / _MANIFEST).exists():  # evicted or cleared meanwhile: these
            self._mask[idx] = 1  # arrays live on in this process only, nothing to lock
            return
        with self._store._lock(self.id):
            self._mask[idx] = 1
            self._mask.flush()
            if self.complete:
                self._record_checksum()

    def _record_checksum(self) -> None:
        """Under the entry's lock: put the complete array's checksum in the manifest."""
        path = self.path / _MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # removed meanwhile
        if manifest.get("created") != self._created:
            return  # removed and created afresh by another process: not our arrays
        digest = _checksum(self._features)
        if manifest.get("checksum") != digest:
            manifest["checksum"] = digest
            try:
                _write_json(path, manifest)
            except OSError:  # disk full or read-only: recorded at the next open instead
                pass

    def rows(self, indices: Any = None) -> np.ndarray:
        """Rows of the given examples in order; None = the whole array, read-only.

        Raises ProbeError if any requested example is not filled: a row that was never
        computed (zeros, or a write cut short by a crash) is never handed out.
        """
        idx = self._indices(indices)
        missing = idx[~self.filled[idx]]
        if len(missing):
            raise ProbeError(
                f"feature store entry {self.id[:12]}: {len(missing)} requested examples "
                f"are not computed yet (e.g. {missing[:5].tolist()}); compute and write "
                "them first (see Entry.missing)"
            )
        if indices is None:
            view = np.asarray(self._features)
            view.flags.writeable = False
            return view
        return self._features[_row_index(self.offsets, idx)]

    def touch(self) -> None:
        """Mark as just used (the manifest's mtime), for least-recently-used eviction."""
        if not self._store.writable():
            return
        try:
            os.utime(self.path / _MANIFEST)
        except OSError:  # evicted by another process (the arrays stay usable), read-only
            pass


class DiskStore:
    """Entries under `root` (default `default_store_root()`), kept under `max_bytes`
    (default $LM_PROBE_WIDGETS_STORE_MAX_BYTES or 20 GiB) by least-recently-used
    eviction. Safe for several processes at once."""

    def __init__(self, root: str | Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_root()
        self.max_bytes = (
            _check_max_bytes(max_bytes, f"max_bytes={max_bytes!r}")
            if max_bytes is not None
            else _env_max_bytes()
        )
        self._read_only: bool | None = None  # found out at first use

    def writable(self) -> bool:
        """False for an existing store this process cannot write (read-only mount,
        another user's cache): it is then read and never written."""
        if self._read_only is None:
            self._read_only = self.root.is_dir() and not os.access(self.root, os.W_OK)
        return not self._read_only

    def _refuse_writes(self) -> None:
        if not self.writable():
            raise PermissionError(
                errno.EACCES, f"feature store {self.root} is read-only: new entries cannot be made"
            )

    def __repr__(self) -> str:
        return f"DiskStore({str(self.root)!r}, max_bytes={self.max_bytes})"

    # -- locking -----------------------------------------------------------------

    @contextmanager
    def _lock(self, eid: str) -> Iterator[None]:
        """flock on .locks/<id>.lock. Retries if the file was removed and recreated
        between open and flock, so removing it under the lock is safe."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        path = self.root / ".locks" / f"{eid}.lock"
        if not self.writable():
            with self._shared_lock(path):
                yield
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno not in _READ_ONLY or not self.root.is_dir():
                raise
            self._read_only = True  # an existing store we may not write: read it
            with self._shared_lock(path):
                yield
            return
        os.close(fd)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if os.stat(path).st_ino == os.fstat(fd).st_ino:
                        break
                except FileNotFoundError:
                    pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)  # releases the flock

    @contextmanager
    def _shared_lock(self, path: Path) -> Iterator[None]:
        """A read-only store: a shared flock on the lock file where it can be opened
        (so a writer that can write it is waited for), else none."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- opening -----------------------------------------------------------------

    def open(
        self,
        key: dict[str, Any],
        offsets: np.ndarray,
        width: int,
        *,
        keep: Iterable[str] = (),
        optional: bool = False,
    ) -> Entry | None:
        """The entry for `key`, created empty if missing or invalid (with a
        StoreWarning saying why). Evicts least recently used entries first to make
        room for a new one, never those in `keep` (ids: what the caller reads now).
        `optional=True` (features kept in case they are wanted later): a new entry is
        made only if it fits under the cap without evicting anything, else None."""
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        width = int(width)
        if offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise ProbeError(
                "offsets must be a non-decreasing int array from 0, one per example + 1"
            )
        if width < 1:
            raise ProbeError(f"width must be positive, got {width}")
        eid = entry_id(key)
        with self._lock(eid):
            entry = self._valid(eid, key, offsets, width)
        if entry is None or (not entry.complete and not self.writable()):
            self._refuse_writes()
            n, rows = len(offsets) - 1, int(offsets[-1])
            need = rows * width * 4 + n * 13 + 2048
            if optional:
                if self.du() + need > self.max_bytes:
                    return None
            else:
                self.evict(need, keep={eid, *keep})
            with self._lock(eid):  # another process may have created it meanwhile
                try:
                    entry = self._valid(eid, key, offsets, width) or self._create(
                        eid, key, offsets, width
                    )
                except OSError:  # e.g. no space: leave no lock file without its entry
                    if not (self.root / eid).exists():
                        (self.root / ".locks" / f"{eid}.lock").unlink(missing_ok=True)
                    raise
        entry.touch()
        return entry

    def get(self, key: dict[str, Any]) -> Entry | None:
        """The valid entry for `key`, or None; never creates one (an invalid one is
        discarded with a StoreWarning)."""
        eid = entry_id(key)
        if not (self.root / eid).exists():
            return None
        with self._lock(eid):
            entry = self._valid(eid, key)
        if entry is not None and not entry.complete and not self.writable():
            return None  # its missing rows could not be written: compute them in memory
        if entry is not None:
            entry.touch()
        return entry

    def _valid(
        self,
        eid: str,
        key: dict[str, Any],
        offsets: np.ndarray | None = None,
        width: int | None = None,
    ) -> Entry | None:
        """Under the lock: the entry if present and valid; an invalid one is discarded."""
        path = self.root / eid
        if not path.exists():
            return None
        try:
            return self._load(path, key, offsets, width)
        except _Invalid as why:
            writable = self.writable()
            what = "discarding" if writable else "not using (the store is read-only)"
            warnings.warn(
                f"lm_probe_widgets feature store: {what} entry {eid[:12]} "
                f"({json.loads(_canonical(key))}) at {path}: {why}. Its features will be "
                "computed again.",
                StoreWarning,
                stacklevel=3,
            )
            if writable:
                self._discard(path)
            return None

    def _load(
        self,
        path: Path,
        key: dict[str, Any],
        offsets: np.ndarray | None,
        width: int | None,
    ) -> Entry:
        try:
            manifest = json.loads((path / _MANIFEST).read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
            rows, n, stored_width = (int(manifest[k]) for k in ("rows", "examples", "width"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _Invalid(f"manifest unreadable ({e})") from e
        if manifest.get("format") != FORMAT or manifest.get("dtype") != "float32":
            raise _Invalid("manifest of another format or dtype")
        if manifest.get("key") != json.loads(_canonical(key)):
            raise _Invalid("manifest key differs from the entry's key")
        if width is not None and stored_width != width:
            raise _Invalid(f"stored width {stored_width}, asked for {width}")
        try:
            stored_offsets = np.load(path / _OFFSETS, allow_pickle=False)
        except Exception as e:  # any damage (see _open_npy)
            raise _Invalid(f"offsets unreadable ({e!r})") from e
        if stored_offsets.dtype != np.int64 or stored_offsets.shape != (n + 1,):
            raise _Invalid("offsets do not match the manifest")
        if int(stored_offsets[-1]) != rows:
            raise _Invalid("offsets do not match the manifest")
        if offsets is not None and not np.array_equal(stored_offsets, offsets):
            raise _Invalid("stored offsets differ from the dataset's (different examples)")
        writable = self.writable()
        features = _open_npy(path / _FEATURES, np.float32, (rows, stored_width), writable)
        mask = _open_npy(path / _FILLED, np.uint8, (n,), writable)
        sums = _open_npy(path / _SUMS, np.uint32, (n,), writable)
        entry = Entry(self, path, manifest, stored_offsets, features, mask, sums)
        flags = np.asarray(mask)
        damaged = np.flatnonzero(flags > 1)  # a mask byte neither 0 nor 1: garbled
        if flags.all() and not len(damaged) and manifest.get("checksum") is not None:
            if _checksum(features) != manifest["checksum"]:
                raise _Invalid("checksum mismatch: the stored features were changed on disk")
            return entry
        # unfinished (or crashed between mask and checksum): every example marked
        # filled must hold the rows its checksum was taken of
        marked = np.flatnonzero(flags == 1)
        wrong = _failing_sums(features, stored_offsets, np.asarray(sums), marked)
        bad = np.union1d(damaged, wrong)
        if len(bad):
            if not writable:
                raise _Invalid(f"{len(bad)} examples' rows fail their checksums")
            mask[bad] = 0
            mask.flush()
            warnings.warn(
                f"lm_probe_widgets feature store: entry {path.name[:12]} at {path}: "
                f"{len(bad)} examples marked computed (e.g. {bad[:5].tolist()}) fail their "
                "checksums (damaged on disk, or never written): they will be computed again",
                StoreWarning,
                stacklevel=4,
            )
        if entry.complete and writable:
            entry._record_checksum()
        return entry

    def _create(self, eid: str, key: dict[str, Any], offsets: np.ndarray, width: int) -> Entry:
        """Build in .tmp, then rename into place: no reader ever sees half an entry."""
        tmp_root = self.root / ".tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"new-{eid[:12]}-", dir=tmp_root))
        n, rows = len(offsets) - 1, int(offsets[-1])
        try:
            np.save(tmp / _OFFSETS, offsets, allow_pickle=False)
            for name, dtype, shape in (
                (_FEATURES, np.float32, (rows, width)),
                (_FILLED, np.uint8, (n,)),
                (_SUMS, np.uint32, (n,)),
            ):
                mm = np.lib.format.open_memmap(tmp / name, "w+", dtype, shape)
                mm.flush()
                del mm
                _preallocate(tmp / name, int(np.prod(shape)) * np.dtype(dtype).itemsize)
            manifest = {
                "format": FORMAT,
                "id": eid,
                "key": json.loads(_canonical(key)),
                "examples": n,
                "rows": rows,
                "width": width,
                "dtype": "float32",
                "created": time.time(),
                "checksum": None,
            }
            _write_json(tmp / _MANIFEST, manifest)
            os.rename(tmp, self.root / eid)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (self.root / eid).exists():
                raise
            # another process (without working locks) won the race: use theirs
        return self._load(self.root / eid, key, offsets, width)

    def _discard(self, path: Path) -> None:
        """Rename out of the way first (atomic), then delete at leisure."""
        trash = self.root / ".tmp" / f"old-{path.name[:12]}-{os.getpid()}-{time.time_ns()}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    # -- housekeeping --------------------------------------------------------------

    def _ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def entries(self) -> list[dict[str, Any]]:
        """One dict per entry: id, key, examples, rows, width, bytes, filled (fraction),
        complete, last_used and created (epoch seconds). Unreadable entries have key None."""
        out = []
        for eid in self._ids():
            path = self.root / eid
            info: dict[str, Any] = {"id": eid, "key": None, "bytes": _tree_bytes(path)}
            try:
                info["last_used"] = (path / _MANIFEST).stat().st_mtime
                manifest = json.loads((path / _MANIFEST).read_text(encoding="utf-8"))
                info.update(
                    {k: manifest.get(k) for k in ("key", "examples", "rows", "width", "created")}
                )
                mask = np.load(path / _FILLED, mmap_mode="r", allow_pickle=False) == 1
                info["filled"] = float(mask.mean()) if mask.size else 1.0
                info["complete"] = bool(mask.all())
            except Exception:  # a broken entry, however damaged: still listed
                if "last_used" not in info:
                    try:
                        info["last_used"] = path.stat().st_mtime
                    except FileNotFoundError:
                        info["last_used"] = 0.0
            out.append(info)
        return out

    def du(self) -> int:
        """Bytes under the root (apparent file sizes, including unfinished builds)."""
        return _tree_bytes(self.root) if self.root.exists() else 0

    def _remove(self, eid: str) -> bool:
        with self._lock(eid):
            path = self.root / eid
            existed = path.exists()
            self._discard(path)
            (self.root / ".locks" / f"{eid}.lock").unlink(missing_ok=True)
        return existed

    def clear(self, older_than_days: float | None = None) -> int:
        """Remove all entries, or those last used more than `older_than_days` ago.
        Returns how many entries were removed."""
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        removed = sum(
            self._remove(info["id"])
            for info in self.entries()
            if cutoff is None or info["last_used"] < cutoff
        )
        self._remove_orphan_locks()
        tmp = self.root / ".tmp"  # builds and deletions that a crashed process left
        if tmp.is_dir():
            stale = time.time() - _STALE_TMP_S
            for p in tmp.iterdir():
                try:
                    if p.stat().st_mtime < stale:
                        shutil.rmtree(p, ignore_errors=True)
                except FileNotFoundError:  # another process finished with it
                    pass
        return removed

    def _remove_orphan_locks(self) -> None:
        """Lock files whose entry is gone (creations that failed, entries evicted while
        another process held them): removed under their own lock, as `_remove` does."""
        locks = self.root / ".locks"
        if not locks.is_dir():
            return
        for lock in locks.glob("*.lock"):
            eid = lock.name[: -len(".lock")]
            if (self.root / eid).exists():
                continue
            with self._lock(eid):
                if not (self.root / eid).exists():
                    lock.unlink(missing_ok=True)

    def evict(self, need_bytes: int = 0, keep: Iterable[str] = ()) -> None:
        """Remove least recently used entries until `need_bytes` more fit under
        max_bytes. Entries in `keep` are never removed (so the store may stay over)."""
        total = self.du()
        if total + need_bytes <= self.max_bytes:
            return
        keep = set(keep)
        for info in sorted(self.entries(), key=lambda i: i["last_used"]):
            if total + need_bytes <= self.max_bytes:
                return
            if info["id"] not in keep and self._remove(info["id"]):
                total -= info["bytes"]


def export(entry: Entry, path: str | Path) -> Path:
    """Write an entry's filled features to `.npz` or `.safetensors` (by suffix).

    Rows are in dataset example order, filled examples only: `filled` (bool, one per
    dataset example) says which examples are present, `examples` lists them, and the
    k-th present example's rows are `features[offsets[k]:offsets[k+1]]`. For a
    complete entry `offsets` equals the entry's and `examples` is 0..n-1.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".safetensors"):
        raise ProbeError(f"export: use a .npz or .safetensors file name, got {path.name!r}")
    filled = np.array(entry.filled, dtype=bool)
    examples = np.flatnonzero(filled).astype(np.int64)
    lengths = np.diff(entry.offsets)[examples]
    arrays = {
        "features": np.ascontiguousarray(entry.rows(examples), dtype=np.float32),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "filled": filled,
        "examples": examples,
    }
    return save_arrays(path, arrays, entry.key)


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], key: dict[str, Any]) -> Path:
    """Write exported arrays and their key to `.npz` or `.safetensors` (by suffix)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".safetensors"):
        raise ProbeError(f"export: use a .npz or .safetensors file name, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        np.savez(path, key=np.array(_canonical(key)), **arrays)
    else:
        from safetensors.numpy import save_file

        save_file(arrays, str(path), metadata={"key": _canonical(key), "id": entry_id(key)})
    return path


def open_store(store: Any = None) -> DiskStore | None:
    """A runner's `store=` argument as a DiskStore, or None for no persistent store:
    True (the default root), False, a folder, a DiskStore, or None: the default, which
    $LM_PROBE_WIDGETS_STORE sets (1/on or 0/off), else DEFAULT_STORE_ON."""
    if store is None:
        raw = os.environ.get(STORE_ENV, "").strip().lower()
        if raw in _ON or raw in _OFF:
            store = raw in _ON
        elif raw:
            raise ProbeError(f"{STORE_ENV}={raw!r}: use 1 (store on) or 0 (off)")
        else:
            store = DEFAULT_STORE_ON
    if isinstance(store, DiskStore):
        return store
    if store is True:
        return DiskStore()
    if store is False:
        return None
    if isinstance(store, (str, os.PathLike)):
        return DiskStore(store)
    raise ProbeError(
        f"store must be True, False, a folder or a DiskStore, got {type(store).__name__}"
    )
