"""`lm-probe`'s flags: the argparse parser of `demo`, `fit` and `store`, and the value
checks argparse runs on them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Sized so the demo finishes in about 3 minutes on a 2-core CPU once the model is
# converted (see README "Performance"); --n changes it.
DEFAULT_N = 1000
DEFAULT_LAYERS = "0,5,10,15,20,25,30"


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {s}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {s}")
    return v


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Says each default once: not where the help already says it, not for flags and
    options whose default is "not given" (their help says what happens then)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False
        if "default" in text or unset or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def _add_run_args(p: argparse.ArgumentParser, n_default: int | None, n_help: str) -> None:
    """The model, layer and training flags `demo` and `fit` share."""
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="built-in name (smollm2-135m, tiny-gpt2, ...), local folder or hub id",
    )
    p.add_argument(
        "--layers",
        default=None,
        help="comma-separated h[i] numbers (0 = embeddings, i = block i), 'all', "
        "or submodule names (default: seven evenly spaced depths, "
        f"{DEFAULT_LAYERS} for 30-block models)",
    )
    p.add_argument("--n", type=_positive_int, default=n_default, help=n_help)
    p.add_argument("--test-size", type=float, default=0.3, help="held-out fraction")
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=10,
        help="passes over the training data (early stopping and --max-steps can end "
        "training sooner)",
    )
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help="most optimiser steps per probe (default 1000): with many texts it ends "
        "training before --epochs; the output says when it did",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        help="texts per batch, for the model pass and each training step",
    )
    p.add_argument(
        "--pooling",
        default="mean",
        choices=["mean", "last", "first", "max"],
        help="how a text's token activations become one vector: their mean, the last "
        "or first real token, or the element-wise max",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: half the CPU cores, at least 1; all cores "
        "slow down sharply when anything else runs)",
    )
    p.add_argument(
        "--max-length", type=_positive_int, default=64, help="truncate texts to this many tokens"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the sample, the train/test split, batch order and initial weights",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("lm-probe-output"),
        help="folder for metrics.csv, metrics.json, report.html",
    )
    p.add_argument("--quiet", action="store_true", help="no progress meter")
    p.add_argument(
        "--dtype", default=None, help="model dtype, e.g. bfloat16 or float16 (default: as saved)"
    )
    p.add_argument(
        "--device-map",
        default=None,
        help="'auto' (shard over GPUs with accelerate), 'cuda:0' or 'cpu'",
    )
    p.add_argument(
        "--remote",
        nargs="?",
        const=True,
        default=False,
        help="run the model on NDIF (needs NDIF_API_KEY and a hub id as "
        "--model); '--remote local' simulates the remote path here",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm-probe", description="Train linear probes on a language model's activations."
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train one probe per layer and print held-out metrics",
        description="Train one probe per layer on a labelled text set and print per-layer "
        "held-out metrics. Defaults: SmolLM2-135M on Rotten Tomatoes, offline.",
        formatter_class=_HelpFormatter,
    )
    demo.add_argument("--data", default="rotten_tomatoes", help="built-in data set")
    _add_run_args(demo, DEFAULT_N, "texts to sample (balanced)")
    fit = sub.add_parser(
        "fit",
        help="train one probe per layer on your own labelled texts",
        description="Train one probe per layer on a labelled text file and write per-layer "
        "held-out metrics and a report, as `demo` does. DATA: a CSV (.csv, .csv.gz), JSON "
        "Lines (.jsonl, .ndjson, optionally .gz) or parquet file with one text per row.",
        formatter_class=_HelpFormatter,
    )
    fit.add_argument("data", type=Path, metavar="DATA", help="the labelled text file")
    fit.add_argument("--text-col", default="text", help="column holding the texts")
    fit.add_argument(
        "--label-col", default="label", help="column holding the labels (strings or integers)"
    )
    fit.add_argument(
        "--encoding",
        default="utf-8",
        help="text encoding of a CSV or JSON Lines file, e.g. latin-1 or cp1252",
    )
    _add_run_args(fit, None, "rows to sample, seeded (default: every row)")
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
