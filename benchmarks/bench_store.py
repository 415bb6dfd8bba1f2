"""Feature-store benchmark (issue 16): after one fit, do follow-ups run the model again?

    .venv/bin/python benchmarks/bench_store.py                 # SmolLM2-135M, 2,000 RT texts
    .venv/bin/python benchmarks/bench_store.py --quick         # tiny random 30-layer Llama
    .venv/bin/python benchmarks/bench_store.py --json out.json

In a fresh, empty cache folder ($LM_PROBE_WIDGETS_CACHE = a temporary folder whose
`models/` links to the real cache's converted models, so nothing is converted again and
`features/` starts empty), each step runs in a NEW PROCESS (this script with `--mode`):

1. `first`: 3 probes (`model.layers.{5,15,25}.output`, mean pooling), store on, timed
   (`ProbeRunner(...)` + `fit_probes(train, test, num_epoch=10, batch_size=32)` +
   `runner.metrics`, as in bench_speed.py). Then, untimed: the pooled features of every
   split for mean/last/first/max pooling are exported as the reference; the same features
   are computed again with `store=False` on the 400 test texts (bit-identical to what the
   store holds?); `model_fingerprint(model, verify=True)` is timed; the store's size.
2. five follow-ups on the same texts and layers, each in a new process:
   `pooling` (last-token pooling), `l2` (another L2 grid), `control` (control=True),
   `embeddings` (baselines=("embeddings",)), `extra` (a new runner with the 3 probes plus
   3 other probes on the already-read layers: other names, poolings, learning rate).

For every step: wall time of the fit (model load excluded and printed separately), model
forwards counted by wrapping the library's trace and dry run (not with a forward hook: a
hook on the model bypasses the store; the two-token dry run that every new `ProbeRunner`
does at construction is counted apart), the ratio to the first fit
(target <= 10%), and whether the pooled features each probe reads
(`runner.get_probe_features`) are bit-identical to the first fit's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MiB = 1024**2
LAYERS = (5, 15, 25)
POOLINGS = ("mean", "last", "first", "max")
FOLLOW_UPS = ("pooling", "l2", "control", "embeddings", "extra")
TARGET_FOLLOW_UP = 0.10  # each follow-up <= 10% of the first fit
TARGET_FINGERPRINT = 0.05  # fingerprinting the weights < 5% of a fit
OTHER_L2 = (1e-4, 3e-3, 3e-2, 3.0)  # the default bank is (1e-3, 1e-2, 1e-1, 1.0)


# -- child: one step in its own process ----------------------------------------------------
def load(args) -> tuple[Any, Any, list[str], np.ndarray, str]:
    from lm_probe_widgets.core.io.loading import load_dataset

    texts, labels = load_dataset("rotten_tomatoes", n=args.n, seed=0)
    if args.quick:
        from lm_probe_widgets.core.engine.modeling import wrap_model
        from lm_probe_widgets.core.io.tiny import tiny_hf_model

        hf, tok = tiny_hf_model("llama", n_layer=30, width=128, seed=0)
        return wrap_model(hf, tok), tok, texts, labels, "tiny random Llama (30 layers, width 128)"
    from lm_probe_widgets.core.io.loading import load_model

    model, tok = load_model("smollm2-135m")
    return model, tok, texts, labels, "SmolLM2-135M-Instruct (fp32)"


def configs_for(mode: str) -> tuple[list[Any], dict[str, Any]]:
    """(probe configs, extra fit_probes kwargs) of a step."""
    from lm_probe_widgets.core.config import ProbeConfig

    def probe(i: int, pooling: str = "mean", name: str | None = None, **kw: Any) -> Any:
        return ProbeConfig(
            f"model.layers.{i}.output",
            classes=[0, 1],
            pooling=pooling,
            name=name or f"layer {i}",
            **kw,
        )

    base = [probe(i) for i in LAYERS]
    if mode == "first":
        return base, {}
    if mode == "pooling":
        return [probe(i, "last", f"layer {i} last") for i in LAYERS], {}
    if mode == "l2":
        return [probe(i, l2=OTHER_L2) for i in LAYERS], {}
    if mode == "control":
        return base, {"control": True}
    if mode == "embeddings":
        return base, {"baselines": ("embeddings",)}
    if mode == "extra":
        return base + [
            probe(5, "first", "layer 5 first"),
            probe(15, "max", "layer 15 max"),
            probe(25, "mean", "layer 25 lr 3e-2", lr=3e-2),
        ], {}
    raise ValueError(mode)


def layer_of(cfg: Any) -> int:
    return int(cfg.submodule.split(".")[2])


def child(args) -> dict[str, Any]:
    from lm_probe_widgets.core.engine.data import ProbeDataset
    from lm_probe_widgets.core.engine.fingerprint import model_fingerprint
    from lm_probe_widgets.core.engine.plan import split_for_validation
    from lm_probe_widgets.core.runner import ProbeRunner

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model, tok, texts, labels, desc = load(args)
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=64)
    train, test = ds.tt_split(test_size=0.2, seed=0)
    load_s = time.perf_counter() - t0

    forwards = [0]
    shapes: list[tuple[int, ...]] = []  # input_ids shape of every forward

    from lm_probe_widgets.core.engine import extract, submodules

    traced, dry_run = extract.Extractor._pooled, submodules.dry_run

    def count_trace(self, batch):
        forwards[0] += 1
        shapes.append(tuple(batch.input_ids.shape))
        return traced(self, batch)

    def count_dry_run(model_, paths=None):
        forwards[0] += 1
        shapes.append((1, 2))  # its two tokens
        return dry_run(model_, paths)

    extract.Extractor._pooled = count_trace
    submodules.dry_run = count_dry_run

    configs, kwargs = configs_for(args.mode)
    out: dict[str, Any] = {
        "mode": args.mode,
        "load_s": load_s,
        "model": desc,
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
        "load_avg": os.getloadavg()[0],
    }
    t0 = time.perf_counter()
    runner = ProbeRunner(model, configs, threads=args.threads)  # store: $LM_PROBE_WIDGETS_STORE
    out["construct_s"] = time.perf_counter() - t0
    out["dry_run_forwards"] = forwards[0]
    t1 = time.perf_counter()
    runner.fit_probes(train, test, num_epoch=10, batch_size=32, progress=None, **kwargs)
    metrics = runner.metrics
    out["fit_only_s"] = time.perf_counter() - t1
    out["fit_s"] = time.perf_counter() - t0  # construction (dry run) + fit + metrics
    out["fit_forwards"] = forwards[0] - out["dry_run_forwards"]
    in_fit = shapes[out["dry_run_forwards"] :]
    # dry runs of runners built inside the fit (control / baseline twins): 2 tokens, 1 row
    out["fit_dry_forwards"] = sum(1 for sh in in_fit if len(sh) == 2 and sh[0] == 1 and sh[1] <= 2)
    out["fit_data_forwards"] = out["fit_forwards"] - out["fit_dry_forwards"]
    out["fit_data_rows"] = sum(sh[0] for sh in in_fit if len(sh) == 2) - out["fit_dry_forwards"]
    out["accuracy"] = {k: float(v) for k, v in metrics["accuracy"].to_dict().items()}
    if "control_accuracy" in metrics:
        out["control_accuracy"] = {
            k: float(v) for k, v in metrics["control_accuracy"].to_dict().items()
        }
    if "baseline_embeddings" in metrics:
        out["baseline_embeddings"] = {
            k: float(v) for k, v in metrics["baseline_embeddings"].to_dict().items()
        }
    out["store"] = runner.store_info()

    # The splits fit_probes read (the store keys features by their token ids).
    train_part, val = split_for_validation(runner.configs, train, test, None, 0)
    splits = {"train": train_part, "val": val, "test": test}
    ref_path = Path(args.workdir) / "reference.npz"

    before = forwards[0]
    if args.mode == "first":
        # The reference: every cheap pooling of the three read sites, as stored by the fit.
        t = time.perf_counter()
        ref = {}
        for i in LAYERS:
            for p in POOLINGS:
                for s, d in splits.items():
                    ref[f"{i}/{p}/{s}"] = runner.export_features(
                        d, f"model.layers.{i}.output", pooling=p
                    )
        np.savez(ref_path, **ref)
        out["export_s"] = time.perf_counter() - t
        out["export_forwards"] = forwards[0] - before

        # The store against a fresh computation without it (same batches, test split).
        from lm_probe_widgets.core.config import ProbeConfig

        fresh_cfgs = [
            ProbeConfig(f"model.layers.{i}.output", classes=[0, 1], pooling=p, name=f"{i}/{p}")
            for i in LAYERS
            for p in POOLINGS
        ]
        t = time.perf_counter()
        fresh = ProbeRunner(model, fresh_cfgs, threads=args.threads, store=False)
        got = fresh.get_probe_features(test)
        out["fresh_s"] = time.perf_counter() - t
        out["fresh_identical"] = {n: bool(_same(got[n], ref[f"{n}/test"])) for n in got}
        out["fresh_max_abs_diff"] = max(
            float(np.max(np.abs(got[n] - ref[f"{n}/test"]))) for n in got
        )

        # Fingerprinting every weight (what a fit does first), median of 3.
        fps = []
        for _ in range(3):
            t = time.perf_counter()
            model_fingerprint(model, verify=True)
            fps.append(time.perf_counter() - t)
        out["fingerprint_s"] = statistics.median(fps)
        out["fingerprint_all_s"] = fps

        # Size on disk per read site (all four poolings of that site, all splits).
        from lm_probe_widgets.core.engine.disk_store import DiskStore

        store = DiskStore(runner.store.root)
        out["store_du"] = store.du()
        per_site: dict[str, dict[str, float]] = {}
        for e in store.entries():
            key = e.get("key") or {}
            site = f"{key.get('site')} [{key.get('pooling')}]"
            row = per_site.setdefault(site, {"bytes": 0, "examples": 0, "entries": 0})
            row["bytes"] += e["bytes"]
            row["examples"] += e.get("examples") or 0
            row["entries"] += 1
        out["store_entries"] = per_site
    else:
        ref = np.load(ref_path)
        same = {}
        for cfg in runner.configs:
            if f"{layer_of(cfg)}/{cfg.pooling}/test" not in ref.files:
                continue
            for s, d in splits.items():
                got = runner.get_probe_features(d, subset=[cfg.name])[cfg.name]
                same[f"{cfg.name}/{s}"] = bool(
                    _same(got, ref[f"{layer_of(cfg)}/{cfg.pooling}/{s}"])
                )
        out["identical"] = same
    out["check_forwards"] = forwards[0] - before
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- parent: fresh cache folder, one process per step, the tables --------------------------
def run_step(mode: str, args, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--mode",
        mode,
        "--workdir",
        str(workdir),
        "--n",
        str(args.n),
        "--threads",
        str(args.threads),
    ] + (["--quick"] if args.quick else [])
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"step {mode} failed (exit {proc.returncode})")
    res = json.loads((workdir / f"{mode}.json").read_text())
    res["process_s"] = wall
    return res


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def parent(args) -> int:
    from lm_probe_widgets.core.engine.disk_store import cache_dir

    real_cache = cache_dir()
    tmp = Path(tempfile.mkdtemp(prefix="lmpw-store-bench-"))
    try:
        (tmp / "models").symlink_to(real_cache / "models", target_is_directory=True)
        workdir = tmp / "results"
        workdir.mkdir()
        env = dict(
            os.environ,
            LM_PROBE_WIDGETS_CACHE=str(tmp),
            LM_PROBE_WIDGETS_STORE="1",
            PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        print(
            f"lm_probe_widgets feature-store benchmark — {time.strftime('%Y-%m-%d %H:%M')}\n"
            f"cache folder: {tmp} (fresh; models/ linked to {real_cache / 'models'})\n"
            f"torch threads: {args.threads} (of {os.cpu_count()} CPUs), torch {torch.__version__}, "
            f"{platform.machine()}, Python {platform.python_version()}, "
            f"load avg {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        steps = {}
        for mode in ("first",) + FOLLOW_UPS:
            steps[mode] = res = run_step(mode, args, env, workdir)
            print(
                f"  {mode:10} fit {res['fit_s']:7.2f}s  forwards {res['fit_data_forwards']} "
                f"+ {res['fit_dry_forwards']} dry "
                f"(+{res['dry_run_forwards']} dry run)  load {res['load_s']:.1f}s  "
                f"load avg {res['load_avg']:.1f}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    first = steps["first"]
    print(
        f"\nmodel: {first['model']}; {args.n} texts (train {args.n * 0.8 * 0.9:.0f} + "
        f"validation {args.n * 0.8 * 0.1:.0f} + test {args.n * 0.2:.0f}), "
        f"{args.threads} threads"
    )
    print("\n== fits, each in a new process (model load excluded) ==")
    head = (
        f"{'step':12}{'load s':>8}{'dry run':>9}{'fit s':>9}{'of which ctor':>14}"
        f"{'forwards':>10}{'(dry)':>7}{'ratio':>8}{'features':>12}"
    )
    print(head)
    rows = []
    for mode, r in steps.items():
        ratio = r["fit_s"] / first["fit_s"]
        if mode == "first":
            ident = "reference"
        else:
            ident = f"{sum(r['identical'].values())}/{len(r['identical'])} same"
        rows.append((mode, r, ratio, ident))
        print(
            f"{mode:12}{r['load_s']:8.1f}{r['dry_run_forwards']:9d}{r['fit_s']:9.2f}"
            f"{r['construct_s']:14.2f}{r['fit_data_forwards']:10d}{r['fit_dry_forwards']:7d}"
            f"{'' if mode == 'first' else f'{100 * ratio:.1f}%':>8}{ident:>12}"
        )
    print(
        f"(forwards: calls of the torch module's forward on data during ProbeRunner() + "
        f"fit_probes + metrics; (dry): 2-token dry runs of runners built inside the fit; "
        f"dry run: at the runner's construction; checks of the features afterwards ran "
        f"{sum(r['check_forwards'] for r in steps.values() if r['mode'] != 'first')} forwards)"
    )
    print("\naccuracy per probe:")
    for mode, r in steps.items():
        extra = ""
        if "control_accuracy" in r:
            extra += "  control " + ", ".join(f"{v:.3f}" for v in r["control_accuracy"].values())
        if "baseline_embeddings" in r:
            extra += "  embeddings " + ", ".join(
                f"{v:.3f}" for v in r["baseline_embeddings"].values()
            )
        print(f"  {mode:10} " + ", ".join(f"{k} {v:.3f}" for k, v in r["accuracy"].items()) + extra)

    fp_ratio = first["fingerprint_s"] / first["fit_s"]
    print(
        f"\nmodel_fingerprint(model, verify=True): {first['fingerprint_s']:.3f}s (median of 3: "
        + ", ".join(f"{s:.3f}" for s in first["fingerprint_all_s"])
        + f") = {100 * fp_ratio:.2f}% of the first fit"
    )
    print(
        f"store vs a fresh store=False computation (400 test texts, 12 site x pooling): "
        f"{sum(first['fresh_identical'].values())}/{len(first['fresh_identical'])} "
        f"bit-identical, max |diff| {first['fresh_max_abs_diff']:.3g} "
        f"({first['fresh_s']:.1f}s); reference export ran {first['export_forwards']} forwards"
    )

    print(f"\n== store on disk after the first fit: {first['store_du'] / MiB:.1f} MiB ==")
    by_site: dict[str, list[float]] = {}
    for name, e in sorted(first["store_entries"].items()):
        per_k = e["bytes"] / (e["examples"] / 1000) if e["examples"] else float("nan")
        site = name.split(" [")[0]
        by_site.setdefault(site, [0.0, 0])
        by_site[site][0] += per_k
        by_site[site][1] += 1
        print(
            f"  {name:34} {e['entries']} entries, {e['examples']} texts, "
            f"{e['bytes'] / MiB:6.2f} MiB = {per_k / MiB:.2f} MiB per 1,000 texts"
        )
    for site, (per_k, n) in by_site.items():
        print(f"  {site}: {per_k / MiB:.2f} MiB per 1,000 texts ({n} poolings)")

    checks = []
    for mode, r, ratio, _ in rows:
        if mode == "first":
            continue
        checks.append(
            (
                f"{mode}: <= {TARGET_FOLLOW_UP:.0%} of the first fit",
                ratio <= TARGET_FOLLOW_UP,
                f"{100 * ratio:.1f}%",
            )
        )
        checks.append(
            (
                f"{mode}: zero model forwards on data in the fit",
                r["fit_data_forwards"] == 0,
                f"{r['fit_data_forwards']} on data ({r['fit_data_rows']} texts) + "
                f"{r['fit_dry_forwards']} dry runs in the fit "
                f"(+{r['dry_run_forwards']} at construction)",
            )
        )
        checks.append(
            (
                f"{mode}: features bit-identical to the first fit's",
                bool(r["identical"]) and all(r["identical"].values()),
                f"{sum(r['identical'].values())}/{len(r['identical'])}",
            )
        )
    checks.append(
        ("fingerprint < 5% of a fit", fp_ratio < TARGET_FINGERPRINT, f"{100 * fp_ratio:.2f}%")
    )
    checks.append(
        (
            "store == fresh computation (bit for bit)",
            all(first["fresh_identical"].values()),
            f"{sum(first['fresh_identical'].values())}/{len(first['fresh_identical'])}",
        )
    )
    print(f"\n== targets ({args.threads} threads) ==")
    for what, ok, detail in checks:
        print(f"{verdict(ok)}  {what}: {detail}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "argv": sys.argv,
                    "n": args.n,
                    "threads": args.threads,
                    "steps": steps,
                    "checks": [{"target": w, "pass": bool(ok), "detail": d} for w, ok, d in checks],
                },
                f,
                indent=1,
            )
    return 0 if all(ok for _, ok, _ in checks) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny 30-layer Llama instead of SmolLM2")
    p.add_argument("--n", type=int, default=None, help="texts (default 2000; 400 with --quick)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--json", default=None, help="write all results to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary cache folder")
    p.add_argument(
        "--mode", default=None, choices=("first",) + FOLLOW_UPS, help=argparse.SUPPRESS
    )  # internal: one step, in this (new) process
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.n = args.n or (400 if args.quick else 2000)
    if args.mode is None:
        return parent(args)
    res = child(args)
    (Path(args.workdir) / f"{args.mode}.json").write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
