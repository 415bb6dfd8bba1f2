"""`lm-probe`: the command-line entry point.

`lm-probe demo` trains one probe per chosen layer of a model on a labelled text set
(by default SmolLM2-135M on Rotten Tomatoes, both offline), prints progress and a
per-layer table of held-out metrics, and writes metrics.csv, metrics.json and
report.html to an output folder.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Sized so the demo finishes in about 3 minutes on a 2-core CPU once the model is
# converted (see README "Performance"); --n changes it.
DEFAULT_N = 1000
DEFAULT_LAYERS = "0,5,10,15,20,25,30"

# (transformer blocks, embeddings submodule) for common architectures: h[0] is the
# embeddings, h[i] the output of block i (1-based, like hidden_states).
_LAYOUTS: list[tuple[str, str]] = [
    ("model.layers", "model.embed_tokens.output"),  # Llama, Mistral, Qwen, Gemma, SmolLM
    ("transformer.h", "transformer.drop.output"),  # GPT-2: token + position embeddings
    ("gpt_neox.layers", "gpt_neox.embed_in.output"),  # Pythia
    ("encoder.layer", "embeddings.output"),  # BERT-style encoders (AutoModel)
    ("bert.encoder.layer", "bert.embeddings.output"),
]


class CLIError(Exception):
    """Bad command-line input: printed without a traceback."""


def _layout(model: Any) -> tuple[str, str, int]:
    """(blocks path, embeddings submodule, number of blocks) of an nnsight/torch model."""
    import torch

    from .core.modeling import torch_module

    module = torch_module(model)
    for blocks, embeddings in _LAYOUTS:
        try:
            found = module.get_submodule(blocks)
        except AttributeError:
            continue
        if isinstance(found, torch.nn.ModuleList) and len(found):
            return blocks, embeddings, len(found)
    raise CLIError(
        f"cannot tell where the layers of {type(module).__name__} are; pass submodule names "
        "to --layers instead, e.g. --layers model.layers.3.output,model.layers.7.output"
    )


def resolve_layers(spec: str | None, model: Any) -> list[tuple[str, str]]:
    """Turn "0,5,15" / "all" / submodule names into (probe name, submodule) pairs.

    A number i means h[i]: 0 = the embeddings, i > 0 = the output of block i.
    Anything with a dot is taken as a submodule name as is.
    """
    items = [s.strip() for s in (spec or "").split(",") if s.strip()]
    needs_layout = not items or any("." not in s for s in items)
    blocks = embeddings = ""
    n_blocks = 0
    if needs_layout:
        blocks, embeddings, n_blocks = _layout(model)
    if not items:  # seven evenly spaced depths, embeddings and last block included
        items = [str(i) for i in sorted({round(k * n_blocks / 6) for k in range(7)})]
    elif items == ["all"]:
        items = [str(i) for i in range(n_blocks + 1)]
    out: list[tuple[str, str]] = []
    for item in items:
        if "." in item:
            out.append((item, item if item.endswith((".output", ".input")) else item + ".output"))
            continue
        try:
            i = int(item)
        except ValueError:
            raise CLIError(
                f"--layers: {item!r} is neither a layer number nor a submodule name"
            ) from None
        if not 0 <= i <= n_blocks:
            raise CLIError(
                f"--layers: {i} is out of range; this model has h[0] (embeddings) to "
                f"h[{n_blocks}] ({n_blocks} blocks)"
            )
        out.append((f"h{i}", embeddings if i == 0 else f"{blocks}.{i - 1}.output"))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise CLIError(f"--layers lists a layer twice: {','.join(names)}")
    return out


def default_threads() -> int:
    """Half the usable cores, at least 1.

    Measured on a shared 2-core box: the demo's fit took 841 s wall with 2 threads
    but 201 s with 1 while other work ran (the extra thread only spun). On an idle
    machine one thread per physical core is about as fast as two per core.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    return max(1, cores // 2)


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-probe", description="Train linear probes on a language model's activations."
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train one probe per layer and print held-out metrics",
        description="Train one probe per layer on a labelled text set and print per-layer "
        "held-out metrics. Defaults: SmolLM2-135M on Rotten Tomatoes, offline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--model", default="smollm2-135m",
                      help="built-in name (smollm2-135m, tiny-gpt2, ...), local folder or hub id")
    demo.add_argument("--data", default="rotten_tomatoes", help="built-in data set")
    demo.add_argument("--layers", default=None,
                      help="comma-separated h[i] numbers (0 = embeddings, i = block i), 'all', "
                      "or submodule names; None = seven evenly spaced depths "
                      f"({DEFAULT_LAYERS} for 30-block models)")
    demo.add_argument("--n", type=_positive_int, default=DEFAULT_N,
                      help="texts to sample (balanced)")
    demo.add_argument("--test-size", type=float, default=0.3, help="held-out fraction")
    demo.add_argument("--epochs", type=_positive_int, default=10)
    demo.add_argument("--batch-size", type=_positive_int, default=32)
    demo.add_argument("--pooling", default="mean", choices=["mean", "last", "first", "max"])
    demo.add_argument("--threads", type=_positive_int, default=None,
                      help="torch CPU threads; None = half the CPU cores, at least 1 "
                      "(all cores slow down sharply when anything else runs)")
    demo.add_argument("--max-length", type=_positive_int, default=64,
                      help="truncate texts to this many tokens")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", type=Path, default=Path("lm-probe-output"),
                      help="folder for metrics.csv, metrics.json, report.html")
    demo.add_argument("--quiet", action="store_true", help="no progress meter")
    demo.add_argument("--dtype", default=None,
                      help="model dtype, e.g. bfloat16 or float16 (default: as saved)")
    demo.add_argument("--device-map", default=None,
                      help="'auto' (shard over GPUs with accelerate), 'cuda:0' or 'cpu'")
    demo.add_argument("--remote", nargs="?", const=True, default=False,
                      help="run the model on NDIF (needs NDIF_API_KEY and a hub id as "
                      "--model); '--remote local' simulates the remote path here")
    store = sub.add_parser(
        "store",
        help="list, size or clear the stored features",
        description="The on-disk feature store: pooled features that later runs reuse "
        "instead of running the model again. It lives in $LM_PROBE_WIDGETS_CACHE/features "
        "(default ~/.cache/lm_probe_widgets/features) and is capped at "
        "$LM_PROBE_WIDGETS_STORE_MAX_BYTES (default 20 GiB).",
    )
    store_sub = store.add_subparsers(dest="store_command", required=True)
    store_sub.add_parser("ls", help="one line per stored entry, least recently used first")
    store_sub.add_parser("du", help="bytes on disk")
    clear = store_sub.add_parser("clear", help="remove stored entries")
    which = clear.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="remove every entry")
    which.add_argument(
        "--older-than",
        type=_positive_float,
        metavar="DAYS",
        help="remove entries last used more than DAYS days ago",
    )
    return parser


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {s}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {s}")
    return v


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def run_store(args: argparse.Namespace) -> int:
    from .core.disk_store import DiskStore

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


_SHOWN = ["submodule", "accuracy", "f1", "matthews", "roc_auc", "loss", "steps", "state"]


def _format_table(metrics: Any) -> str:
    cols = [c for c in _SHOWN if c in metrics.columns]
    return metrics[cols].to_string(float_format=lambda v: f"{v:.3f}")


def _report_html(runner: Any, metrics: Any, info: dict[str, Any]) -> str:
    """A standalone page: the runner's own HTML repr when the display layer provides
    one, else an escaped metrics table."""
    body = None
    repr_html = getattr(runner, "_repr_html_", None)
    if callable(repr_html):
        try:
            body = repr_html()
        except Exception:  # the report must not fail the run
            body = None
    if not body:
        body = metrics.to_html(escape=True, float_format=lambda v: f"{v:.4f}", na_rep="")
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in info.items()
    )
    title = html.escape(f"lm-probe demo: {info.get('model')} on {info.get('data')}")
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{title}</h1><table class=\"run-info\">{rows}</table><h2>Per-layer metrics"
        f"</h2>{body}</body></html>\n"
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from .core.config import ProbeConfig
    from .core.data import ProbeDataset
    from .core.loading import load_dataset, load_model
    from .core.runner import ProbeRunner

    if not 0 < args.test_size < 1:
        raise CLIError(f"--test-size must be between 0 and 1, got {args.test_size}")
    torch.set_num_threads(args.threads or default_threads())
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} CPU thread(s)"
          f"{'' if args.threads else ' (set with --threads)'}", flush=True)

    t0 = time.perf_counter()
    if args.remote is True:  # NDIF: only the config and tokenizer come here
        from .core.remote import remote_model

        model, tokenizer = remote_model(args.model)
    else:
        model, tokenizer = load_model(args.model, dtype=args.dtype, device_map=args.device_map)
    load_s = time.perf_counter() - t0
    print(f"model {args.model}: loaded in {load_s:.1f} s", flush=True)
    layers = resolve_layers(args.layers, model)

    texts, labels = load_dataset(args.data, n=args.n, seed=args.seed)
    ds = ProbeDataset.from_texts(texts, labels, tokenizer, max_length=args.max_length)
    train, test = ds.tt_split(test_size=args.test_size, seed=args.seed)
    print(f"data {args.data}: {len(ds)} texts ({int(labels.sum())} positive), "
          f"{len(train)} train / {len(test)} held out, max {args.max_length} tokens", flush=True)

    configs = [
        ProbeConfig(sub, classes=[0, 1], name=name, pooling=args.pooling, seed=args.seed)
        for name, sub in layers
    ]
    runner = ProbeRunner(model, configs, remote=args.remote)
    t1 = time.perf_counter()
    runner.fit_probes(train, test, num_epoch=args.epochs, batch_size=args.batch_size,
                      seed=args.seed, progress=None if args.quiet else "auto")
    fit_s = time.perf_counter() - t1
    metrics = runner.metrics

    print()
    print(_format_table(metrics))
    acc = metrics["accuracy"].astype(float)
    if acc.notna().any():
        best = acc.idxmax()
        line = f"best held-out accuracy: {best} ({acc[best]:.3f})"
        if "h0" in acc.index and best != "h0":
            line += f", embeddings h0: {acc['h0']:.3f}"
        print(line)
    print(f"fit took {fit_s:.1f} s with {threads} thread(s); total "
          f"{time.perf_counter() - t0:.1f} s", flush=True)

    info = {
        "model": args.model, "data": args.data, "n": len(ds), "train": len(train),
        "held_out": len(test), "max_length": args.max_length, "pooling": args.pooling,
        "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "threads": threads, "load_seconds": round(load_s, 2), "fit_seconds": round(fit_s, 2),
        "torch": torch.__version__,
    }
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        metrics.to_csv(out / "metrics.csv")
        records = json.loads(metrics.reset_index().to_json(orient="records"))
        (out / "metrics.json").write_text(json.dumps(
            {"run": {k: _jsonable(v) for k, v in info.items()}, "metrics": records},
            indent=1))
        (out / "report.html").write_text(_report_html(runner, metrics, info), encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot write the results to {out}: {e}") from e
    print(f"wrote {out / 'metrics.csv'}, {out / 'metrics.json'}, {out / 'report.html'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings
    from .core.loading import DatasetLoadError, ModelLoadError

    try:
        from .core.errors import ProbeError
    except ImportError:  # pragma: no cover - the core is always there in a release
        ProbeError = CLIError  # noqa: N806
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "store":
            return run_store(args)
    except (CLIError, ModelLoadError, DatasetLoadError, ProbeError, ValueError) as e:
        print(f"lm-probe: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nlm-probe: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
