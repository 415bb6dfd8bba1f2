"""Probe maths before and after a change: the same fit, from stored features (the model
never runs), with two checkouts of the library, in separate processes.

    git worktree add /tmp/before 5c5efa2
    .venv/bin/python benchmarks/compare_fits.py --before /tmp/before
    .venv/bin/python benchmarks/compare_fits.py --before /tmp/before --probes 100

Both sides fit SmolLM2-135M's probes (30: every layer's output; 100: also every MLP and
attention output, plus last-token pooling on ten layers, as bench_speed.py) on 2,000
Rotten Tomatoes texts with the default settings. The features come from this
benchmark's own store folder (the first run of a probe set computes and stores them
once, untimed), so each timed fit is probe maths alone: the first pass's steps, the
later epochs, the final fit, the held-out metrics (plus reading the store, the same on
both sides). Runs alternate (before, after, before, ...); medians of `--repeats`.
Prints the time of each side and the largest difference in held-out accuracy of any
probe (issue 18: every probe within 0.5 points).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_CHILD = r"""
import json, sys, time
root, store = sys.argv[1], sys.argv[5]
n, probes, threads = (int(a) for a in sys.argv[2:5])
sys.path.insert(0, root)
sys.path.insert(0, __HERE__)
import torch
torch.set_num_threads(threads)
import lm_probe_widgets
from bench_speed import configs_for, configs_many
from lm_probe_widgets.core.engine.data import ProbeDataset
from lm_probe_widgets.core.io import loading
from lm_probe_widgets.core.io.loading import load_dataset
from lm_probe_widgets.core.runner import ProbeRunner

texts, labels = load_dataset("rotten_tomatoes", n=n, seed=0)
model, tok = loading.load_model("smollm2-135m")
ds = ProbeDataset.from_texts(list(texts), list(labels), tok, max_length=64)
train, test = ds.tt_split(0.2, seed=0)
configs = configs_for(list(range(30))) if probes == 30 else configs_many(30, probes)
warm = ProbeRunner(model, configs, threads=threads, store=store)  # every split in the store
warm.fit_probes(train, test, num_epoch=1, progress=None, bootstrap=0)
runner = ProbeRunner(model, configs, threads=threads, store=store)
t0 = time.perf_counter()
runner.fit_probes(train, test, num_epoch=10, batch_size=32, progress=None)
metrics = runner.metrics
seconds = time.perf_counter() - t0
print(json.dumps({"library": lm_probe_widgets.__file__, "seconds": seconds,
                  "accuracy": metrics["accuracy"].to_dict()}))
"""


def run(root: str, args: argparse.Namespace) -> dict:
    code = _CHILD.replace("__HERE__", repr(HERE))
    argv = [root, str(args.n), str(args.probes), str(args.threads), args.store]
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"fit with {root} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before", required=True, help="a checkout of the library before the change")
    p.add_argument("--after", default=ROOT, help="the checkout after (default: this one)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--probes", type=int, default=30, choices=(30, 100))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--store", default=os.path.join(HERE, ".store"))
    args = p.parse_args(argv)
    sides = {"before": args.before, "after": args.after}
    results: dict[str, list[dict]] = {k: [] for k in sides}
    for rep in range(args.repeats):
        order = list(sides) if rep % 2 == 0 else list(sides)[::-1]
        for side in order:
            res = run(sides[side], args)
            results[side].append(res)
            print(
                f"round {rep + 1}: {side:6} {res['seconds']:6.2f} s  ({res['library']})", flush=True
            )
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    acc = {k: v[0]["accuracy"] for k, v in results.items()}
    diffs = {name: acc["after"][name] - acc["before"][name] for name in acc["before"]}
    worst = max(diffs, key=lambda name: abs(diffs[name]))
    mean = {k: statistics.mean(a.values()) for k, a in acc.items()}
    print(
        f"\n{args.probes} probes, {args.n} texts, {args.threads} threads, medians of "
        f"{args.repeats}: before {med['before']:.2f} s, after {med['after']:.2f} s "
        f"({med['before'] / med['after']:.2f}x faster)"
    )
    print(
        f"held-out accuracy: mean {mean['before']:.4f} before, {mean['after']:.4f} after; "
        f"largest difference {100 * diffs[worst]:+.2f} points ({worst}); "
        f"{sum(abs(d) > 0.005 + 1e-9 for d in diffs.values())} probes beyond 0.5 points"
    )
    for name, d in diffs.items():
        if abs(d) > 0.005 + 1e-9:
            print(f"  {name}: {acc['before'][name]:.4f} -> {acc['after'][name]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
