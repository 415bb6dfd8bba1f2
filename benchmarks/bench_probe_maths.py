"""Probe maths alone: the final fit, batched (the library) against one problem at a time
(scipy L-BFGS-B per strength and fold, as the library did before), on the same probes;
or (`--online`) one online step of stacked probes, numpy against torch.

    .venv/bin/python benchmarks/bench_probe_maths.py          # SmolLM2-135M, 30 layers, 2,000 texts
    .venv/bin/python benchmarks/bench_probe_maths.py --quick  # a tiny 30-layer Llama, 600 texts
    .venv/bin/python benchmarks/bench_probe_maths.py --device cuda
    .venv/bin/python benchmarks/bench_probe_maths.py --online [--device cuda] [--previous ../main]
    .venv/bin/python benchmarks/bench_probe_maths.py --final [--quick] [--device cuda]
    .venv/bin/python benchmarks/bench_probe_maths.py --final --synthetic 30,1600,576

`--online` times ProbeStack.step (scores, losses, code length, gradients, Adam) of 1, 30
and 100 probes of SmolLM2's shape (width 576, 4 strengths, 2 classes, batch 32): the
numpy backend, the torch backend on `--device`, and with `--previous PATH` the maths of
another checkout (the version before) on the same arrays, interleaved, medians.

`--final` times the final fit of all probes probe by probe (LinearProbe.refine) against all
probes of one shape in one batched solve (refine_many, the library's path), interleaved,
with the largest difference in held-out probabilities; with `--synthetic P,N,D`, on P probes
of random correlated features (no model; wall and CPU seconds).

One fit with `refine=False` trains every probe online (features go to a store folder of
this benchmark's own, so a rerun does not run the model). Then, for each probe, copies of
it get the final fit both ways, interleaved, `--repeats` times: the medians are compared
in the same run, with the largest difference in held-out accuracy and in predicted
probabilities. The thread count is printed with every result.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lm_probe_widgets.core.config import ProbeConfig  # noqa: E402
from lm_probe_widgets.core.engine.data import ProbeDataset  # noqa: E402
from lm_probe_widgets.core.engine.plan import scored_labels  # noqa: E402
from lm_probe_widgets.core.engine.probe import (  # noqa: E402
    _log_softmax,
    _logit_grad,
    _member_losses,
    cv_folds,
)
from lm_probe_widgets.core.io.loading import load_dataset  # noqa: E402
from lm_probe_widgets.core.runner import ProbeRunner  # noqa: E402


# -- the baseline: the previous final fit, one scipy L-BFGS-B problem at a time ---------
def _scipy_fit(x, y, w0, b0, l2, mu, inv, max_iter=500, tol=1e-4):
    d, c = w0.shape

    def loss_and_grad(theta):
        w = theta[: d * c].reshape(d, c).astype(np.float32)
        b = theta[d * c :].astype(np.float32)
        w_raw = w * inv[:, None]
        logp = _log_softmax((x @ w_raw + (b - mu @ w_raw))[:, None, :])
        loss = float(_member_losses(logp, y)[0]) + 0.5 * l2 * float((w * w).sum(dtype=np.float64))
        g = _logit_grad(logp, y)[:, 0]
        g_b = g.sum(0)
        g_w = inv[:, None] * (x.T @ g - mu[:, None] * g_b) + l2 * w
        return loss, np.concatenate([g_w.ravel(), g_b]).astype(np.float64)

    theta0 = np.concatenate([w0.ravel(), b0]).astype(np.float64)
    res = minimize(
        loss_and_grad,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol},
    )
    return res.x[: d * c].reshape(d, c).astype(np.float32), res.x[d * c :].astype(np.float32)


def scipy_refine(probe, x, y, xv, yv) -> None:
    """The library's final fit before batching (cv_folds >= 2, validation merged), with
    fold fits started cold as the library now does (a warm start from the all-rows fit
    leaked the held-out rows)."""
    mu, inv = probe._scaler_arrays()
    x = np.concatenate([x, xv]).astype(np.float32)
    y = np.concatenate([y, yv])
    folds = cv_folds(y, probe.config.cv_folds, probe.config.seed)
    cv = []
    with threadpool_limits(1, user_api="blas"):
        for m, l2 in enumerate(probe.config.l2):
            w, b = _scipy_fit(x, y, probe._w[:, m], probe._b[m], l2, mu, inv)
            probe._w[:, m], probe._b[m] = w, b
            losses = []
            for tr, te in folds:
                wf, bf = _scipy_fit(x[tr], y[tr], 0 * w, 0 * b, l2, mu, inv)
                w_raw = wf * inv[:, None]
                logp = _log_softmax((x[te] @ w_raw + (bf - mu @ w_raw))[:, None, :])
                losses.append(float(_member_losses(logp, y[te])[0]))
            cv.append(np.mean(losses))
    member = int(np.argmin(cv))
    probe._best = (member, *probe._fold(member))


# -- the online step: numpy against torch -------------------------------------------
def _previous_stack(path: str):
    """ProbeStack of another checkout (its own modules, under another package name)."""
    import importlib.util

    pkg = os.path.join(os.path.abspath(path), "lm_probe_widgets", "__init__.py")
    spec = importlib.util.spec_from_file_location("previous_lpw", pkg)
    module = importlib.util.module_from_spec(spec)
    sys.modules["previous_lpw"] = module
    spec.loader.exec_module(module)
    from previous_lpw.core.engine.probe import LinearProbe as Old  # type: ignore
    from previous_lpw.core.engine.probe_stack import ProbeStack as OldStack  # type: ignore

    return Old, OldStack


def _stack_of(probe_cls, stack_cls, n_probes, dim, rng, **kw):
    probes = []
    for i in range(n_probes):
        cfg = ProbeConfig("h", [0, 1], name=f"p{i}", seed=i)
        probe = probe_cls(cfg, dim)
        probe.scaler.update(rng.normal(size=(64, dim)))
        probe.scaler.frozen = True
        probes.append(probe)
    stack = stack_cls(probes, **kw)
    stack.refresh_scalers()
    return stack


def online(args) -> int:
    from lm_probe_widgets.core.engine.probe import LinearProbe
    from lm_probe_widgets.core.engine.probe_stack import ProbeStack

    ways = {"numpy": (LinearProbe, ProbeStack, {}), "torch": None}
    ways["torch"] = (LinearProbe, ProbeStack, {"device": args.device})
    if args.previous:
        ways = {"previous numpy": (*_previous_stack(args.previous), {}), **ways}
    cuda = args.device.startswith("cuda")
    print(
        f"online step of stacked probes (width 576, 4 strengths, 2 classes, batch 32); "
        f"torch threads {torch.get_num_threads()}; torch on {args.device}; medians of "
        f"{args.repeats * 3} rounds of 50 steps, interleaved"
    )
    for n_probes in (1, 30, 100):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n_probes, 32, 576)).astype(np.float32)
        y = rng.integers(0, 2, (n_probes, 32))
        lr = np.full(n_probes, 1e-3)
        stacks = {
            k: _stack_of(*w[:2], n_probes, 576, np.random.default_rng(1), **w[2])
            for k, w in ways.items()
        }
        times: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.repeats * 3):
            for name, stack in stacks.items():
                xs, ys = stack_here(stack, x), stack_here(stack, y)
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(50):
                    stack.step(xs, ys, lr, code_length=True)
                if cuda:
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - t0) / 50)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = ", ".join(f"{k} {1e3 * v:.2f} ms" for k, v in med.items())
        print(f"  {n_probes:3d} probes: {row}; torch / numpy {med['torch'] / med['numpy']:.2f}x")
    return 0


def together(args, runner, configs, plan, feats, val, held, test) -> int:
    """--final: the final fit of every probe, probe by probe (LinearProbe.refine) against
    all probes of one shape in one solve (refine_many), interleaved, on `--device`."""
    from lm_probe_widgets.core.engine.probe import refine_many

    cuda = args.device.startswith("cuda")
    inputs = []
    for cfg in configs:
        _, y = scored_labels(cfg, plan.train)
        _, yv = scored_labels(cfg, plan.val)
        inputs.append(dict(x=feats[cfg.feature_key], y_idx=y, x_val=val[cfg.feature_key], y_val=yv))
    timings: dict[str, list[float]] = {"per probe": [], "together": []}
    fitted = {}
    for rep in range(args.repeats):
        for way in timings if rep % 2 == 0 else list(timings)[::-1]:
            probes = [copy.deepcopy(runner[cfg.name]) for cfg in configs]
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            if way == "together":
                refine_many(probes, inputs, device=args.device)
            else:
                for probe, kw in zip(probes, inputs, strict=True):
                    probe.refine(**kw, device=args.device)
            if cuda:
                torch.cuda.synchronize()
            timings[way].append(time.perf_counter() - t0)
            fitted[way] = probes
            print(f"  round {rep + 1}: {way:9} {timings[way][-1]:7.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in timings.items()}
    prob_diff = 0.0
    for cfg, a, b in zip(configs, fitted["per probe"], fitted["together"], strict=True):
        xt = held[cfg.feature_key]
        prob_diff = max(prob_diff, float(np.abs(a.predict_proba(xt) - b.predict_proba(xt)).max()))
    print(
        f"\nfinal fit of {len(configs)} probes on {args.device}, medians of {args.repeats}: "
        f"probe by probe {med['per probe']:.2f} s, all together {med['together']:.2f} s "
        f"(together / per probe {med['together'] / med['per probe']:.2f}x); largest "
        f"held-out probability difference {prob_diff:.2e}"
    )
    return 0


def synthetic(args) -> int:
    """--final --synthetic P,N,D: P probes of correlated random features [N, D] (no model),
    their final fits (4 strengths x (1 + 5 folds)) one by one against all in one solve,
    interleaved; wall and CPU (process) seconds, the latter less moved by other load."""
    from lm_probe_widgets.core.engine.final_fit import FinalProblem, fit_many

    p, n, d = (int(v) for v in args.synthetic.split(","))
    rng = np.random.default_rng(0)
    problems = []
    for _ in range(p):
        x = rng.normal(size=(n, d)) @ (rng.normal(size=(d, d)) / np.sqrt(d)) + rng.normal(0, 2, d)
        x = x.astype(np.float32)
        score = x[:, :5].sum(1)
        y = (score + 2 * rng.normal(size=n) > score.mean()).astype(int)
        perm = rng.permutation(n)
        folds = [(np.setdiff1d(perm, f), f) for f in np.array_split(perm, 5)]
        w0 = rng.normal(0, 0.01, (d, 4, 2)).astype(np.float32)
        b0 = np.zeros((4, 2), np.float32)
        l2 = [1e-3, 1e-2, 1e-1, 1.0]
        problems.append(FinalProblem(x, y, w0, b0, l2, x.mean(0), 1 / x.std(0), folds))
    kw = dict(max_iter=500, tol=1e-4, device=args.device)
    ways = {
        "per probe": lambda: [fit_many([q], **kw)[0] for q in problems],
        "together": lambda: fit_many(problems, **kw),
    }
    wall: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    out = {}
    for rep in range(args.repeats):
        for way in ways if rep % 2 == 0 else list(ways)[::-1]:
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            out[way] = ways[way]()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            wall[way].append(time.perf_counter() - t0)
            cpu[way].append(time.process_time() - c0)
            print(f"  round {rep + 1}: {way:9} {wall[way][-1]:7.2f} s ({cpu[way][-1]:.2f} s CPU)")
    diff = max(
        float(np.abs(a[0] - b[0]).max() / np.abs(a[0]).max())
        for a, b in zip(out["per probe"], out["together"], strict=True)
    )
    w, c = ({k: statistics.median(v) for k, v in t.items()} for t in (wall, cpu))
    head = f"{p} synthetic probes ({n} rows, width {d}) on {args.device}"
    print(
        f"\n{head}, torch threads {torch.get_num_threads()}, medians of {args.repeats}: "
        f"probe by probe {w['per probe']:.2f} s ({c['per probe']:.2f} s CPU), together "
        f"{w['together']:.2f} s ({c['together']:.2f} s CPU): together / per probe "
        f"{w['together'] / w['per probe']:.2f}x wall, {c['together'] / c['per probe']:.2f}x "
        f"CPU; largest relative weight difference {diff:.1e}"
    )
    return 0


def stack_here(stack, a):
    """Features where the stack steps (on a device: moved once, as the cache would)."""
    return stack.here(a) if hasattr(stack, "here") else a


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny 30-layer Llama instead of SmolLM2")
    p.add_argument("--n", type=int, default=None, help="texts (default 2000; 600 with --quick)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--probes", type=int, default=30, help="first N layers (default 30)")
    p.add_argument("--device", default="cpu", help="where the batched fit runs")
    p.add_argument("--no-baseline", action="store_true", help="skip the scipy baseline")
    p.add_argument("--online", action="store_true", help="the online step, numpy vs torch")
    p.add_argument(
        "--final", action="store_true", help="the final fit probe by probe vs all together"
    )
    p.add_argument("--synthetic", default=None, help="--final on random features: P,N,D")
    p.add_argument("--previous", default=None, help="--online: a checkout to compare with")
    p.add_argument("--store", default=os.path.join(ROOT, "benchmarks", ".store"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.online:
        return online(args)
    if args.synthetic:
        return synthetic(args)
    n = args.n or (600 if args.quick else 2000)
    texts, labels = load_dataset("rotten_tomatoes", n=n, seed=0)
    if args.quick:
        from lm_probe_widgets.core.engine.modeling import wrap_model
        from lm_probe_widgets.core.io.tiny import tiny_hf_model

        hf, tok = tiny_hf_model("llama", n_layer=30, width=128, seed=0)
        model, what = wrap_model(hf, tok), "tiny random Llama (30 layers, width 128)"
    else:
        from lm_probe_widgets.core.io import loading

        model, tok = loading.load_model("smollm2-135m")
        what = "SmolLM2-135M-Instruct (fp32)"
    ds = ProbeDataset.from_texts(list(texts), list(labels), tok, max_length=64)
    train, test = ds.tt_split(0.2, seed=0)
    configs = [
        ProbeConfig(f"model.layers.{i}.output", classes=[0, 1], name=f"layer {i}", refine=False)
        for i in range(args.probes)
    ]
    runner = ProbeRunner(model, configs, threads=args.threads, store=args.store)
    runner.fit_probes(train, test, progress=None, bootstrap=0)
    plan = runner.last_plan
    feats = runner.features(plan.train, [c.feature_key for c in configs])
    val = runner.features(plan.val, [c.feature_key for c in configs])
    held = runner.features(test, [c.feature_key for c in configs])
    print(
        f"{what}; {n} texts (train {len(plan.train)}, validation {len(plan.val)}, test "
        f"{len(test)}); {len(configs)} probes; torch threads {torch.get_num_threads()}; "
        f"batched fit on {args.device}",
        flush=True,
    )

    if args.final:
        return together(args, runner, configs, plan, feats, val, held, test)
    timings: dict[str, list[float]] = {"batched": [], "scipy": []}
    fitted: dict[str, dict[str, object]] = {}
    acc_diff, prob_diff = 0.0, 0.0
    for rep in range(args.repeats):
        for way in ("batched", "scipy") if rep % 2 == 0 else ("scipy", "batched"):
            if way == "scipy" and args.no_baseline:
                continue
            total = 0.0
            for cfg in configs:
                probe = copy.deepcopy(runner[cfg.name])
                keep, y = scored_labels(cfg, plan.train)
                _, yv = scored_labels(cfg, plan.val)
                x, xv = feats[cfg.feature_key], val[cfg.feature_key]
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                if way == "batched":
                    probe.refine(x, y, xv, yv, device=args.device)
                else:
                    scipy_refine(probe, x, y, xv, yv)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                total += time.perf_counter() - t0
                if rep == 0:
                    fitted.setdefault(cfg.name, {})[way] = probe
            timings[way].append(total)
            print(f"  round {rep + 1}: {way:8} {total:7.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in timings.items() if v}
    per = 1000 * med["batched"] / len(configs) / (len(plan.train) + len(plan.val)) * 1000
    print(
        f"\nfinal fit of {len(configs)} probes (4 strengths x (1 + 5 folds) each), medians "
        f"of {args.repeats}:"
    )
    print(f"  batched (library): {med['batched']:.2f} s  ({per:.1f} ms per probe per 1,000 rows)")
    if "scipy" in med:
        print(
            f"  scipy, one problem at a time (before): {med['scipy']:.2f} s  "
            f"-> {med['scipy'] / med['batched']:.2f}x faster"
        )
        for cfg in configs:
            pair = fitted[cfg.name]
            xt = held[cfg.feature_key]
            _, yt = scored_labels(cfg, test)
            pa, pb = pair["batched"].predict_proba(xt), pair["scipy"].predict_proba(xt)
            acc_a = float(np.mean(pa.argmax(1) == yt))
            acc_b = float(np.mean(pb.argmax(1) == yt))
            acc_diff = max(acc_diff, abs(acc_a - acc_b))
            prob_diff = max(prob_diff, float(np.abs(pa - pb).max()))
        verdict = "PASS" if acc_diff <= 0.005 + 1e-12 else "FAIL"
        print(
            f"  largest held-out accuracy difference: {100 * acc_diff:.2f} points (target "
            f"<= 0.5: {verdict}); largest probability difference {prob_diff:.4f}"
        )
    return 0 if not math.isnan(med["batched"]) else 1


if __name__ == "__main__":
    sys.exit(main())
