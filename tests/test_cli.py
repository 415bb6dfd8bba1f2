"""`lm-probe demo` end to end on the tiny model, and its input checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lm_probe_widgets.cli import CLIError, main, resolve_layers
from lm_probe_widgets.core.tiny import tiny_model


def test_demo_on_tiny_model_writes_one_row_per_layer(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["demo", "--model", "tiny-gpt2", "--n", "120", "--layers", "0,1,3",
               "--epochs", "2", "--threads", "1", "--out", str(out), "--seed", "1"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "1 CPU thread(s)" in printed.out
    assert "best held-out accuracy" in printed.out
    for name in ("h0", "h1", "h3"):
        assert name in printed.out

    csv = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(csv.index) == ["h0", "h1", "h3"]
    assert list(csv["submodule"]) == [
        "transformer.drop.output", "transformer.h.0.output", "transformer.h.2.output"]
    assert csv["accuracy"].between(0, 1).all()

    data = json.loads((out / "metrics.json").read_text())
    assert [r["probe"] for r in data["metrics"]] == ["h0", "h1", "h3"]
    assert data["run"]["threads"] == 1 and data["run"]["n"] == 120
    assert data["run"]["held_out"] == 36

    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "transformer.h.2.output" in report
    assert "<script" not in report.split("<h2>")[0]  # run info is escaped text


def test_console_script_runs(tmp_path):
    exe = shutil.which("lm-probe", path=str(Path(sys.executable).parent))
    assert exe, "the lm-probe console script is not installed (pip install -e .)"
    done = subprocess.run(
        [exe, "demo", "--model", "tiny-llama", "--n", "60", "--epochs", "1", "--quiet",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
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
        ("h0", "transformer.drop.output"), ("h2", "transformer.h.1.output")]
    assert len(resolve_layers("all", model)) == 4
    assert resolve_layers("transformer.h.1.mlp", model) == [
        ("transformer.h.1.mlp", "transformer.h.1.mlp.output")]
    with pytest.raises(CLIError, match="twice"):
        resolve_layers("1,1", model)
    with pytest.raises(CLIError, match="neither"):
        resolve_layers("middle", model)
    bert, _ = tiny_model("bert", n_layer=3)
    assert resolve_layers("0,3", bert) == [
        ("h0", "embeddings.output"), ("h3", "encoder.layer.2.output")]
