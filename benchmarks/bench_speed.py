"""Speed benchmark: does probing cost about one forward pass?

    .venv/bin/python benchmarks/bench_speed.py          # SmolLM2-135M, 2,000 RT texts
    .venv/bin/python benchmarks/bench_speed.py --quick  # a 30-layer tiny Llama, 400 texts

One run measures, on the same texts, the same splits and the same length-sorted
batches:

- the floor: a bare `torch.inference_mode()` forward of the *unwrapped* model, stopped
  by a hook right after the deepest probed layer (layer 25 for 3 probes, the last layer
  for 30 probes), and the whole model with its LM head for reference;
- `fit_probes` (+ `runner.metrics`) for 3 probes (layers 5/15/25), 30 probes
  (every layer) and 100 probes (every layer's output, MLP output and attention
  output, plus last-token pooling on ten layers; `--no-many` skips it), with the
  ratio to the floor, and what the 30 and 100 probes cost above the floor per probe
  and per 1,000 examples;
- tokens/s, padded vs real tokens, peak RSS growth of a fit against the model + 2x the
  pooled features + 300 MiB;
- held-out accuracy per probe next to a converged, full-batch `LogisticRegressionCV`
  on the same pooled features (the ceiling; minutes at 2,000 texts, `--no-ceiling`
  skips it);
- the cost of probe training alone (features already cached) for 1..100 probes, and
  how the cost grows with the number of texts.

The machine is shared: timings are interleaved (floor, fit, floor, fit, ...) and the
medians of `--repeats` rounds are compared; the thread count is printed with every
result. `--json PATH` writes everything measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lm_probe_widgets.core.config import ProbeConfig  # noqa: E402
from lm_probe_widgets.core.engine.data import ProbeDataset  # noqa: E402
from lm_probe_widgets.core.engine.modeling import torch_module  # noqa: E402
from lm_probe_widgets.core.engine.submodules import model_inputs  # noqa: E402
from lm_probe_widgets.core.runner import ProbeRunner  # noqa: E402

MiB = 1024**2

# Targets from issue 4 (ratios from one run on this machine).
TARGET_RATIO_FEW = 1.15
# Issue 18: 30 probes (every layer) <= 1.10x the floor through the last layer; 100 probes
# (every layer's output, MLP output and attention output, plus last-token poolings)
# <= 1.25x the same floor.
TARGET_RATIO_ALL = 1.10
TARGET_RATIO_MANY = 1.25
TARGET_ACC_POINTS = 1.5
TARGET_MEM_SLACK = 300 * MiB
TARGET_LINEAR_TOL = 0.20  # seconds per 1k real tokens at n/2 vs n: within +-20%
TARGET_EXTRA_PROBE = 0.01  # each probe added on an already-read submodule: <= 1% of the floor


# -- memory -------------------------------------------------------------------------------
def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    return (kib or 0) * 1024


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int:
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: the lifetime peak (an upper bound)
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return kib * 1024


def module_bytes(module: torch.nn.Module) -> int:
    seen: set[int] = set()
    total = 0
    for t in list(module.parameters()) + list(module.buffers()):
        if t.data_ptr() in seen:  # tied weights count once
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


# -- models and data ----------------------------------------------------------------------
def load(args) -> tuple[Any, torch.nn.Module, Any, list[str], np.ndarray, str]:
    """(nnsight model, an unwrapped twin with the same weights for the floor, tokenizer,
    texts, labels, description)."""
    from lm_probe_widgets.core.io.loading import load_dataset

    texts, labels = load_dataset("rotten_tomatoes", n=args.n, seed=0)
    if args.quick:
        from lm_probe_widgets.core.engine.modeling import wrap_model
        from lm_probe_widgets.core.io.tiny import tiny_hf_model

        kw = dict(n_layer=args.layers, width=args.width, seed=0)
        hf, tok = tiny_hf_model("llama", **kw)
        plain, _ = tiny_hf_model("llama", **kw)
        model = wrap_model(hf, tok)
        desc = f"tiny random Llama ({args.layers} layers, width {args.width})"
    else:
        from transformers import AutoModelForCausalLM

        from lm_probe_widgets.core.io import loading

        model, tok = loading.load_model("smollm2-135m")
        plain = AutoModelForCausalLM.from_pretrained(str(loading._smollm2_folder())).eval()
        desc = "SmolLM2-135M-Instruct (fp32)"
    return model, plain, tok, texts, labels, desc


def layer_module(module: torch.nn.Module, i: int) -> torch.nn.Module:
    return module.model.layers[i]


# -- the floor ----------------------------------------------------------------------------
class _Stop(Exception):
    pass


def _raise_stop(_mod, _args, _out):
    raise _Stop


def floor_pass(plain: torch.nn.Module, splits, batch_size: int, stop_layer: int | None) -> float:
    """A bare inference_mode forward over the splits in length-sorted batches, stopped
    right after `stop_layer` (None: the whole model, LM head included)."""
    handle = None
    if stop_layer is not None:
        handle = layer_module(plain, stop_layer).register_forward_hook(_raise_stop)
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            for ds, seed in splits:
                for batch in ds.batches(batch_size, seed=seed):
                    try:
                        plain(**model_inputs(plain, batch.input_ids, batch.attention_mask))
                    except _Stop:
                        pass
    finally:
        if handle is not None:
            handle.remove()
    return time.perf_counter() - t0


# -- fitting ------------------------------------------------------------------------------
@dataclass
class FitResult:
    seconds: float
    metrics: Any
    runner: ProbeRunner
    phases: dict[str, float] = field(default_factory=dict)
    peak_growth: int = 0
    feature_bytes: int = 0


def configs_for(layers: list[int], variants: int = 1) -> list[ProbeConfig]:
    """Probes on `model.layers.{i}.output`; `variants` > 1 adds probes with other
    learning rates on the same reads (they share the cached features)."""
    lrs = [None, 3e-3, 3e-2, 1e-3]
    out = []
    for v in range(variants):
        for i in layers:
            kw: dict[str, Any] = {"name": f"layer {i}" + (f" v{v}" if v else "")}
            if lrs[v % len(lrs)] is not None:
                kw["lr"] = lrs[v % len(lrs)]
            out.append(ProbeConfig(f"model.layers.{i}.output", classes=[0, 1], **kw))
    return out


def configs_many(n_layers: int, total: int = 100) -> list[ProbeConfig]:
    """Every layer's output, MLP output and attention output (mean pooling), then
    last-token pooling on evenly spread layers up to `total` probes: the sweep
    researchers run to see where a property appears."""
    out = []
    sites = {"": "", ".mlp": " mlp", ".self_attn": " attn"}  # submodule -> name suffix
    for i in range(n_layers):
        for site, suffix in sites.items():
            name = f"layer {i}{suffix}"
            out.append(ProbeConfig(f"model.layers.{i}{site}.output", classes=[0, 1], name=name))
    extra = total - len(out)
    for i in np.linspace(0, n_layers - 1, max(extra, 0)).round().astype(int):
        out.append(
            ProbeConfig(
                f"model.layers.{i}.output", classes=[0, 1], name=f"layer {i} last", pooling="last"
            )
        )
    return out[:total]


def fit(model, configs, train, test, args, cache=None) -> FitResult:
    """ProbeRunner + fit_probes + metrics, timed end to end (dry run included)."""
    gc.collect()
    reset_peak()
    before = rss_bytes()
    phases: dict[str, float] = {}
    last = [0.0]

    def on_event(e) -> None:
        if e.kind == "batch":
            s = e.data["seconds"]
            phases[e.data["phase"]] = phases.get(e.data["phase"], 0.0) + s - last[0]
            last[0] = s

    t0 = time.perf_counter()
    runner = ProbeRunner(model, configs, threads=args.threads)
    if cache is not None:
        runner.cache = cache
    unsubscribe = runner.events.subscribe(on_event)
    runner.fit_probes(train, test, num_epoch=args.epochs, batch_size=args.batch_size, progress=None)
    metrics = runner.metrics
    seconds = time.perf_counter() - t0
    unsubscribe()
    return FitResult(seconds, metrics, runner, phases, peak_bytes() - before, runner.cache.nbytes)


def ceiling(runner: ProbeRunner, train, test, names: list[str]) -> dict[str, float]:
    """Held-out accuracy of a converged full-batch logistic regression (C by 5-fold CV)
    on the pooled features the probes saw, read from the runner's cache (no model run)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    by_name = {c.name: c for c in runner.configs}
    train_part, val = validation_split(runner, train, test)
    keys = [by_name[n].feature_key for n in names]
    parts = [runner.features(d, keys) for d in (train_part, val)]
    ftest = runner.features(test, keys)
    y_train = np.concatenate([train_part.labels, val.labels])
    out = {}
    for n in names:
        k = by_name[n].feature_key
        if k not in _CEILINGS:
            x = np.concatenate([p[k] for p in parts])
            clf = make_pipeline(
                StandardScaler(),
                LogisticRegressionCV(Cs=np.logspace(-4, 2, 8), cv=5, max_iter=3000, n_jobs=1),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(x, y_train)
            _CEILINGS[k] = float(clf.score(ftest[k], test.labels))
        out[n] = _CEILINGS[k]
    return out


_CEILINGS: dict[tuple[str, str, str], float] = {}  # same features, same ceiling


def validation_split(runner: ProbeRunner, train, test):
    """(training part, validation split) as fit_probes makes them (seed 0)."""
    if hasattr(runner, "_validation_split"):  # before the fit plan (core/engine/plan.py)
        return runner._validation_split(train, test, None, 0)
    from lm_probe_widgets.core.engine.plan import split_for_validation

    return split_for_validation(runner.configs, train, test, None, 0)


# -- helpers ------------------------------------------------------------------------------
def median(xs: list[float]) -> float:
    return statistics.median(xs)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def token_counts(splits, batch_size: int) -> tuple[int, int]:
    padded = real = 0
    for ds, seed in splits:
        for b in ds.batches(batch_size, seed=seed):
            padded += b.padded_tokens
            real += b.real_tokens
    return padded, real


def unsorted_padding(splits, batch_size: int) -> int:
    """Padded tokens if batches were cut in data order (the original tool's way)."""
    padded = 0
    for ds, _ in splits:
        lengths = ds.lengths
        for i in range(0, len(lengths), batch_size):
            chunk = lengths[i : i + batch_size]
            padded += int(chunk.max()) * len(chunk)
    return padded


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny 30-layer Llama instead of SmolLM2")
    p.add_argument("--n", type=int, default=None, help="texts (default 2000; 600 with --quick)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timing rounds (default 1; 3 quick)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--layers", type=int, default=30, help="--quick: layers of the tiny model")
    p.add_argument("--width", type=int, default=128, help="--quick: width of the tiny model")
    p.add_argument("--no-sweep", action="store_true", help="skip the 1..100-probe sweep")
    p.add_argument("--no-linear", action="store_true", help="skip the n/2 run")
    p.add_argument("--no-many", action="store_true", help="skip the 100-probe fit")
    p.add_argument("--no-ceiling", action="store_true", help="skip LogisticRegressionCV (minutes)")
    p.add_argument("--json", default=None, help="write all results to this file")
    p.add_argument(
        "--ceilings-from",
        default=None,
        help="reuse the ceiling accuracies of an earlier --json run with the same "
        "model, data and seed (they depend on the features only)",
    )
    args = p.parse_args(argv)
    # A fit measured against the forward must run the forward: features a persistent
    # store kept from an earlier run would make it look free (LM_PROBE_WIDGETS_STORE=1
    # to measure store hits on purpose; bench_store.py measures the store itself).
    os.environ.setdefault("LM_PROBE_WIDGETS_STORE", "0")
    args.n = args.n or (400 if args.quick else 2000)
    args.repeats = args.repeats or (3 if args.quick else 1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    base_rss = rss_bytes()
    t_load = time.perf_counter()
    model, plain, tok, texts, labels, desc = load(args)
    t_load = time.perf_counter() - t_load
    module = torch_module(model)
    n_layers = len(module.model.layers)
    few = [i for i in (5, 15, 25) if i < n_layers] or [0]
    every = list(range(n_layers))
    model_size = module_bytes(module)

    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=args.max_length)
    train, test = ds.tt_split(test_size=0.2, seed=0)
    probe_runner = ProbeRunner(model, configs_for(few))
    train_part, val = validation_split(probe_runner, train, test)
    splits = [(val, None), (train_part, 0), (test, None)]  # the order fit_probes reads them
    padded, real = token_counts(splits, args.batch_size)
    padded_unsorted = unsorted_padding(splits, args.batch_size)

    head = (
        f"lm_probe_widgets speed benchmark — {time.strftime('%Y-%m-%d %H:%M')}\n"
        f"model: {desc}, {n_layers} layers, {model_size / MiB:.0f} MiB\n"
        f"data: {len(ds)} Rotten Tomatoes texts (max {args.max_length} tokens), "
        f"train {len(train_part)} + validation {len(val)} + test {len(test)}, "
        f"batch {args.batch_size}, {args.epochs} epochs\n"
        f"torch threads: {torch.get_num_threads()} (of {os.cpu_count()} CPUs), "
        f"torch {torch.__version__}, {platform.machine()}, Python {platform.python_version()}, "
        f"load avg {os.getloadavg()[0]:.1f}\n"
        f"tokens: {real} real, {padded} padded in length-sorted batches "
        f"(+{100 * (padded / real - 1):.1f}%); data-order batches would pad to "
        f"{padded_unsorted} (+{100 * (padded_unsorted / real - 1):.0f}%)"
    )
    print(head, flush=True)

    # Warm up both models (allocator, thread pool, lazy inits) and import what a fit
    # imports lazily, so the memory check sees the fit's data, not library code.
    import sklearn.linear_model  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    warm = [(test, None)]
    floor_pass(plain, warm, args.batch_size, few[-1])
    ProbeRunner(model, configs_for(few[:1]), threads=args.threads).get_probe_features(
        test.subset(np.arange(min(64, len(test))))
    )

    # Memory: the first 30-probe fit, before anything else grows the process. (It also
    # gives the 30-probe accuracies and the cache that the probe sweep reuses.)
    r_mem = fit(model, configs_for(every), train, test, args)
    mem = {
        "peak_growth": r_mem.peak_growth,
        "features": r_mem.feature_bytes,
        "model": model_size,
        "base_rss": base_rss,
        "limit": 2 * r_mem.feature_bytes + TARGET_MEM_SLACK,
    }
    print(
        f"\nmemory (30-probe fit): peak RSS growth {r_mem.peak_growth / MiB:.0f} MiB during "
        f"the fit, pooled features {r_mem.feature_bytes / MiB:.1f} MiB, process peak "
        f"{peak_bytes() / MiB:.0f} MiB",
        flush=True,
    )
    acc_all = r_mem.metrics["accuracy"].to_dict()
    runner_all = r_mem.runner
    del r_mem
    gc.collect()

    # Timing rounds, interleaved.
    times: dict[str, list[float]] = {
        "floor_few": [],
        "fit_few": [],
        "floor_all": [],
        "fit_all": [],
        "fit_many": [],
        "floor_full": [],
    }
    phases: dict[str, dict[str, float]] = {}
    acc_few: dict[str, float] = {}
    for r in range(args.repeats):
        times["floor_few"].append(floor_pass(plain, splits, args.batch_size, few[-1]))
        res = fit(model, configs_for(few), train, test, args)
        times["fit_few"].append(res.seconds)
        phases["few"] = res.phases
        acc_few = res.metrics["accuracy"].to_dict()
        runner_few = res.runner
        times["floor_all"].append(floor_pass(plain, splits, args.batch_size, every[-1]))
        res = fit(model, configs_for(every), train, test, args)
        times["fit_all"].append(res.seconds)
        phases["all"] = res.phases
        del res
        if not args.no_many:
            res = fit(model, configs_many(n_layers), train, test, args)
            times["fit_many"].append(res.seconds)
            phases["many"] = res.phases
            del res
        times["floor_full"].append(floor_pass(plain, splits, args.batch_size, None))
        print(
            f"round {r + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items() if v),
            flush=True,
        )
        gc.collect()
    med = {k: median(v) for k, v in times.items() if v}
    ratio_few = med["fit_few"] / med["floor_few"]
    ratio_all = med["fit_all"] / med["floor_all"]
    ratio_many = med["fit_many"] / med["floor_all"] if "fit_many" in med else None

    print(f"\n== wall time (median of {args.repeats}, {args.threads} threads) ==")
    print(f"{'':44}{'seconds':>9}{'tokens/s':>10}{'ratio':>8}")
    rows = [
        (f"floor: forward through layer {few[-1]}", med["floor_few"], None),
        (f"fit_probes + metrics, {len(few)} probes", med["fit_few"], ratio_few),
        (f"floor: forward through layer {every[-1]}", med["floor_all"], None),
        (f"fit_probes + metrics, {len(every)} probes", med["fit_all"], ratio_all),
        ("whole model incl. LM head (reference)", med["floor_full"], None),
    ]
    if ratio_many is not None:
        rows.insert(4, ("fit_probes + metrics, 100 probes", med["fit_many"], ratio_many))
    for label, s, ratio in rows:
        rt = f"{ratio:.3f}x" if ratio is not None else ""
        print(f"{label:44}{s:9.1f}{real / s:10.0f}{rt:>8}")
    for k, ph in phases.items():
        print(f"  phases ({k}): " + ", ".join(f"{p} {s:.1f}s" for p, s in ph.items()))
    # What probing costs on top of the forward pass, per probe and per 1,000 examples
    # (training + validation + test: every example a fit reads).
    examples = (len(train_part) + len(val) + len(test)) / 1000
    above = {
        len(every): med["fit_all"] - med["floor_all"],
        **({100: med["fit_many"] - med["floor_all"]} if ratio_many is not None else {}),
    }
    for k, extra in above.items():
        print(
            f"  {k} probes: {extra:.1f} s above the floor = "
            f"{1000 * extra / k / examples:.1f} ms per probe per 1,000 examples"
        )

    # Accuracy against the ceiling.
    if args.ceilings_from:
        with open(args.ceilings_from) as f:
            for row in json.load(f)["accuracy"]:
                i = int(row["probe"].split()[1])
                _CEILINGS[(f"model.layers.{i}", "output", "mean")] = row["ceiling"]
    no_ceiling = {}
    ceil_few = ceil_all = no_ceiling
    if not args.no_ceiling:
        ceil_few = ceiling(runner_few, train, test, [c.name for c in configs_for(few)])
        ceil_all = ceiling(runner_all, train, test, [c.name for c in configs_for(every)])
    print("\n== held-out accuracy: probe vs converged LogisticRegressionCV (same features) ==")
    acc_rows = []
    for group, acc, ceil in (("3 probes", acc_few, ceil_few), ("30 probes", acc_all, ceil_all)):
        for name, c in ceil.items():
            a = acc[name]
            acc_rows.append((group, name, a, c))
    print(f"{'':10}{'probe':12}{'probe acc':>10}{'ceiling':>9}{'gap (pt)':>10}")
    for group, name, a, c in acc_rows:
        print(f"{group:10}{name:12}{a:10.3f}{c:9.3f}{100 * (c - a):10.1f}")
    # no float 1.5000001
    worst_gap = max((round(100 * (c - a), 6) for _, _, a, c in acc_rows), default=math.nan)

    # Probe training alone, from cached features: the marginal cost of probes.
    sweep = []
    if not args.no_sweep:
        print("\n== probe training alone (features cached; the model does not run) ==")
        for k, configs in (
            (1, configs_for(few[-1:])),
            (3, configs_for(few)),
            (12, configs_for(few, variants=4)),
            (30, configs_for(every)),
            (100, configs_for(every, variants=4)[:100]),
        ):
            res = fit(model, configs, train, test, args, cache=runner_all.cache)
            sweep.append({"probes": k, "seconds": res.seconds})
            print(
                f"{k:4d} probes: {res.seconds:6.2f}s  "
                f"({100 * res.seconds / med['floor_all']:.1f}% of the full floor, "
                f"{1000 * res.seconds / k:.0f} ms per probe)",
                flush=True,
            )
            del res
    per_probe = None
    if sweep:
        s3 = next(s["seconds"] for s in sweep if s["probes"] == 3)
        s12 = next(s["seconds"] for s in sweep if s["probes"] == 12)
        per_probe = (s12 - s3) / 9

    # Linear in texts: the 3-probe fit on half of the texts.
    linear = None
    if not args.no_linear:
        half = ds.subset(np.arange(len(ds) // 2))
        htrain, htest = half.tt_split(test_size=0.2, seed=0)
        hreal = sum(len(t) for t in half.tokens)
        h = fit(model, configs_for(few), htrain, htest, args)
        linear = {
            "half_seconds": h.seconds,
            "half_real_tokens": hreal,
            "ms_per_token_half": 1000 * h.seconds / hreal,
            "ms_per_token_full": 1000 * med["fit_few"] / real,
        }
        linear["ratio"] = linear["ms_per_token_full"] / linear["ms_per_token_half"]
        print(
            f"\n== cost against texts ==\n{len(half)} texts: {h.seconds:.1f}s "
            f"({1000 * h.seconds / hreal:.2f} ms/token); {len(ds)} texts: {med['fit_few']:.1f}s "
            f"({1000 * med['fit_few'] / real:.2f} ms/token); per-token cost ratio "
            f"{linear['ratio']:.2f}"
        )
        del h

    # Verdicts.
    checks = [
        (
            f"3 probes <= {TARGET_RATIO_FEW}x floor",
            ratio_few <= TARGET_RATIO_FEW,
            f"{ratio_few:.3f}x",
        ),
        (
            f"30 probes <= {TARGET_RATIO_ALL}x floor (through layer {every[-1]})",
            ratio_all <= TARGET_RATIO_ALL,
            f"{ratio_all:.3f}x",
        ),
        (
            "peak memory <= model + 2x pooled features + 300 MiB",
            mem["peak_growth"] <= mem["limit"] + 0,
            f"fit grew RSS by {mem['peak_growth'] / MiB:.0f} MiB with the model "
            f"({model_size / MiB:.0f} MiB) already loaded; allowed "
            f"{mem['limit'] / MiB:.0f} MiB on top of it",
        ),
    ]
    if acc_rows:
        checks.insert(
            2,
            (
                f"accuracy within {TARGET_ACC_POINTS} pt of the ceiling on every probe",
                worst_gap <= TARGET_ACC_POINTS,
                f"worst gap {worst_gap:.1f} pt",
            ),
        )
    if ratio_many is not None:
        checks.insert(
            2,
            (
                f"100 probes <= {TARGET_RATIO_MANY}x floor (through layer {every[-1]})",
                ratio_many <= TARGET_RATIO_MANY,
                f"{ratio_many:.3f}x",
            ),
        )
    if linear is not None:
        checks.append(
            (
                f"cost linear in texts (per-token cost n vs n/2 within {TARGET_LINEAR_TOL:.0%})",
                abs(linear["ratio"] - 1) <= TARGET_LINEAR_TOL,
                f"ratio {linear['ratio']:.2f}",
            )
        )
    if per_probe is not None:
        frac = per_probe / med["floor_few"]
        checks.append(
            (
                "a probe added on an already-read submodule "
                f"<= {TARGET_EXTRA_PROBE:.0%} of the floor",
                frac <= TARGET_EXTRA_PROBE,
                f"{1000 * per_probe:.0f} ms = {100 * frac:.2f}%",
            )
        )
    print(f"\n== targets ({args.threads} threads; ratios from this run) ==")
    for what, ok, detail in checks:
        print(f"{verdict(ok)}  {what}: {detail}")
    if args.quick:
        print("(--quick: a tiny random model; the targets are defined for SmolLM2-135M)")

    if args.json:
        out = {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "argv": sys.argv,
            "model": desc,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "n": len(ds),
            "real_tokens": real,
            "padded_tokens": padded,
            "padded_unsorted": padded_unsorted,
            "times": times,
            "medians": med,
            "ratio_few": ratio_few,
            "ratio_all": ratio_all,
            "ratio_many": ratio_many,
            "phases": phases,
            "accuracy": [
                {"group": g, "probe": n, "probe_acc": a, "ceiling": c} for g, n, a, c in acc_rows
            ],
            "memory": mem,
            "sweep": sweep,
            "linear": linear,
            "load_seconds": t_load,
            "checks": [{"target": w, "pass": bool(ok), "detail": d} for w, ok, d in checks],
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
