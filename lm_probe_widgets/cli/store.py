"""`lm-probe store ls|du|clear`: the on-disk feature store from the shell."""

from __future__ import annotations

import argparse
import time


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def run_store(args: argparse.Namespace) -> int:
    from ..core.engine.disk_store import DiskStore

    store = DiskStore()
    if args.store_command == "du":
        size = store.du()
        cap = _human_bytes(store.max_bytes)
        print(f"{_human_bytes(size)} ({size} bytes) in {store.root}, cap {cap}")
        return 0
    if args.store_command == "clear":
        before = store.du()
        removed = store.clear(None if args.all else args.older_than)
        freed = max(0, before - store.du())
        plural = "y" if removed == 1 else "ies"
        print(f"removed {removed} entr{plural} ({_human_bytes(freed)}) from {store.root}")
        return 0
    entries = sorted(store.entries(), key=lambda e: e["last_used"])
    if not entries:
        print(f"no stored features in {store.root}")
        return 0
    print(
        f"{'id':12}  {'examples':>8}  {'rows x width':>14}  {'size':>10}  {'filled':>6}  "
        f"{'last used':16}  key"
    )
    for e in entries:
        key = e["key"]
        desc = (
            " ".join(f"{k}={v}" for k, v in key.items())
            if isinstance(key, dict)
            else "(unreadable: removed when next opened)"
        )
        shape = f"{e.get('rows')} x {e.get('width')}" if e.get("rows") is not None else "?"
        filled = f"{100 * e['filled']:.0f}%" if e.get("filled") is not None else "?"
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["last_used"]))
        print(
            f"{e['id'][:12]:12}  {e.get('examples', '?')!s:>8}  {shape:>14}  "
            f"{_human_bytes(e['bytes']):>10}  {filled:>6}  {used:16}  {desc}"
        )
    plural = "y" if len(entries) == 1 else "ies"
    print(f"{len(entries)} entr{plural}, {_human_bytes(store.du())} in {store.root}")
    return 0
