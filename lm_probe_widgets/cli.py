"""`lm-probe`: the command-line entry point.

`lm-probe demo` trains one probe per chosen layer of a model on a labelled text set
(by default SmolLM2-135M on Rotten Tomatoes, both offline), prints progress and a
per-layer table of held-out metrics, and writes metrics.csv, metrics.json and
report.html (the layer sweep as an inline image, then the table) to an output folder.
`lm-probe fit DATA` does the same on the user's own CSV, JSON Lines or parquet file;
the file and its columns are checked before the model loads.

pandas, numpy, torch and matplotlib are imported inside the functions that use them,
so `lm-probe --help` and a bad file answer at once.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import difflib
import html
import io
import json
import math
import numbers
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Sized so the demo finishes in about 3 minutes on a 2-core CPU once the model is
# converted (see README "Performance"); --n changes it.
DEFAULT_N = 1000
DEFAULT_LAYERS = "0,5,10,15,20,25,30"


class CLIError(Exception):
    """Bad command-line input: printed without a traceback."""


def resolve_layers(spec: str | None, model: Any) -> list[tuple[str, str]]:
    """Turn "0,5,15" / "all" / submodule names into (probe name, submodule) pairs.

    A number i means h[i]: 0 = the embeddings, i > 0 = the output of block i.
    Anything with a dot is taken as a submodule name as is.
    """
    items = [s.strip() for s in (spec or "").split(",") if s.strip()]
    needs_layout = not items or any("." not in s for s in items)
    sites: list[str] = []
    if needs_layout:
        from .core.engine.submodules import hidden_states
        from .core.errors import SubmoduleError

        try:
            sites = hidden_states(model)
        except SubmoduleError as e:
            raise CLIError(
                f"{e}; or pass them to --layers, e.g. "
                "--layers model.layers.3.output,model.layers.7.output"
            ) from None
    n_blocks = len(sites) - 1
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
        out.append((f"h{i}", sites[i]))
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
    from . import __version__

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
    from .core.engine.disk_store import DiskStore

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


# File endings `fit` reads (after an optional ".gz" for CSV and JSON Lines).
DATA_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
MIN_ROWS = 10  # below this a held-out split says nothing


class LabelledTexts(NamedTuple):
    """What `read_labelled_file` returns: texts, one label each, and what it dropped."""

    texts: list[str]
    labels: np.ndarray
    no_text: int
    no_label: int


def _data_format(path: Path) -> str:
    """The format (csv, jsonl or parquet) from the file name, so a wrong file fails
    by its name, before anything reads it."""
    name = path.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    for ending, kind in DATA_FORMATS.items():
        if stem.endswith(ending) and (kind != "parquet" or stem == name):
            return kind
    known = ", ".join([*DATA_FORMATS, ".csv.gz", ".jsonl.gz"])
    raise CLIError(f"{path}: unknown file type; lm-probe fit reads {known}")


def _read_table(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """The file as a DataFrame; only empty cells count as missing (a text "NA" is text)."""
    import codecs

    import pandas as pd

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CLIError(f"--encoding {encoding}: not a text encoding Python knows") from None
    if not path.exists():
        raise CLIError(f"{path}: no such file")
    if path.is_dir():
        raise CLIError(f"{path} is a folder; give the data file itself")
    kind = _data_format(path)
    try:
        if kind == "csv":
            return pd.read_csv(path, keep_default_na=False, na_values=[""], encoding=encoding)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, encoding=encoding)
        return pd.read_parquet(path)
    except UnicodeDecodeError as e:
        raise CLIError(
            f"cannot read {path} as {encoding} text (byte {e.object[e.start : e.start + 1]!r} "
            f"at position {e.start}); give the file's encoding with --encoding, e.g. "
            "--encoding latin-1 (or cp1252 for files from Windows)"
        ) from e
    except ImportError as e:
        raise CLIError(
            f"reading parquet needs pyarrow: pip install pyarrow (or save {path.name} as CSV)"
        ) from e
    except (ValueError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CLIError(f"cannot read {path} as {kind}: {reason}") from e


def _check_column(df: pd.DataFrame, name: str, flag: str, path: Path) -> None:
    """A missing column's message lists the real ones and the close spellings."""
    columns = [str(c) for c in df.columns]
    if name in columns:
        return
    by_lower = {c.lower(): c for c in columns}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(by_lower[c]) for c in close)}?)" if close else ""
    shown = ", ".join(columns[:30]) + (
        f", ... ({len(columns)} in all)" if len(columns) > 30 else ""
    )
    raise CLIError(f"{flag}: {path.name} has no column {name!r}{hint}; its columns: {shown}")


def _label_values(labels: pd.Series, col: str) -> np.ndarray:
    """Integer-valued numbers as int64, everything else as strings, so classes read as
    the user wrote them (1.0 in a column with gaps is the class 1, "pos" stays "pos")."""
    import numpy as np

    if labels.dtype.kind == "O" and all(isinstance(v, numbers.Number) for v in labels):
        labels = labels.astype(float)  # JSON numbers next to nulls
    if labels.dtype.kind == "b":
        return labels.to_numpy(dtype=np.int64)
    if labels.dtype.kind in "iuf":
        values = labels.to_numpy(dtype=float)
        if not np.all(values == np.round(values)):
            odd = values[values != np.round(values)][0]
            raise CLIError(
                f"--label-col {col!r} holds non-integer numbers (e.g. {odd:g}); probes "
                "predict classes: use integers or names as labels"
            )
        return values.astype(np.int64)
    return np.array([str(v).strip() for v in labels], dtype=object)


def _check_classes(labels: np.ndarray, col: str) -> None:
    """At least two classes, each with two rows (one for training, one held out)."""
    import numpy as np

    values, counts = np.unique(labels, return_counts=True)
    if len(values) < 2:
        raise CLIError(
            f"--label-col {col!r} has one class ({values[0]!r}) in all {len(labels)} rows: "
            "a probe needs at least two classes"
        )
    lonely = values[counts < 2]
    if len(lonely):
        shown = ", ".join(_short(v) for v in lonely[:3].tolist())
        more = ", ..." if len(lonely) > 3 else ""
        swap = " Are --text-col and --label-col swapped?" if len(lonely) > len(values) / 2 else ""
        raise CLIError(
            f"--label-col {col!r}: {len(lonely)} of {len(values)} classes have a single row "
            f"({shown}{more}); each class needs at least two.{swap}"
        )


def _short(value: Any, width: int = 30) -> str:
    """repr(value), cut to `width` characters: a message quotes labels, not whole texts."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def read_labelled_file(
    path: Path,
    text_col: str,
    label_col: str,
    n: int | None = None,
    seed: int = 0,
    encoding: str = "utf-8",
) -> LabelledTexts:
    """Texts and labels from a CSV, JSON Lines or parquet file, checked before any model
    loads: a wrong file or column should cost seconds, not a model load."""
    import pandas as pd

    if text_col == label_col:
        raise CLIError(f"--text-col and --label-col are both {text_col!r}")
    df = _read_table(path, encoding)
    _check_column(df, text_col, "--text-col", path)
    _check_column(df, label_col, "--label-col", path)
    df = df.rename(columns=str)
    texts, labels = df[text_col], df[label_col]
    if texts.dtype.kind in "iufb":
        raise CLIError(f"--text-col {text_col!r} holds numbers, not texts")
    if labels.dtype.kind == "O":  # object or string columns: blank names are missing labels
        labels = labels.where(~labels.astype(str).str.strip().eq(""))
    has_text = texts.notna() & texts.astype(str).str.strip().ne("")
    has_label = labels.notna()
    df = pd.DataFrame({"text": texts, "label": labels})[has_text & has_label]
    where = path.name
    if n is not None and n < len(df):
        df = df.sample(n=n, random_state=seed)
        where += f" (--n {n})"
    if len(df) < MIN_ROWS:
        raise CLIError(
            f"{where} has {len(df)} usable rows (text and label both present); "
            f"fitting and holding out needs at least {MIN_ROWS}"
        )
    values = _label_values(df["label"], label_col)
    _check_classes(values, label_col)
    return LabelledTexts(
        texts=df["text"].astype(str).tolist(),
        labels=values,
        no_text=int((~has_text).sum()),
        no_label=int((has_text & ~has_label).sum()),
    )


_SHOWN = ["submodule", "accuracy", "f1", "matthews", "roc_auc", "loss", "steps", "state"]
_PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em;background:#fff;color:#222}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;"
    "border-bottom:1px solid #ddd}img.sweep{max-width:100%;height:auto}"
)


def _format_table(metrics: Any) -> str:
    cols = [c for c in _SHOWN if c in metrics.columns]
    return metrics[cols].to_string(float_format=lambda v: f"{v:.3f}")


_H_NAME = re.compile(r"h(\d+)")


def sweep_frame(metrics: Any) -> tuple[Any, bool]:
    """The metrics to plot, on h[i] when every probe is one of `--layers`' numbered
    layers (h0 = the embeddings, h5 = the output of block 5: the table's names), not
    on the submodules' own block indices (embeddings at -1, h5 at 4). True if so."""
    ids = [_H_NAME.fullmatch(str(name)) for name in metrics.index]
    if not ids or not all(ids):
        return metrics, False
    return metrics.assign(submodule=[f"h[{m.group(1)}]" for m in ids]), True


def _draw_sweep(ax: Any, metrics: Any) -> None:
    """The library's layer-sweep plot; a plain accuracy-per-probe line if it fails, so a
    change in the display layer never costs the report its picture."""
    try:
        from .display.plots import plot_layer_sweep

        frame, numbered = sweep_frame(metrics)
        plot_layer_sweep(frame, "accuracy", ax=ax)
        if numbered:
            ax.set_xlabel("layer i of h[i] (0 = embeddings, i = output of block i)")
    except Exception:
        ax.clear()
        acc = metrics["accuracy"].astype(float)
        ax.plot(range(len(acc)), acc.to_numpy(), marker="o")
        ax.set_xticks(range(len(acc)), [str(i) for i in acc.index], rotation=45, ha="right")
        ax.set_xlabel("probe")
        ax.set_ylabel("held-out accuracy")
        ax.grid(True, alpha=0.3)


def sweep_png(metrics: Any) -> str | None:
    """Held-out accuracy by layer as a base64 PNG, or None when no accuracy was measured.

    Drawn on a bare Agg Figure (not pyplot): nothing registers it globally, so nothing
    needs closing and no window or backend switch can happen in a terminal."""
    if "accuracy" not in metrics.columns or not metrics["accuracy"].astype(float).notna().any():
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.6), layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    _draw_sweep(fig.add_subplot(), metrics)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, facecolor="white")
    fig.clear()
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _sweep_alt(metrics: Any) -> str:
    """Alt text that carries the numbers, for readers who cannot see the plot."""
    acc = metrics["accuracy"].astype(float).dropna()
    values = ", ".join(f"{name} {v:.3f}" for name, v in list(acc.items())[:40])
    return f"Line plot of held-out accuracy by layer: {values}"


def _sweep_section(metrics: Any) -> str:
    png = sweep_png(metrics)
    if png is None:
        return "<p>No held-out accuracy was measured, so there is no layer plot.</p>"
    alt = html.escape(_sweep_alt(metrics))
    return f'<img class="sweep" alt="{alt}" src="data:image/png;base64,{png}">'


def _metrics_section(runner: Any, metrics: Any) -> str:
    """The runner's own HTML repr when the display layer provides one, else an escaped
    metrics table."""
    repr_html = getattr(runner, "_repr_html_", None)
    if callable(repr_html):
        try:
            body = repr_html()
        except Exception:  # the report must not fail the run
            body = None
        if body:
            return body
    return metrics.to_html(escape=True, float_format=lambda v: f"{v:.4f}", na_rep="")


def report_html(runner: Any, metrics: Any, info: dict[str, Any], command: str = "demo") -> str:
    """A standalone page (no external files): run info, the layer sweep, the table."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in info.items()
    )
    title = html.escape(f"lm-probe {command}: {info.get('model')} on {info.get('data')}")
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_PAGE_STYLE}</style></head><body>"
        f'<h1>{title}</h1><table class="run-info">{rows}</table>'
        f"<h2>Held-out accuracy by layer</h2>{_sweep_section(metrics)}"
        f"<h2>Per-layer metrics</h2>{_metrics_section(runner, metrics)}</body></html>\n"
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _classes(labels: Any) -> list[Any]:
    """The distinct labels as plain Python values (for JSON and the report)."""
    import numpy as np

    return np.unique(labels).tolist()


def _class_counts(labels: Any) -> str:
    """Each class with its count ("neg: 60, pos: 60"): how balanced the data is."""
    import numpy as np

    values, counts = np.unique(labels, return_counts=True)
    return ", ".join(f"{v}: {c}" for v, c in zip(values.tolist(), counts.tolist(), strict=True))


# The library's messages name its Python options; on the command line the advice is
# the flag (or what to do) instead.
_CLI_WORDING = (
    ("call fit_probes(..., resume=True) to continue", "run the same command again"),
    ("call fit_probes(..., resume=True)", "run the same command again"),
    ("fit_probes(..., resume=True) continues", "the same command again continues"),
    ("(or validation='none')", "(more rows, or a smaller --test-size)"),
    ("ProbeRunner(..., remote=True)", "--remote"),
)


def cli_wording(message: str) -> str:
    for python, flags in _CLI_WORDING:
        message = message.replace(python, flags)
    return message


class CLIProgress:
    """The console meter, worded for the command line; with output redirected (a log
    file, a pipe: no meter to redraw) it still says where the fit is: a line when a
    phase starts, and one every `every` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        from .core.engine.progress import ConsoleProgress

        self._console = ConsoleProgress()
        self._tty = self._console._tty
        self.every = every
        self._phase: str | None = None
        self._last = 0.0

    def __call__(self, event: Any) -> None:
        from .core.engine import events as ev

        if isinstance(event, ev.Error | ev.Interrupted):
            event = dataclasses.replace(event, message=cli_wording(event.message))
        self._console(event)
        if self._tty or not isinstance(event, ev.Batch):
            return
        now = time.monotonic()
        if event.phase != self._phase or now - self._last >= self.every:
            self._phase, self._last = event.phase, now
            sys.stderr.write(
                f"{event.phase:<14} {event.examples_done:>6}/{event.examples_total:<6} "
                f"{event.seconds:6.1f}s\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        self._console.close()


def _check_test_size(test_size: float) -> None:
    if not 0 < test_size < 1:
        raise CLIError(f"--test-size must be between 0 and 1, got {test_size}")


# --dtype values a model's weights load in (names as torch spells them, and short forms)
DTYPES = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "double": "float64",
}


def _check_model_args(args: argparse.Namespace) -> None:
    """--dtype and --device-map, checked before anything loads: torch's own errors for
    them are tracebacks from deep inside a load."""
    if args.dtype is not None:
        name = str(args.dtype).strip().lower().removeprefix("torch.")
        if name not in DTYPES:
            raise CLIError(
                f"--dtype {args.dtype}: weights load as float32, float16, bfloat16 (or "
                "auto, as saved); integer types such as int8 are quantisation, which "
                "lm-probe does not do"
            )
        args.dtype = DTYPES[name]
    if args.device_map is not None:
        args.device_map = _check_device(str(args.device_map).strip())
    _check_out(args.out)


def _check_out(out: Path) -> None:
    """--out must be (or become) a folder: found out now, not after every probe fitted."""
    for place in (out, *out.parents):
        if place.exists():
            if not place.is_dir():
                what = "--out" if place == out else f"--out {out}: {place}"
                raise CLIError(
                    f"{what} is a file; --out names a folder for metrics.csv, "
                    "metrics.json and report.html"
                )
            if not os.access(place, os.W_OK):
                raise CLIError(f"--out {out}: cannot write in {place}")
            return


def _check_device(spec: str) -> str:
    if spec in ("auto", "balanced", "balanced_low_0", "sequential", "cpu"):
        return spec
    kind, _, index = spec.partition(":")
    if kind not in ("cuda", "mps", "xpu") or (index and not index.isdigit()):
        raise CLIError(
            f"--device-map {spec}: use auto (spread over the GPUs there are, else the "
            "CPU), cpu, or one device such as cuda:0"
        )
    import torch

    backend = getattr(torch, kind, None) if kind != "mps" else torch.backends.mps
    available = backend is not None and backend.is_available()
    count = torch.cuda.device_count() if kind == "cuda" and available else None
    if not available:
        raise CLIError(
            f"--device-map {spec}: this machine has no {kind.upper()} device that torch "
            f"{torch.__version__} can use; use --device-map cpu (or auto)"
        )
    if count is not None and index and int(index) >= count:
        raise CLIError(
            f"--device-map {spec}: there are {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
        )
    return spec


def _write_outputs(out: Path, runner: Any, info: dict[str, Any], command: str) -> None:
    """metrics.csv, metrics.json (run info + one record per probe) and report.html."""
    metrics = runner.metrics
    try:
        out.mkdir(parents=True, exist_ok=True)
        metrics.to_csv(out / "metrics.csv")
        records = json.loads(metrics.reset_index().to_json(orient="records"))
        run = {k: _jsonable(v) for k, v in info.items()}
        (out / "metrics.json").write_text(json.dumps({"run": run, "metrics": records}, indent=1))
        page = report_html(runner, metrics, info, command)
        (out / "report.html").write_text(page, encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot write the results to {out}: {e}") from e
    print(f"wrote {out / 'metrics.csv'}, {out / 'metrics.json'}, {out / 'report.html'}")


def _print_summary(metrics: Any) -> None:
    print()
    print(_format_table(metrics))
    acc = metrics["accuracy"].astype(float)
    if acc.notna().any():
        best = acc.idxmax()
        line = f"best held-out accuracy: {best} ({acc[best]:.3f})"
        if "h0" in acc.index and best != "h0":
            line += f", embeddings h0: {acc['h0']:.3f}"
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

    from .core.config import ProbeConfig
    from .core.engine.data import ProbeDataset
    from .core.io.loading import load_model
    from .core.runner import ProbeRunner

    torch.set_num_threads(args.threads or default_threads())
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} CPU thread(s)"
        f"{'' if args.threads else ' (set with --threads)'}",
        flush=True,
    )

    t0 = time.perf_counter()
    if args.remote is True:  # NDIF: only the config and tokenizer come here
        from .core.io.loading import remote_model

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
    _write_outputs(args.out, runner, info, args.command)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .core.io.loading import load_dataset

    _check_test_size(args.test_size)
    _check_model_args(args)
    texts, labels = load_dataset(args.data, n=args.n, seed=args.seed)
    return fit_and_report(args, texts, labels, {"data": args.data}, classes=[0, 1])


def run_fit(args: argparse.Namespace) -> int:
    """`lm-probe fit DATA`: every check on the file runs before the model loads."""
    _check_test_size(args.test_size)
    _check_model_args(args)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings
    from .core.io.loading import DatasetLoadError, ModelLoadError

    try:
        from .core.errors import ProbeError
    except ImportError:  # pragma: no cover - the core is always there in a release
        ProbeError = CLIError  # noqa: N806
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "fit":
            return run_fit(args)
        if args.command == "store":
            return run_store(args)
    except (CLIError, ModelLoadError, DatasetLoadError, ProbeError, ValueError) as e:
        print(f"lm-probe: error: {cli_wording(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nlm-probe: interrupted; the same command again reuses the features "
            "computed so far (they are stored)",
            file=sys.stderr,
        )
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
