"""`lm-probe demo` and `lm-probe fit`: check the input, load the model, fit one probe
per layer, print the table and write the output folder.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from ..display.columns import format_number
from .checks import check_model_args, check_test_size, resolve_layers
from .exports import write_outputs
from .inputs import read_labelled_file
from .progress import CLIProgress


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


_SHOWN = ["submodule", "accuracy", "f1", "matthews", "roc_auc", "loss", "steps", "state"]


def _format_table(metrics: Any) -> str:
    cols = [c for c in _SHOWN if c in metrics.columns]
    return metrics[cols].to_string(float_format=format_number)


def _classes(labels: Any) -> list[Any]:
    """The distinct labels as plain Python values (for JSON and the report)."""
    import numpy as np

    return np.unique(labels).tolist()


def _class_counts(labels: Any) -> str:
    """Each class with its count ("neg: 60, pos: 60"): how balanced the data is."""
    import numpy as np

    values, counts = np.unique(labels, return_counts=True)
    return ", ".join(f"{v}: {c}" for v, c in zip(values.tolist(), counts.tolist(), strict=True))


def _print_summary(metrics: Any) -> None:
    print()
    print(_format_table(metrics))
    acc = metrics["accuracy"].astype(float)
    if acc.notna().any():
        best = acc.idxmax()
        line = f"best held-out accuracy: {best} ({format_number(acc[best])})"
        if "h0" in acc.index and best != "h0":
            line += f", embeddings h0: {format_number(acc['h0'])}"
        print(line)


def fit_and_report(
    args: argparse.Namespace,
    texts: list[str],
    labels: Any,
    data_info: dict[str, Any],
    classes: list[Any] | None = None,
) -> int:
    """What `demo` and `fit` share once the texts are read and checked: load the model,
    fit one probe per layer, print the table, write the files. `classes`: None takes
    the training data's values (strings stay strings)."""
    import torch

    from ..core.config import ProbeConfig
    from ..core.engine.data import ProbeDataset
    from ..core.io.loading import load_model
    from ..core.runner import ProbeRunner

    torch.set_num_threads(args.threads or default_threads())
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} CPU thread(s)"
        f"{'' if args.threads else ' (set with --threads)'}",
        flush=True,
    )

    t0 = time.perf_counter()
    if args.remote is True:  # NDIF: only the config and tokenizer come here
        from ..core.io.loading import remote_model

        model, tokenizer = remote_model(args.model)
    else:
        model, tokenizer = load_model(args.model, dtype=args.dtype, device_map=args.device_map)
    load_s = time.perf_counter() - t0
    print(f"model {args.model}: loaded in {load_s:.1f} s", flush=True)
    layers = resolve_layers(args.layers, model)

    ds = ProbeDataset.from_texts(texts, labels, tokenizer, max_length=args.max_length)
    train, test = ds.tt_split(test_size=args.test_size, seed=args.seed)
    print(
        f"data {data_info['data']}: {len(ds)} texts ({_class_counts(labels)}), "
        f"{len(train)} train / {len(test)} held out, max {args.max_length} tokens",
        flush=True,
    )

    steps = {} if args.max_steps is None else {"max_steps": args.max_steps}
    configs = [
        ProbeConfig(sub, classes=classes, name=name, pooling=args.pooling, seed=args.seed, **steps)
        for name, sub in layers
    ]
    runner = ProbeRunner(model, configs, remote=args.remote)
    t1 = time.perf_counter()
    runner.fit_probes(
        train,
        test,
        num_epoch=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=None if args.quiet else CLIProgress(),
    )
    fit_s = time.perf_counter() - t1
    _print_summary(runner.metrics)
    reasons = runner.metrics["stop_reason"].astype(str)
    capped = runner.metrics.index[reasons.str.contains("max_steps", regex=False)].tolist()
    if capped and any(runner.metrics.loc[c, "epochs"] < args.epochs for c in capped):
        cap = args.max_steps or configs[0].max_steps
        print(
            f"{len(capped)} probe(s) stopped at --max-steps {cap} before --epochs "
            f"{args.epochs} ended: raise --max-steps to train longer",
            flush=True,
        )
    print(
        f"fit took {fit_s:.1f} s with {threads} thread(s); total {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    info = {
        "model": args.model,
        **data_info,
        "classes": _classes(labels),
        "n": len(ds),
        "train": len(train),
        "held_out": len(test),
        "max_length": args.max_length,
        "pooling": args.pooling,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "threads": threads,
        "load_seconds": round(load_s, 2),
        "fit_seconds": round(fit_s, 2),
        "torch": torch.__version__,
    }
    write_outputs(args.out, runner, info, args.command)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from ..core.io.loading import load_dataset

    check_test_size(args.test_size)
    check_model_args(args)
    texts, labels = load_dataset(args.data, n=args.n, seed=args.seed)
    return fit_and_report(args, texts, labels, {"data": args.data}, classes=[0, 1])


def run_fit(args: argparse.Namespace) -> int:
    """`lm-probe fit DATA`: every check on the file runs before the model loads."""
    check_test_size(args.test_size)
    check_model_args(args)
    data = read_labelled_file(
        args.data, args.text_col, args.label_col, args.n, args.seed, args.encoding
    )
    dropped = data.no_text + data.no_label
    if dropped:
        print(
            f"dropped {dropped} row(s) of {args.data.name}: {data.no_text} with empty text, "
            f"{data.no_label} with no label",
            flush=True,
        )
    data_info = {
        "data": str(args.data),
        "text_col": args.text_col,
        "label_col": args.label_col,
        "dropped_rows": dropped,
    }
    return fit_and_report(args, data.texts, data.labels, data_info)
