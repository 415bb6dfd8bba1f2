"""`lm-probe demo` and `lm-probe fit` end to end on the tiny model, their reports, and
the input checks that must answer before any model loads."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from patience import PATIENCE_S
from synthetic import sentiment_texts

from lm_probe_widgets.cli import CLIError, main, report_html, resolve_layers
from lm_probe_widgets.core.io.tiny import tiny_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = ["--model", "tiny-gpt2", "--epochs", "2", "--threads", "1", "--quiet"]


def assert_self_contained_report(page: str) -> None:
    """One inline PNG (with alt text) above the table, and nothing fetched from elsewhere."""
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 1
    assert base64.b64decode(images[0], validate=True).startswith(PNG_MAGIC)
    assert re.search(r'<img [^>]*alt="[^"]{10,}"', page)
    assert not re.search(r'(?:src|href)="(?!data:)', page)
    assert not re.search(r"url\((?!data:)|@import", page)
    assert page.index("data:image/png") < page.index("Per-layer metrics")


def test_demo_on_tiny_model_writes_one_row_per_layer(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "demo",
            "--model",
            "tiny-gpt2",
            "--n",
            "120",
            "--layers",
            "0,1,3",
            "--epochs",
            "2",
            "--threads",
            "1",
            "--out",
            str(out),
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr()
    assert "1 CPU thread(s)" in printed.out
    assert "best held-out accuracy" in printed.out
    for name in ("h0", "h1", "h3"):
        assert name in printed.out

    csv = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(csv.index) == ["h0", "h1", "h3"]
    assert list(csv["submodule"]) == [
        "transformer.drop.output",
        "transformer.h.0.output",
        "transformer.h.2.output",
    ]
    assert csv["accuracy"].between(0, 1).all()

    data = json.loads((out / "metrics.json").read_text())
    assert [r["probe"] for r in data["metrics"]] == ["h0", "h1", "h3"]
    assert data["run"]["threads"] == 1 and data["run"]["n"] == 120
    assert data["run"]["held_out"] == 36

    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "transformer.h.2.output" in report
    assert "<script" not in report.split("<h2>")[0]  # run info is escaped text
    assert_self_contained_report(report)


def test_console_script_runs(tmp_path):
    exe = shutil.which("lm-probe", path=str(Path(sys.executable).parent))
    assert exe, "the lm-probe console script is not installed (pip install -e .)"
    done = subprocess.run(
        [
            exe,
            "demo",
            "--model",
            "tiny-llama",
            "--n",
            "60",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(tmp_path / "metrics.csv", index_col=0)
    # default layers: evenly spaced over the 3 blocks, embeddings included
    assert list(rows.index) == ["h0", "h1", "h2", "h3"]
    assert rows.loc["h0", "submodule"] == "model.embed_tokens.output"


def test_bad_input_is_a_short_error(tmp_path, capsys):
    assert main(["demo", "--model", "no-such-model", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown model name" in err and "Traceback" not in err
    assert main(["demo", "--model", "tiny-gpt2", "--layers", "9", "--out", str(tmp_path)]) == 2
    assert "out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--n", "0"])


def test_resolve_layers():
    model, _ = tiny_model("gpt2", n_layer=3)
    assert resolve_layers("0,2", model) == [
        ("h0", "transformer.drop.output"),
        ("h2", "transformer.h.1.output"),
    ]
    assert len(resolve_layers("all", model)) == 4
    assert resolve_layers("transformer.h.1.mlp", model) == [
        ("transformer.h.1.mlp", "transformer.h.1.mlp.output")
    ]
    with pytest.raises(CLIError, match="twice"):
        resolve_layers("1,1", model)
    with pytest.raises(CLIError, match="neither"):
        resolve_layers("middle", model)
    bert, _ = tiny_model("bert", n_layer=3)
    assert resolve_layers("0,3", bert) == [
        ("h0", "embeddings.output"),
        ("h3", "encoder.layer.2.output"),
    ]


def test_hidden_states_names_the_residual_stream_like_output_hidden_states():
    """One public home for h[i] -> submodule (the CLI and the lessons use it)."""
    import torch

    from lm_probe_widgets import SubmoduleError, hidden_states

    model, _ = tiny_model("gpt2", n_layer=3)
    assert hidden_states(model) == [
        "transformer.drop.output",
        "transformer.h.0.output",
        "transformer.h.1.output",
        "transformer.h.2.output",
    ]
    with pytest.raises(SubmoduleError, match="cannot tell where the layers of Sequential"):
        hidden_states(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    with pytest.raises(CLIError, match="--layers"):
        resolve_layers("1", torch.nn.Sequential(torch.nn.Linear(2, 2)))


# -- lm-probe fit on the user's own files --------------------------------------------------


def sentiment_frame(n: int = 60, names: bool = True, seed: int = 0) -> pd.DataFrame:
    texts, labels = sentiment_texts(n, seed=seed)
    values = [("pos" if y else "neg") for y in labels] if names else labels
    return pd.DataFrame({"text": texts, "label": values})


def test_fit_csv_with_string_labels(tmp_path, capsys):
    df = sentiment_frame(60)
    gaps = pd.DataFrame({"text": ["", "   ", "a good film"], "label": ["pos", "neg", "  "]})
    data = tmp_path / "reviews.csv"
    pd.concat([df, gaps]).to_csv(data, index=False)
    out = tmp_path / "out"
    rc = main(
        [
            "fit",
            str(data),
            "--text-col",
            "text",
            "--label-col",
            "label",
            "--layers",
            "0,1,3",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "dropped 3 row(s) of reviews.csv: 2 with empty text, 1 with no label" in printed
    assert "60 texts (neg: 30, pos: 30)" in printed
    assert "best held-out accuracy" in printed

    csv = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(csv.index) == ["h0", "h1", "h3"]
    assert csv["accuracy"].between(0, 1).all()
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["classes"] == ["neg", "pos"] and run["n"] == 60 and run["dropped_rows"] == 3
    assert run["data"] == str(data) and run["label_col"] == "label"
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "lm-probe fit: tiny-gpt2" in page
    assert_self_contained_report(page)


def test_fit_jsonl_with_integer_labels_and_all_layers(tmp_path):
    rows = sentiment_frame(60, names=False).to_dict("records")
    rows[3]["label"] = None  # JSON null turns the column to floats: 1.0 must stay class 1
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["fit", str(data), "--layers", "all", "--out", str(out), *FAST]) == 0
    csv = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(csv.index) == ["h0", "h1", "h2", "h3"]  # tiny-gpt2 has 3 blocks
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["classes"] == [0, 1] and run["n"] == 59


def test_fit_reads_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    data = tmp_path / "reviews.parquet"
    sentiment_frame(40).to_parquet(data)
    out = tmp_path / "out"
    assert main(["fit", str(data), "--layers", "1", "--out", str(out), *FAST]) == 0
    assert list(pd.read_csv(out / "metrics.csv", index_col=0).index) == ["h1"]


def _csv(df: pd.DataFrame, name: str = "data.csv"):
    return lambda d: df.to_csv(d / name, index=False) or d / name


def _text(content: str | bytes, name: str):
    def write(d: Path) -> Path:
        path = d / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return write


GOOD = sentiment_frame(40)
BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.csv", [], ["nope.csv: no such file"]),
    "folder": (lambda d: d, [], ["is a folder"]),
    "unknown extension": (
        _text("text,label\n", "data.txt"),
        [],
        ["unknown file type", ".csv", ".jsonl", ".parquet"],
    ),
    "missing text column": (
        _csv(GOOD),
        ["--text-col", "Text"],
        ["no column 'Text'", "did you mean 'text'", "its columns: text, label"],
    ),
    "missing label column": (
        _csv(GOOD),
        ["--label-col", "sentiment"],
        ["--label-col", "no column 'sentiment'", "its columns: text, label"],
    ),
    "same column twice": (_csv(GOOD), ["--label-col", "text"], ["both 'text'"]),
    "one class": (_csv(GOOD.assign(label="pos")), [], ["one class ('pos')", "two classes"]),
    "too few rows": (_csv(GOOD.head(8)), [], ["8 usable rows", "at least 10"]),
    "too few after --n": (_csv(GOOD), ["--n", "5"], ["(--n 5) has 5 usable rows"]),
    "class with one row": (
        _csv(GOOD.assign(label=["x"] + list(GOOD.label[1:]))),
        [],
        ["1 of 3 classes have a single row", "'x'"],
    ),
    "swapped columns": (
        _csv(GOOD),
        ["--text-col", "label", "--label-col", "text"],
        ["single row", "swapped"],
    ),
    "numbers as text": (
        _csv(GOOD.assign(score=1)),
        ["--text-col", "score"],
        ["holds numbers, not texts"],
    ),
    "non-integer labels": (
        _csv(GOOD.assign(label=np.linspace(0, 1, 40))),
        [],
        ["non-integer numbers"],
    ),
    "empty csv": (_text("", "data.csv"), [], ["cannot read", "as csv"]),
    "not gzip": (_text("text,label\n", "data.csv.gz"), [], ["cannot read", "data.csv.gz"]),
    "broken jsonl": (
        _text('{"text": "a", "label": 1}\n{oops\n', "data.jsonl"),
        [],
        ["cannot read", "as jsonl"],
    ),
    "bad test size": (_csv(GOOD), ["--test-size", "1.5"], ["--test-size must be between"]),
    # issue 26: torch's own errors for these are tracebacks from inside the load
    "int8 dtype": (_csv(GOOD), ["--dtype", "int8"], ["--dtype int8", "float16", "bfloat16"]),
    "unknown dtype": (_csv(GOOD), ["--dtype", "float17"], ["--dtype float17"]),
    "missing device": (_csv(GOOD), ["--device-map", "cuda:99"], ["--device-map cuda:99", "CUDA"]),
    "unknown device": (_csv(GOOD), ["--device-map", "gpu0"], ["--device-map gpu0", "cuda:0"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_fit_bad_input_fails_before_the_model_loads(case, tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the input was checked")

    monkeypatch.setattr("lm_probe_widgets.core.io.loading.load_model", no_model)
    write, extra, expected = BAD_INPUTS[case]
    data = write(tmp_path)
    assert main(["fit", str(data), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lm-probe: error: ") and "Traceback" not in err
    for words in expected:
        assert words in err
    assert not (tmp_path / "out").exists()


def test_fit_parquet_without_pyarrow_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    data = tmp_path / "data.parquet"
    data.write_bytes(b"PAR1 not really")
    assert main(["fit", str(data)]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err


def test_fit_gzipped_csv_reads(tmp_path, capsys, monkeypatch):
    """.csv.gz gets as far as the model (which this test replaces)."""
    data = tmp_path / "data.csv.gz"
    with gzip.open(data, "wt") as f:
        GOOD.to_csv(f, index=False)

    class Loaded(Exception):
        pass

    def stop(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr("lm_probe_widgets.core.io.loading.load_model", stop)
    with pytest.raises(Loaded):
        main(["fit", str(data), "--threads", "1"])


# -- report.html -----------------------------------------------------------------------------


def metrics_frame(accuracy=(0.6, 0.7, 0.9)) -> pd.DataFrame:
    names = ["h0", "h1", "<b>h2</b>"]
    subs = ["transformer.drop.output", "transformer.h.0.output", "transformer.h.1.output"]
    df = pd.DataFrame({"submodule": subs, "accuracy": accuracy, "pooling": "mean"}, index=names)
    df.index.name = "probe"
    return df


def test_report_escapes_every_string():
    info = {"model": "<script>alert(1)</script>", "data": 'a&b"c', "note": "<i>x</i>"}
    page = report_html(None, metrics_frame(), info, "fit")
    assert "<script" not in page and "<i>" not in page and "<b>h2" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a&amp;b&quot;c" in page
    assert "&lt;b&gt;h2&lt;/b&gt; 0.900" in page  # the alt text carries the numbers
    assert_self_contained_report(page)


def test_report_draws_its_own_plot_when_the_library_plot_fails(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("display layer changed")

    monkeypatch.setattr("lm_probe_widgets.display.sweep_plot.plot_layer_sweep", broken)
    assert_self_contained_report(report_html(None, metrics_frame(), {}, "demo"))


def test_report_without_accuracy_says_so():
    page = report_html(None, metrics_frame(accuracy=(np.nan,) * 3), {}, "demo")
    assert "data:image" not in page and "No held-out accuracy was measured" in page


# -- issue 26 --------------------------------------------------------------------------------


def test_out_naming_a_file_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before --out was checked")

    monkeypatch.setattr("lm_probe_widgets.core.io.loading.load_model", no_model)
    data = _csv(GOOD)(tmp_path)
    taken = tmp_path / "results.txt"
    taken.write_text("mine")
    for out in (taken, taken / "inside"):
        assert main(["fit", str(data), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "is a file" in err and "--out" in err and "Traceback" not in err
    assert taken.read_text() == "mine"


def test_a_latin1_csv_says_to_give_its_encoding_and_reads_with_it(tmp_path, capsys, monkeypatch):
    class Loaded(Exception):
        pass

    def stop(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr("lm_probe_widgets.core.io.loading.load_model", stop)
    data = tmp_path / "data.csv"
    GOOD.assign(text=GOOD.text + " café").to_csv(data, index=False, encoding="latin-1")
    assert main(["fit", str(data)]) == 2
    err = capsys.readouterr().err
    assert "--encoding latin-1" in err and "Traceback" not in err
    with pytest.raises(Loaded):  # read: it gets as far as the model
        main(["fit", str(data), "--encoding", "latin-1", "--threads", "1"])
    assert main(["fit", str(data), "--encoding", "klingon"]) == 2
    assert "--encoding klingon" in capsys.readouterr().err


def test_messages_name_flags_not_python_options(tmp_path, capsys):
    data = _csv(sentiment_frame(12))(tmp_path)
    rc = main(["fit", str(data), "--test-size", "0.75", "--layers", "1", *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "--test-size" in err, err
    assert "validation='none'" not in err and "resume=True" not in err


def test_progress_shows_when_output_is_redirected_and_max_steps_is_a_flag(tmp_path, capsys):
    data = _csv(sentiment_frame(60))(tmp_path)
    out = tmp_path / "out"
    fast = [a for a in FAST if a != "--quiet"]
    assert (
        main(["fit", str(data), "--layers", "1", "--max-steps", "2", "--out", str(out), *fast]) == 0
    )
    printed = capsys.readouterr()  # not a terminal: no meter to redraw
    assert re.search(r"extract-train\s+\d+/\d+", printed.err), printed.err
    assert "stopped at --max-steps 2 before --epochs 2" in printed.out
    steps = pd.read_csv(out / "metrics.csv", index_col=0)["steps"]
    assert (steps <= 2).all()


def test_fit_help_says_every_default_once():
    """`lm-probe fit --help`: each training flag has help and its default, said once;
    no "None = ..." for an option left out."""
    import argparse

    from lm_probe_widgets.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(sub.choices["fit"].format_help().split())  # unwrap the lines
    for flag, default in [
        ("--epochs", "10"),
        ("--batch-size", "32"),
        ("--pooling", "mean"),
        ("--seed", "0"),
    ]:
        entry = re.split(r" --[a-z-]+ [A-Z{\[]", text.split(f"{flag} ", 2)[2])[0]
        assert len(entry.split()) > 4, (flag, entry)  # a sentence of help, not bare
        assert entry.count("default") == 1 and f"(default: {default})" in entry, entry
    dtype = re.split(r" --[a-z-]+ [A-Z{\[]", text.split("--dtype DTYPE ", 1)[1])[0]
    assert dtype.count("default") == 1, dtype
    assert "None =" not in text and "(default: None)" not in text


def test_exports_are_the_tables_own_and_number_formats_the_tables():
    """metrics.csv and metrics.json carry the metrics table's export text (full precision;
    pandas' JSON writer rounded to 10 decimals, so 1e-12 read 0.0 beside the CSV's
    1e-12), and the console table formats numbers as the table does (0.0004 is not
    0.000)."""
    from lm_probe_widgets.cli.exports import export_texts
    from lm_probe_widgets.cli.run import _format_table
    from lm_probe_widgets.display.columns import format_number
    from lm_probe_widgets.widgets.table import MetricsTable

    df = pd.DataFrame(
        {
            "submodule": ["m.a,b", "m.c"],
            "accuracy": [0.8123456789012345, np.nan],
            "loss": [1e-12, 0.0004],
            "steps": [3, 4],
        },
        index=pd.Index(["h0", "h1"], name="probe"),
    )
    csv, text = export_texts(df, {"model": "tiny", "fit_seconds": float("nan")})
    table = MetricsTable(df)
    assert csv == table.to_csv()
    data = json.loads(text)
    assert data["metrics"] == json.loads(table.to_json())
    assert data["metrics"][0]["loss"] == 1e-12 and data["metrics"][1]["accuracy"] is None
    assert data["run"] == {"model": "tiny", "fit_seconds": None}
    assert pd.read_csv(io.StringIO(csv), index_col=0)["loss"].tolist() == [1e-12, 0.0004]
    shown = _format_table(df)
    assert format_number(0.0004) in shown and format_number(0.8123456789012345) in shown
    table.close()
