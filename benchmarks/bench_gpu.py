"""Probe maths as a share of the forward pass, on a GPU.

    python3 benchmarks/bench_gpu.py --json gpu.json            # on a machine with CUDA
    .venv/bin/python benchmarks/bench_gpu.py --tiny --device cpu   # a smoke run anywhere

Models are built in-process with random weights (the speed of a forward pass does not
depend on the weights' values, and nothing may be downloaded): SmolLM2-135M's shape
(30 layers, width 576) and a TinyLlama-1.1B shape (22 layers, width 2048), each in fp32
and bf16. Inputs are 2,000 token sequences of 8-64 tokens (a Rotten Tomatoes-like spread),
labelled by a fixed random direction of their token ids' embedding, in length-sorted
batches of 32.

For each model and dtype, interleaved and repeated (medians):
- the floor: a bare `torch.inference_mode()` forward of the model itself through the
  deepest probed layer (a hook stops it there), on the same batches;
- `fit_probes` (+ metrics) for one probe per layer output, and for 100 probes (every
  layer's, MLP's and attention's output, then last-token poolings of the layer outputs,
  the first 100), store off, with the time of each phase;
- probe maths = fit - floor, as a share of the floor, against issue 29's targets: one
  probe per layer <= 20% (SmolLM2 fp32 and bf16), <= 10% (the 1B model in bf16); 100
  probes <= 40%. The probe maths runs on the model's device (ProbeRunner's default
  probe_device); phase `refine` is the final fit, on a GPU every probe of one shape in
  one batched solve (`benchmarks/bench_probe_maths.py --final --device cuda` compares
  that with probe by probe on the same probes). There the pooled features stay on the
  device from the forward on (core.engine.feature_cache.DeviceFeatures): each row says
  how many MiB the cache kept there (0: everything went through the host).

`--torch-engine` runs the torch engine (stacks and device-resident features) on the CPU
too, as the tests do: a smoke run of the GPU path on a machine without one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("LM_PROBE_WIDGETS_STORE", "0")

from lm_probe_widgets.core.config import ProbeConfig  # noqa: E402
from lm_probe_widgets.core.engine.data import ProbeDataset  # noqa: E402
from lm_probe_widgets.core.engine.modeling import wrap_model  # noqa: E402
from lm_probe_widgets.core.io.tiny import tiny_tokenizer  # noqa: E402
from lm_probe_widgets.core.runner import ProbeRunner  # noqa: E402

SHAPES = {
    "smollm2-135m": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
    ),
    "tinyllama-1.1b": dict(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=4,
        vocab_size=32000,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=300,
    ),
}
TARGET_MANY = 0.40  # 100 probes
TARGET_PER_LAYER = {("smollm2-135m", "float32"): 0.20, ("smollm2-135m", "bfloat16"): 0.20}
TARGET_PER_LAYER[("tinyllama-1.1b", "bfloat16")] = 0.10


def target(shape: str, dtype: str, many: bool) -> float | None:
    """Issue 29's bound on the probe maths' share of the forward, or None (no target)."""
    return TARGET_MANY if many else TARGET_PER_LAYER.get((shape, dtype))


def build(shape: str, dtype: torch.dtype, device: str) -> tuple[Any, torch.nn.Module]:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(max_position_embeddings=128, **SHAPES[shape])
    with torch.device(device):  # initialise where it runs: a CPU init of 1B weights is slow
        hf = LlamaForCausalLM(cfg).to(dtype=dtype).eval()
    return wrap_model(hf, tiny_tokenizer()), hf


def dataset(n: int, vocab: int, seed: int = 0) -> tuple[ProbeDataset, ProbeDataset]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.gamma(4.0, 6.0, n).astype(int), 8, 64)
    rows = [rng.integers(3, vocab, size=k).tolist() for k in lengths]
    direction = rng.normal(size=vocab)
    labels = [int(direction[r].mean() > 0) for r in rows]
    ds = ProbeDataset(rows, None, labels)
    return ds.tt_split(0.2, seed=seed)


def configs(n_layers: int, count: int | None) -> list[ProbeConfig]:
    """One probe per layer output (count None), or the first `count` of: every layer's,
    MLP's and attention's output (mean pooling), then layer outputs' last token."""
    sites = [(site, "mean") for site in ("", ".mlp", ".self_attn")] + [("", "last")]
    out = [
        ProbeConfig(
            f"model.layers.{i}{site}.output", [0, 1], name=f"L{i}{site} {pool}", pooling=pool
        )
        for site, pool in sites
        for i in range(n_layers)
    ]
    return out[:n_layers] if count is None else out[:count]


class _Stop(Exception):
    pass


def _raise(*_: Any) -> None:
    raise _Stop


def floor(hf: torch.nn.Module, ds: ProbeDataset, batch_size: int, device: str) -> float:
    """Seconds for a bare forward of `ds` through the last layer, length-sorted batches."""
    order = np.argsort(ds.lengths, kind="stable")
    handle = hf.model.layers[-1].register_forward_hook(_raise)
    try:
        _sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                batch = ds[order[s : s + batch_size].tolist()]
                try:
                    hf(
                        input_ids=batch["input_ids"].to(device),
                        attention_mask=batch["attention_mask"].to(device),
                    )
                except _Stop:
                    pass
        _sync(device)
        return time.perf_counter() - t0
    finally:
        handle.remove()


def fit(model: Any, cfgs: list[ProbeConfig], train, test, device: str) -> dict[str, Any]:
    phases: dict[str, float] = {}
    last = [0.0]

    def on_event(e: Any) -> None:
        if e.kind == "batch":
            s = e.data["seconds"]
            phases[e.data["phase"]] = phases.get(e.data["phase"], 0.0) + s - last[0]
            last[0] = s

    _sync(device)
    t0 = time.perf_counter()
    runner = ProbeRunner(model, cfgs, store=False)
    unsubscribe = runner.events.subscribe(on_event)
    runner.fit_probes(train, test, progress=None)
    metrics = runner.metrics
    _sync(device)
    seconds = time.perf_counter() - t0
    unsubscribe()
    kept = runner.cache.device_nbytes / 2**20
    out = {"seconds": seconds, "phases": phases, "accuracy": metrics["accuracy"].tolist()}
    return dict(out, features_on_device_mib=kept)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--models", default="smollm2-135m,tinyllama-1.1b")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument(
        "--probes", default="layers,100", help="'layers' (one per layer), a count, or both"
    )
    p.add_argument("--tiny", action="store_true", help="a tiny model only (smoke test)")
    p.add_argument("--json", default=None)
    p.add_argument(
        "--torch-engine", action="store_true", help="the torch engine on a CPU too (smoke test)"
    )
    args = p.parse_args(argv)
    if args.torch_engine:
        from lm_probe_widgets.core.engine import modeling

        modeling.stack_device = lambda device: torch.device(device)
    models = ["tiny"] if args.tiny else args.models.split(",")
    results = []
    print(
        f"torch {torch.__version__}, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
        + f", CPU threads {torch.get_num_threads()}",
        flush=True,
    )
    for shape in models:
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(torch, dtype_name)
            model, hf = build(shape, dtype, args.device)
            n_layers = hf.config.num_hidden_layers
            train, test = dataset(args.n, hf.config.vocab_size)
            for count in args.probes.split(","):
                many = count != "layers"
                cfgs = configs(n_layers, int(count) if many else None)
                fit(model, cfgs[:2], train, test, args.device)  # warm-up: kernels, caches
                floors, fits = [], []
                for _ in range(args.repeats):
                    floors.append(sum(floor(hf, ds, 32, args.device) for ds in (train, test)))
                    fits.append(fit(model, cfgs, train, test, args.device))
                fl = statistics.median(floors)
                ft = statistics.median(f["seconds"] for f in fits)
                share = (ft - fl) / fl
                row = {
                    "model": shape,
                    "dtype": dtype_name,
                    "probes": len(cfgs),
                    "floor_s": fl,
                    "fit_s": ft,
                    "probe_maths_share": share,
                    "phases": fits[0]["phases"],
                    "mean_accuracy": float(np.mean(fits[0]["accuracy"])),
                    "features_on_device_mib": fits[0]["features_on_device_mib"],
                }
                results.append(row)
                if args.json:  # after every row: a run cut short keeps what it measured
                    with open(args.json, "w") as fh:
                        json.dump(results, fh, indent=1)
                bound = target(shape, dtype_name, many)
                verdict = (
                    "no target"
                    if bound is None
                    else f"target <= {100 * bound:.0f}%: {'PASS' if share <= bound else 'FAIL'}"
                )
                phases = ", ".join(f"{k} {v:.2f}" for k, v in row["phases"].items())
                print(
                    f"{shape:15} {dtype_name:9} {len(cfgs):3d} probes: floor {fl:6.2f} s, "
                    f"fit {ft:6.2f} s, probe maths {100 * share:5.0f}% of the forward "
                    f"({verdict}); features on the device "
                    f"{row['features_on_device_mib']:.1f} MiB; phases: {phases}",
                    flush=True,
                )
            del model, hf
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
