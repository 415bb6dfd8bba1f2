"""The on-disk feature store: real files, and real processes where the promise is about
processes (a later process, a crash, two writers at once)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from patience import PATIENCE_S

from lm_probe_widgets import cli
from lm_probe_widgets.core.engine.disk_store import (
    DEFAULT_MAX_BYTES,
    DiskStore,
    StoreWarning,
    default_store_root,
    entry_id,
    export,
)
from lm_probe_widgets.core.errors import ProbeError

KEY = {"model": "m-abc", "data": "d-123", "site": "model.layers.3.output", "pooling": "mean"}
TOKEN_OFFSETS = np.array([0, 3, 4, 8, 8, 10, 15])  # example 3 has no rows
WIDTH = 8


def values(offsets: np.ndarray, width: int = WIDTH) -> np.ndarray:
    """What the model would compute: a fixed, distinct value per row."""
    rows = int(offsets[-1])
    return (np.arange(rows * width, dtype=np.float32).reshape(rows, width) + 1) / 7


def rows_for(offsets: np.ndarray, indices) -> np.ndarray:
    full = values(offsets)
    parts = [full[offsets[i] : offsets[i + 1]] for i in indices]
    return np.concatenate(parts) if parts else full[:0]


def run_py(code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=PATIENCE_S,
    )


# Shared by the subprocesses: the same values() as above, from the command line.
PRELUDE = """
import os, sys, time
import numpy as np
from lm_probe_widgets.core.engine.disk_store import DiskStore
root, offsets = sys.argv[1], np.array(eval(sys.argv[2]))
KEY = {"model": "m-abc", "data": "d-123", "site": "model.layers.3.output", "pooling": "mean"}
def values(offsets, width=8):
    rows = int(offsets[-1])
    return (np.arange(rows * width, dtype=np.float32).reshape(rows, width) + 1) / 7
def rows_for(idx):
    full = values(offsets)
    return np.concatenate([full[offsets[i]:offsets[i + 1]] for i in idx])
"""


@pytest.mark.parametrize("offsets", [np.arange(11), TOKEN_OFFSETS], ids=["sequence", "token"])
def test_round_trip(tmp_path, offsets):
    store = DiskStore(tmp_path)
    entry = store.open(KEY, offsets, WIDTH)
    n = len(offsets) - 1
    assert entry.id == entry_id(KEY) and entry.key == KEY and entry.width == WIDTH
    assert not entry.filled.any() and list(entry.missing()) == list(range(n))
    first = np.array([4, 0, 2])  # out of order: rows follow `indices`
    entry.write(first, rows_for(offsets, first))
    np.testing.assert_array_equal(entry.rows(first), rows_for(offsets, first))
    np.testing.assert_array_equal(entry.rows([2]), rows_for(offsets, [2]))
    assert list(entry.missing()) == [i for i in range(n) if i not in first]
    assert list(entry.missing([0, 1, 2])) == [1]
    with pytest.raises(ProbeError, match="not computed"):
        entry.rows([0, 1])  # 1 was never written
    with pytest.raises(ProbeError, match="not computed"):
        entry.rows()  # the whole array only once complete
    with pytest.raises(ProbeError, match="shape"):
        entry.write([1], np.zeros((99, WIDTH), dtype=np.float32))
    with pytest.raises(ValueError):
        entry.filled[1] = True  # the mask is only changed by write()
    assert not entry.complete

    rest = entry.missing()
    entry.write(rest, rows_for(offsets, rest))
    assert entry.complete
    whole = entry.rows()
    np.testing.assert_array_equal(whole, values(offsets))
    assert not whole.flags.writeable
    manifest = json.loads((tmp_path / entry.id / "manifest.json").read_text())
    assert manifest["checksum"] and manifest["key"] == KEY

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid entry reopens without complaint
        again = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
        got = DiskStore(tmp_path).get(KEY)
    assert again.complete and got is not None and got.complete
    np.testing.assert_array_equal(got.rows(np.arange(n)), values(offsets))
    assert DiskStore(tmp_path).get({**KEY, "site": "other"}) is None
    assert not (tmp_path / entry_id({**KEY, "site": "other"})).exists()  # get never creates


def test_bad_arguments(tmp_path):
    store = DiskStore(tmp_path)
    with pytest.raises(ProbeError, match="offsets"):
        store.open(KEY, np.array([0, 2, 1]), WIDTH)
    with pytest.raises(ProbeError, match="JSON"):
        store.open({"x": object()}, np.arange(3), WIDTH)
    entry = store.open(KEY, np.arange(3), WIDTH)
    with pytest.raises(ProbeError, match="out of range"):
        entry.rows([3])


def test_new_process_sees_partial_rows(tmp_path):
    offsets = TOKEN_OFFSETS
    mine = DiskStore(tmp_path).open(KEY, offsets, WIDTH)  # created here, left open
    run_py(
        PRELUDE
        + """
        e = DiskStore(root).open(KEY, offsets, 8)
        e.write(np.array([1, 5]), rows_for([1, 5]))
        """.replace("\n        ", "\n"),
        str(tmp_path),
        repr(offsets.tolist()),
    )
    # the mask this process already had open shows the other process's rows
    assert list(np.flatnonzero(mine.filled)) == [1, 5]
    np.testing.assert_array_equal(mine.rows([5, 1]), rows_for(offsets, [5, 1]))

    out = run_py(
        PRELUDE
        + """
        e = DiskStore(root).open(KEY, offsets, 8)
        assert np.array_equal(e.rows([1, 5]), rows_for([1, 5]))
        print(e.missing().tolist())
        """.replace("\n        ", "\n"),
        str(tmp_path),
        repr(offsets.tolist()),
    )
    assert json.loads(out.stdout) == [0, 2, 3, 4]


def test_killed_mid_write_keeps_written_rows(tmp_path):
    offsets = np.arange(41)
    proc = run_py(
        PRELUDE
        + """
        e = DiskStore(root).open(KEY, offsets, 8)
        for start in range(0, 20, 5):
            idx = np.arange(start, start + 5)
            e.write(idx, rows_for(idx))
        e._features[25:30] = rows_for(range(25, 30))  # rows written, crash before the mask
        os._exit(1)
        """.replace("\n        ", "\n"),
        str(tmp_path),
        repr(offsets.tolist()),
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entry = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
    assert list(entry.missing()) == list(range(20, 40))  # 25..29 unmarked: recomputed
    np.testing.assert_array_equal(entry.rows(np.arange(20)), rows_for(offsets, range(20)))
    with pytest.raises(ProbeError):
        entry.rows([25])


def test_two_processes_write_the_same_entry(tmp_path):
    offsets = np.concatenate([[0], np.cumsum(np.tile([3, 1, 4, 0, 2, 5], 20))])  # token-level
    go = tmp_path / "go"
    code = (
        PRELUDE
        + """
        go, order = sys.argv[3], sys.argv[4]
        while not os.path.exists(go):
            time.sleep(0.005)
        e = DiskStore(root).open(KEY, offsets, 8)
        idx = np.arange(len(offsets) - 1)
        idx = idx[::-1] if order == "backward" else idx
        for batch in np.array_split(idx, 15):
            e.write(batch, rows_for(batch))
            time.sleep(0.01)  # so that the two writers interleave
        print(int(e.complete))
        """.replace("\n        ", "\n")
    )
    root = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root), repr(offsets.tolist()), str(go), order],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for order in ("forward", "backward")
    ]
    time.sleep(0.5)  # let both import and wait at the start line
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=PATIENCE_S)
        assert p.returncode == 0, err
        assert out.strip() == "1" and "Warning" not in err
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == [entry_id(KEY)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # checksum and sizes verify
        entry = DiskStore(root).open(KEY, offsets, WIDTH)
    assert entry.complete
    np.testing.assert_array_equal(entry.rows(), values(offsets))


def _filled_entry(root: Path, offsets=TOKEN_OFFSETS, indices=(0, 1, 2)):
    entry = DiskStore(root).open(KEY, offsets, WIDTH)
    idx = np.array(indices)
    entry.write(idx, rows_for(offsets, idx))
    return entry


def _assert_fresh(root: Path, offsets=TOKEN_OFFSETS, match: str = "") -> None:
    with pytest.warns(StoreWarning, match=match):
        entry = DiskStore(root).open(KEY, offsets, WIDTH)
    assert not entry.filled.any()
    assert (root / entry.id / "features.npy").stat().st_size > int(offsets[-1]) * WIDTH * 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new one is valid
        DiskStore(root).open(KEY, offsets, WIDTH)


def test_truncated_data_file_is_recreated(tmp_path):
    entry = _filled_entry(tmp_path)
    features = tmp_path / entry.id / "features.npy"
    os.truncate(features, features.stat().st_size - 40)
    _assert_fresh(tmp_path, match="truncated")


def test_truncated_mask_is_recreated(tmp_path):
    entry = _filled_entry(tmp_path)
    os.truncate(tmp_path / entry.id / "filled.npy", 10)
    _assert_fresh(tmp_path, match="filled.npy")


def test_garbage_manifest_is_recreated(tmp_path):
    entry = _filled_entry(tmp_path)
    (tmp_path / entry.id / "manifest.json").write_bytes(b"{\x00 not json")
    _assert_fresh(tmp_path, match="manifest unreadable")
    # get() also refuses it, and never creates
    (tmp_path / entry.id / "manifest.json").write_text("[]")
    with pytest.warns(StoreWarning, match="manifest"):
        assert DiskStore(tmp_path).get(KEY) is None
    assert not (tmp_path / entry.id).exists()


def test_other_offsets_or_width_are_recreated(tmp_path):
    _filled_entry(tmp_path)
    with pytest.warns(StoreWarning, match="offsets"):
        entry = DiskStore(tmp_path).open(KEY, np.arange(7), WIDTH)
    assert not entry.filled.any() and len(entry.filled) == 6
    with pytest.warns(StoreWarning, match="width"):
        entry = DiskStore(tmp_path).open(KEY, np.arange(7), WIDTH + 1)
    assert entry.width == WIDTH + 1


def test_checksum_mismatch_is_recreated(tmp_path):
    entry = _filled_entry(tmp_path, indices=range(6))
    assert entry.complete
    features = tmp_path / entry.id / "features.npy"
    data = bytearray(features.read_bytes())
    data[-3] ^= 0x40  # one bit in the last row
    features.write_bytes(bytes(data))
    _assert_fresh(tmp_path, match="checksum")


def _sized_entry(store: DiskStore, name: str, used: float):
    entry = store.open({**KEY, "site": name}, np.arange(101), 64)  # ~26 KB
    entry.write(np.arange(100), np.ones((100, 64), dtype=np.float32))
    os.utime(entry.path / "manifest.json", (used, used))  # last used
    return entry


def _sites(store: DiskStore) -> list[str]:
    return sorted(e["key"]["site"] for e in store.entries())


def test_size_cap_evicts_least_recently_used(tmp_path):
    store = DiskStore(tmp_path, max_bytes=10**9)
    now = time.time()
    a = _sized_entry(store, "a", now - 300)
    b = _sized_entry(store, "b", now - 200)
    c = _sized_entry(store, "c", now - 100)
    one = store.du() // 3
    a.touch()  # used just now: b is the least recently used
    assert (a.path / "manifest.json").stat().st_mtime > now - 60
    store.max_bytes = int(3.5 * one)
    d = store.open({**KEY, "site": "d"}, np.arange(101), 64)  # makes room for itself
    assert _sites(store) == ["a", "c", "d"]
    assert store.du() <= store.max_bytes

    os.utime(d.path / "manifest.json", (now - 50, now - 50))  # c, then d, then a
    store.evict(need_bytes=one, keep={c.id})  # c is the least recently used, but kept
    assert _sites(store) == ["a", "c"]
    store.evict(need_bytes=10 * one, keep={c.id})  # cannot fit: all but c go
    assert [e["id"] for e in store.entries()] == [c.id]
    assert b.id not in {e["id"] for e in store.entries()}
    # an entry this process still holds stays readable after eviction removed it
    np.testing.assert_array_equal(a.rows([0]), np.ones((1, 64), dtype=np.float32))


def test_entries_du_clear(tmp_path):
    store = DiskStore(tmp_path)
    assert store.entries() == [] and store.du() == 0 and store.clear() == 0
    old = _sized_entry(store, "old", time.time() - 3 * 86400)
    _filled_entry(tmp_path, indices=[0, 1, 2])
    info = {e["key"]["site"]: e for e in store.entries()}
    assert info["old"]["filled"] == 1.0 and info["old"]["complete"]
    assert info["old"]["rows"] == 100 and info["old"]["width"] == 64
    assert info[KEY["site"]]["filled"] == pytest.approx(0.5)
    assert store.du() >= sum(e["bytes"] for e in info.values()) > 100 * 64 * 4
    assert store.clear(older_than_days=1) == 1
    assert not old.path.exists() and [e["key"] for e in store.entries()] == [KEY]
    assert store.clear() == 1 and store.entries() == []


def test_default_root_and_cap_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(tmp_path))
    monkeypatch.delenv("LM_PROBE_WIDGETS_STORE_MAX_BYTES", raising=False)
    assert default_store_root() == tmp_path / "features"
    assert DiskStore().root == tmp_path / "features"
    assert DiskStore().max_bytes == DEFAULT_MAX_BYTES
    monkeypatch.setenv("LM_PROBE_WIDGETS_STORE_MAX_BYTES", "5e9")
    assert DiskStore().max_bytes == 5 * 10**9
    assert DiskStore(max_bytes=7).max_bytes == 7


def test_cli_store_ls_du_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(tmp_path))
    assert cli.main(["store", "ls"]) == 0
    assert "no stored features" in capsys.readouterr().out
    store = DiskStore()
    _sized_entry(store, "old", time.time() - 3 * 86400)
    new = _filled_entry(store.root, indices=[0, 1, 2])

    assert cli.main(["store", "ls"]) == 0
    out = capsys.readouterr().out
    assert new.id[:12] in out and "site=model.layers.3.output" in out and "site=old" in out
    assert "50%" in out and "100%" in out and "2 entries" in out

    env = {**os.environ, "LM_PROBE_WIDGETS_CACHE": str(tmp_path)}
    du = subprocess.run(
        [sys.executable, "-m", "lm_probe_widgets.cli", "store", "du"],
        capture_output=True, text=True, env=env, check=True, timeout=PATIENCE_S,
    )  # fmt: skip
    assert f"({store.du()} bytes)" in du.stdout and str(store.root) in du.stdout

    with pytest.raises(SystemExit):  # clearing needs --all or --older-than
        cli.main(["store", "clear"])
    capsys.readouterr()
    assert cli.main(["store", "clear", "--older-than", "1"]) == 0
    assert "removed 1 entry" in capsys.readouterr().out
    assert [e["key"] for e in store.entries()] == [KEY]
    assert cli.main(["store", "clear", "--all"]) == 0
    assert "removed 1 entry" in capsys.readouterr().out
    assert store.entries() == []


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_export_round_trip(tmp_path, suffix):
    entry = _filled_entry(tmp_path / "store", indices=[4, 1, 5])
    path = export(entry, tmp_path / f"out{suffix}")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            got = {k: z[k] for k in z.files}
        assert json.loads(str(got["key"])) == KEY
    else:
        from safetensors import safe_open
        from safetensors.numpy import load_file

        got = load_file(path)
        with safe_open(path, framework="numpy") as f:
            assert json.loads(f.metadata()["key"]) == KEY
    assert list(got["examples"]) == [1, 4, 5]  # dataset order, filled examples only
    assert list(got["filled"]) == [False, True, False, False, True, True]
    np.testing.assert_array_equal(got["features"], rows_for(TOKEN_OFFSETS, [1, 4, 5]))
    for k, ex in enumerate(got["examples"]):
        rows = got["features"][got["offsets"][k] : got["offsets"][k + 1]]
        np.testing.assert_array_equal(rows, rows_for(TOKEN_OFFSETS, [ex]))

    entry.write(entry.missing(), rows_for(TOKEN_OFFSETS, entry.missing()))
    full = export(entry, tmp_path / f"full{suffix}")
    got = dict(np.load(full, allow_pickle=False)) if suffix == ".npz" else load_file(full)
    np.testing.assert_array_equal(got["offsets"], TOKEN_OFFSETS)
    np.testing.assert_array_equal(got["features"], values(TOKEN_OFFSETS))
    with pytest.raises(ProbeError, match="npz"):
        export(entry, tmp_path / "out.pkl")


# ------------------------------------------------ full disks and damaged entries (issue 26)


def _no_space(*_):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_fails_at_creation_not_with_sigbus_later(tmp_path, monkeypatch):
    """Entries are allocated on disk when created: with no space left that raises
    ENOSPC there (where the runner falls back to memory), instead of a sparse file
    whose first write through the memory map kills the process with SIGBUS."""
    monkeypatch.setattr(os, "posix_fallocate", _no_space, raising=False)
    store = DiskStore(tmp_path)
    with pytest.raises(OSError) as err:
        store.open(KEY, TOKEN_OFFSETS, WIDTH)
    assert err.value.errno == errno.ENOSPC
    assert store.entries() == [] and list((tmp_path / ".tmp").iterdir()) == []


def test_without_fallocate_the_zeros_are_written(tmp_path, monkeypatch):
    def unsupported(*_):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    offsets = np.arange(2049)
    entry = DiskStore(tmp_path).open(KEY, offsets, 256)  # 2 MB of features
    stat = (entry.path / "features.npy").stat()
    assert stat.st_blocks * 512 >= stat.st_size  # every block on disk: not sparse
    entry.write(np.arange(2048), values(offsets, 256))
    np.testing.assert_array_equal(entry.rows(), values(offsets, 256))


def _garble_header(path: Path, how: str) -> None:
    raw = path.read_bytes()
    start = raw.index(b"{")
    end = raw.index(b"}")
    header = raw[start : end + 1]
    if how == "token":  # numpy's parser: tokenize.TokenError
        header = header.replace(b"(", b"((", 1)[: len(header)]
    elif how == "syntax":  # SyntaxError / ValueError
        header = b"{'descr': @@@" + header[13:]
    else:  # "bytes": undecodable
        header = header[:3] + b"\xff\xfe\xfd" + header[6:]
    path.write_bytes(raw[:start] + header + raw[end + 1 :])


@pytest.mark.parametrize("how", ["token", "syntax", "bytes"])
@pytest.mark.parametrize("name", ["features.npy", "filled.npy", "offsets.npy", "sums.npy"])
def test_a_garbled_npy_header_is_discarded_and_ls_and_clear_still_work(
    tmp_path, monkeypatch, capsys, name, how
):
    """numpy's header parser raises ValueError, SyntaxError or tokenize.TokenError on
    damaged bytes: any of them discards the entry (recomputed), and `lm-probe store ls`
    and `clear --all`, the documented recovery, work whatever is damaged."""
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(tmp_path))
    root = DiskStore().root
    entry = _filled_entry(root)
    _garble_header(root / entry.id / name, how)
    assert cli.main(["store", "ls"]) == 0
    assert entry.id[:12] in capsys.readouterr().out
    _assert_fresh(root, match=name.split(".")[0])
    _garble_header(root / entry.id / name, how)
    assert cli.main(["store", "clear", "--all"]) == 0
    assert "removed 1 entry" in capsys.readouterr().out
    assert DiskStore(root).entries() == []


@pytest.mark.parametrize("flip", [0xFF, 0x01, 0x5A])
def test_a_garbled_mask_in_an_unfinished_entry_never_serves_unwritten_rows(tmp_path, flip):
    """Each example's rows carry a CRC-32 written with them: a mask byte that says
    "computed" for rows never written (any garbled byte, even a 0 -> 1 flip) unmarks
    the example, which is computed again, with a warning."""
    offsets = np.arange(11)
    entry = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
    written = np.array([1, 4, 7])
    entry.write(written, rows_for(offsets, written))
    mask = entry.path / "filled.npy"
    data = bytearray(mask.read_bytes())
    for i in range(len(data) - 10, len(data)):  # every example's byte
        data[i] ^= flip
    mask.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="fail their checksums"):
        again = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
    served = np.flatnonzero(again.filled)
    assert set(served) <= set(written)  # never an example whose rows were not written
    np.testing.assert_array_equal(again.rows(served), rows_for(offsets, served))
    assert not again.complete


def test_a_flipped_byte_in_an_unfinished_entrys_rows_is_recomputed(tmp_path):
    offsets = np.arange(11)
    entry = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
    entry.write(np.arange(5), rows_for(offsets, range(5)))
    features = entry.path / "features.npy"
    data = bytearray(features.read_bytes())
    data[len(data) - 10 * WIDTH * 4 + 2 * WIDTH * 4 + 5] ^= 0x10  # inside example 2's row
    features.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match=r"e\.g\. \[2\]"):
        again = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
    assert np.flatnonzero(again.filled).tolist() == [0, 1, 3, 4]


@contextlib.contextmanager
def _read_only(root: Path, monkeypatch):
    """The store at `root` as this process would see it on a read-only mount: where we
    are not root, really unwritable; as root (who may write anything), os.access says
    so, and the test checks that nothing on disk changed."""
    if os.geteuid() != 0:
        paths = [root, *root.rglob("*")]
        modes = {p: p.stat().st_mode for p in paths}
        for p in sorted(paths, key=lambda p: -len(p.parts)):
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p in sorted(paths, key=lambda p: len(p.parts)):
                p.chmod(modes[p])
        return
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve().is_relative_to(root.resolve()):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    yield


def _snapshot(root: Path) -> dict[str, tuple[bytes, float]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_read_only_store_with_entries_is_read_and_never_written(tmp_path, monkeypatch):
    offsets = np.arange(11)
    done = DiskStore(tmp_path).open(KEY, offsets, WIDTH)
    done.write(np.arange(10), rows_for(offsets, range(10)))
    part = DiskStore(tmp_path).open({**KEY, "pooling": "last"}, offsets, WIDTH)
    part.write(np.arange(3), rows_for(offsets, range(3)))
    before = _snapshot(tmp_path)
    with _read_only(tmp_path, monkeypatch):
        store = DiskStore(tmp_path)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = store.get(KEY)  # complete: served
            assert store.get({**KEY, "pooling": "last"}) is None  # unfinished: computed
            np.testing.assert_array_equal(got.rows(), values(offsets))
            assert store.open(KEY, offsets, WIDTH).complete
        with pytest.raises(PermissionError, match="read-only"):
            store.open({**KEY, "pooling": "max"}, offsets, WIDTH)
        assert len(store.entries()) == 2 and store.du() > 0
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("raw", ["inf", "-1", "nan", "lots"])
def test_a_cap_that_is_no_number_of_bytes_is_a_clear_error(tmp_path, monkeypatch, capsys, raw):
    monkeypatch.setenv("LM_PROBE_WIDGETS_CACHE", str(tmp_path))
    monkeypatch.setenv("LM_PROBE_WIDGETS_STORE_MAX_BYTES", raw)
    with pytest.raises(ProbeError, match="LM_PROBE_WIDGETS_STORE_MAX_BYTES=.*number of bytes"):
        DiskStore()
    assert cli.main(["store", "du"]) == 2
    err = capsys.readouterr().err
    assert "LM_PROBE_WIDGETS_STORE_MAX_BYTES" in err and "Traceback" not in err
    with pytest.raises(ProbeError, match="max_bytes=-1"):
        DiskStore(tmp_path, max_bytes=-1)


def test_eviction_and_failed_creations_leave_no_lock_files(tmp_path, monkeypatch):
    """An entry evicted while this process still writes into it, and a creation that
    failed (full disk), leave no lock file behind; `clear` removes any left."""
    store = DiskStore(tmp_path, max_bytes=10**9)
    offsets = np.arange(101)
    first = store.open({**KEY, "site": "first"}, offsets, 64)
    store.max_bytes = 30_000  # room for about one entry: the next evicts `first`
    store.open({**KEY, "site": "second"}, offsets, 64)
    assert _sites(store) == ["second"]
    first.write(np.arange(100), np.ones((100, 64), np.float32))  # into the evicted arrays
    monkeypatch.setattr(os, "posix_fallocate", _no_space, raising=False)
    with pytest.raises(OSError):
        store.open({**KEY, "site": "third"}, offsets, 64)
    monkeypatch.undo()
    assert store.entries() == []  # `second` made room for `third`, which failed
    assert list((tmp_path / ".locks").iterdir()) == []
    (tmp_path / ".locks" / f"{'0' * 64}.lock").touch()  # e.g. left by a killed process
    store.clear()
    assert list((tmp_path / ".locks").iterdir()) == []
