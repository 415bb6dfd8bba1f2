"""Reading `lm-probe fit`'s data file: CSV, JSON Lines or parquet, its text and label
columns checked (names, types, classes) before the model loads.
"""

from __future__ import annotations

import difflib
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import CLIError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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
