"""The notebooks in notebooks/ run top to bottom on a real kernel and say the right things.

Each notebook is executed with nbclient on an ipykernel started from this test's own
python (so it sees this checkout and venv), with the cells tagged ``interactive``
removed (they need a person clicking). The last cell of each notebook (tagged
``test-summary``, collapsed, silent) gathers a run's numbers in ``summary``; the test
appends a cell printing it as a ``SUMMARY {json}`` line and asserts on the numbers, so
students never see the line. The model comes
from the same cache as ``load_model`` (the user cache or ``$LM_PROBE_WIDGETS_CACHE``: the
kernel inherits the environment), so a machine converts SmolLM2 once.

The structural tests (no stored outputs, tags, hidden solutions, the generator is in
sync) are fast; the executions are marked slow (SmolLM2 on Rotten Tomatoes).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from patience import PATIENCE_S

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
QUICKSTART = NB_DIR / "quickstart.ipynb"
LESSON = NB_DIR / "lesson-which-layer-knows.ipynb"
USE_LESSON = NB_DIR / "lesson-does-the-model-use-it.ipynb"
ERASE_LESSON = NB_DIR / "lesson-remove-it-and-see.ipynb"
NOTEBOOKS = [QUICKSTART, LESSON, USE_LESSON, ERASE_LESSON]
EXECUTED = ROOT / "test-artifacts" / "notebooks"  # the executed copies (docs/conf.py)


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


SOLUTION_OPEN = "<details>\n<summary><b>Show solution</b></summary>\n\n```python\n"
SOLUTION_CLOSE = "\n```\n\n</details>"


def solution_code(cell: nbformat.NotebookNode) -> str:
    """The code inside a folded solution cell (the tests run it)."""
    assert cell.source.startswith(SOLUTION_OPEN) and cell.source.endswith(SOLUTION_CLOSE)
    return cell.source[len(SOLUTION_OPEN) : len(cell.source) - len(SOLUTION_CLOSE)]


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell has stored outputs"
            assert cell.execution_count is None, f"{path.name}: stored execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paired_document_in_sync(path: Path) -> None:
    """Each notebook's source is its MyST Markdown twin (jupytext): a teacher edits
    either, and the pair must say the same, cell by cell, tags included."""
    import jupytext

    document = path.with_suffix(".md")
    text = jupytext.read(document)
    stored = nbformat.read(path, as_version=4)
    assert stored.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    fix = f"the pair differs: run `make notebooks` (or `.venv/bin/jupytext --sync {path}`)"
    assert [c.cell_type for c in stored.cells] == [c.cell_type for c in text.cells], fix
    assert [c.source for c in stored.cells] == [c.source for c in text.cells], fix
    assert [c.metadata for c in stored.cells] == [c.metadata for c in text.cells], fix


def test_quickstart_picker_cells_are_interactive() -> None:
    nb = nbformat.read(QUICKSTART, as_version=4)
    interactive = [c.source for c in nb.cells if "interactive" in _tags(c)]
    assert any("SubmodulePicker(model" in s for s in interactive)
    assert any("picker.selected" in s for s in interactive)
    # everything after the picker must run without it
    rest = "\n".join(
        c.source for c in nb.cells if c.cell_type == "code" and c.source not in interactive
    )
    assert "picker" not in rest.replace("picker.to_configs", "")


@pytest.mark.parametrize("path", [LESSON, USE_LESSON, ERASE_LESSON], ids=lambda p: p.stem)
def test_lesson_exercises_have_hidden_solutions(path: Path) -> None:
    """Solutions are folded Markdown: Run All cannot execute them, so no answer (code or
    output) shows under an exercise; their code still compiles."""
    nb = nbformat.read(path, as_version=4)
    solutions = [c for c in nb.cells if "solution" in _tags(c)]
    exercises = [c for c in nb.cells if c.cell_type == "markdown" and "**Exercise" in c.source]
    assert 2 <= len(exercises) == len(solutions)
    for cell in solutions:
        assert cell.cell_type == "markdown"
        assert cell.source.startswith("<details>\n<summary><b>Show solution</b></summary>")
        assert "<details open" not in cell.source and cell.source.endswith("</details>")
        compile(solution_code(cell), "<solution>", "exec")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "# Solution" not in code
    assert not any("interactive" in _tags(c) for c in nb.cells)


# --------------------------------------------------------------------------- execution


def _kernel_manager(tmp_path: Path):
    """A kernel started from this interpreter (not whatever `python3` is on PATH)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "lm-probe-widgets-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "lm_probe_widgets test",
                "language": "python",
            }
        )
    )
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(kernel_name="lm-probe-widgets-test", kernel_spec_manager=ksm)


def _fresh_store_env(tmp_path: Path) -> dict[str, str]:
    """Kernel environment with the feature store on, in an empty cache folder whose
    ``models`` links to the usual one (so SmolLM2 is not converted again)."""
    from lm_probe_widgets.core.engine.disk_store import cache_dir

    cache = tmp_path / "cache"
    cache.mkdir()
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    (cache / "models").symlink_to(models, target_is_directory=True)
    return {"LM_PROBE_WIDGETS_STORE": "1", "LM_PROBE_WIDGETS_CACHE": str(cache)}


def execute(
    path: Path,
    tmp_path: Path,
    extra: tuple[str, ...] | list[str] = (),
    env: dict[str, str] | None = None,
) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook without its interactive cells, then the `extra` code cells (tagged
    ``extra``), in a kernel whose environment is this process's plus `env`; returns it
    with outputs and seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "interactive" not in _tags(c)]
    for source in extra:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["extra"]
        nb.cells.append(cell)
    if any("test-summary" in _tags(c) for c in nb.cells):
        cell = nbformat.v4.new_code_cell('import json\nprint("SUMMARY", json.dumps(summary))')
        cell.metadata["tags"] = ["summary"]
        nb.cells.append(cell)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.executable)"))
    work = tmp_path / "cwd"
    work.mkdir()
    client = NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        timeout=PATIENCE_S,
        resources={"metadata": {"path": str(work)}},
    )
    # One torch thread unless told otherwise: on a 2-core machine shared with other work
    # two threads were ~2x slower (measured); on an idle one they are only a bit faster.
    kernel_env = {**os.environ, **(env or {})}
    kernel_env.setdefault("OMP_NUM_THREADS", "1")
    kernel_env.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.monotonic()
    client.execute(env=kernel_env)
    seconds = time.monotonic() - start
    threads = kernel_env["OMP_NUM_THREADS"]
    print(f"{path.name}: executed in {seconds:.0f} s (OMP_NUM_THREADS={threads})")
    assert _stdout(nb.cells[0]).strip() == f"KERNEL {sys.executable}"
    assert list(work.iterdir()) == [], "the notebook wrote files into its working folder"
    # kept (git-ignored) for the documentation site, which shows these outputs if present
    EXECUTED.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, EXECUTED / path.name)
    return nb, seconds


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def _summary(nb: nbformat.NotebookNode) -> dict:
    lines = [
        line
        for cell in nb.cells
        for line in _stdout(cell).splitlines()
        if line.startswith("SUMMARY ")
    ]
    assert len(lines) == 1, "the recap cell should print one SUMMARY line"
    return json.loads(lines[0].removeprefix("SUMMARY "))


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _mimetypes(cell: nbformat.NotebookNode) -> set[str]:
    return {m for o in cell.get("outputs", []) for m in o.get("data", {})}


def _cell(nb: nbformat.NotebookNode, needle: str) -> nbformat.NotebookNode:
    hits = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(hits) == 1, f"expected one cell containing {needle!r}, found {len(hits)}"
    return hits[0]


def _execute_with_solutions(path: Path, tmp_path: Path) -> nbformat.NotebookNode:
    """A lesson run to the end, then its hidden solutions (cells tagged ``extra``)."""
    stored = nbformat.read(path, as_version=4)
    solutions = [solution_code(c) for c in stored.cells if "solution" in _tags(c)]
    return execute(path, tmp_path, extra=solutions)[0]


@pytest.mark.slow
class TestQuickstart:  # a class: its own unit for `pytest --dist loadscope`
    def test_quickstart_runs_end_to_end(self, tmp_path: Path) -> None:
        # the store on (conftest turns it off for the suite), in a fresh folder: the first fit
        # fills it, the second (last-token pooling) must not run the model
        nb, _ = execute(QUICKSTART, tmp_path, env=_fresh_store_env(tmp_path))
        s = _summary(nb)
        expected = ["model.embed_tokens.output", "model.layers.14.output", "model.layers.29.output"]
        assert s["probes"] == expected
        assert s["metrics_complete"] is True
        assert all(0.0 <= a <= 1.0 for a in s["accuracy"].values())
        # a real sentiment signal in the best of the three (balanced classes: chance is 0.5)
        assert max(s["accuracy"].values()) >= 0.6, s["accuracy"]
        assert s["best"] in expected
        assert s["reloaded_identical"] is True
        assert s["reloaded_probes"] == sorted(expected)
        # the dashboard ended as the static snapshot of its final state (what a saved notebook
        # shows); the metrics table was a widget until the next cell ran, then its snapshot
        fit = _cell(nb, "runner.fit_probes(")
        assert _mimetypes(fit) == {"text/plain", "text/html"}
        html = "".join(o["data"]["text/html"] for o in fit.outputs if "data" in o)
        assert 'data-fit-state="completed"' in html and 'data-phase="extract-eval"' in html
        table = _cell(nb, "MetricsTable(runner")
        # a live table beside its static copy (which a reopened notebook shows)
        assert _mimetypes(table) == {WIDGET_VIEW, "text/plain", "text/html"}
        copy = "".join(o.get("data", {}).get("text/html", "") for o in table.outputs)
        assert "lpw-static-copy" in copy and all(name in copy for name in expected)
        # the sorted metrics rendered as a table with the three probes
        html = "".join(
            o["data"].get("text/html", "") for o in _cell(nb, "sort_values(").outputs if "data" in o
        )
        assert "matthews" in html and all(name in html for name in expected)
        # the new sentences were scored, one probability line each
        scored = [
            ln for ln in _stdout(_cell(nb, "new_texts = [")).splitlines() if "P(positive)" in ln
        ]
        assert len(scored) == 3
        # the second fit read every feature from the store: batches ran, the model did not
        assert s["second_fit_probes"] == expected
        assert s["second_fit_batches"] > 0 and s["second_fit_traced"] == 0, s
        second = _stdout(_cell(nb, 'pooling="last"'))
        assert "0 examples ran through the model" in second and "store=" in second
        # one sweep mixing the four probe families; only the attention probe's token
        # features ran through the model (once per text), the others came from the store
        kinds = ["linear", "mlp", "sparse"]
        families = {f"{k} {i}": k for i in (14, 29) for k in kinds}
        families["attention embed_tokens"] = "attention"
        assert s["families"] == families, s["families"]
        assert set(s["families_states"]) <= {"finished", "early-stopped"}, s["families_states"]
        assert all(0.0 <= a <= 1.0 for a in s["families_accuracy"].values())
        assert s["families_traced"] == s["n_texts"], s
        ran = f"{s['n_texts']} examples ran through the model (for the attention"
        assert ran in _stdout(_cell(nb, "family_options = {"))
        assert str(tmp_path / "cache" / "features") in "".join(
            o["data"].get("text/plain", "")
            for o in _cell(nb, "store_info()").outputs
            if "data" in o
        )
        # the playground too: live, beside its static copy, with the dataset's class names
        playground = _cell(nb, "ProbePlayground(runner")
        assert _mimetypes(playground) == {WIDGET_VIEW, "text/plain", "text/html"}
        copy = "".join(o.get("data", {}).get("text/html", "") for o in playground.outputs)
        assert "lpw-static-copy" in copy and "positive" in copy


@pytest.mark.slow
class TestLessonWhichLayer:  # a class: its own unit for `pytest --dist loadscope`
    def test_lesson_runs_end_to_end(self, tmp_path: Path) -> None:
        nb = _execute_with_solutions(LESSON, tmp_path)
        s = _summary(nb)
        layers = s["layers"]
        assert layers[0] == "h[0]" and layers[-1] == "h[30]" and len(layers) >= 11
        assert all(0.0 <= s["accuracy"][k] <= 1.0 for k in layers)
        # "What the curve means": the middle layer chosen on CV is a few points above h[0],
        # but its paired 95% interval over the test reviews includes zero: verdict "ties"
        vs = s["vs_embeddings"]
        assert vs["b"] == "h[0]" and 6 <= int(vs["a"][2:-1]) <= 24, vs
        assert 0 < vs["difference"] < 0.1 and vs["low"] < 0 < vs["high"], vs
        assert vs["verdict"] == "ties" and vs["level"] == 0.95 and vs["n_texts"] == 200, vs
        # every layer got a control probe (selectivity) and a random-init twin
        assert set(s["selectivity"]) == set(layers)
        assert set(s["random_init_accuracy"]) == set(layers)
        assert all(-1.0 <= v <= 1.0 for v in s["selectivity"].values())
        assert 0.4 <= s["majority_accuracy"] <= 0.6  # balanced classes
        # the confound baselines ran, and the validity card has a reading per layer that
        # names the control task and the strongest confound
        assert set(s["confounds"]) == {"length", "bag_of_words", "tfidf"}
        assert all(0.0 <= v <= 1.0 for v in s["confounds"].values())
        assert set(s["readings"]) == set(layers)
        for reading in s["readings"].values():
            assert "its control task" in reading and "random-init model" in reading, reading
            assert reading.split(" ", 1)[0] in ("beats", "ties", "loses"), reading
            assert any(c in reading for c in ("length", "bag of words", "tfidf")), reading
        # the lesson's reading of the control task: the embeddings' selectivity is below the
        # best middle layer's (the words alone explain more of h[0] than of the middle)
        middle = [k for k in layers if 6 <= int(k[2:-1]) <= 24]
        assert s["selectivity"]["h[0]"] < max(s["selectivity"][k] for k in middle), s["selectivity"]
        # "How to read it", sentence by sentence (each verdict is paired and Holm-corrected):
        # h[0]'s selectivity is below zero and its verdict with the control task is "ties"
        v = s["verdicts"]
        assert s["selectivity"]["h[0]"] < 0 and v["control"]["h[0]"] == "ties", s["selectivity"]
        assert "no evidence beyond the words" in s["readings"]["h[0]"]
        assert "beats" not in v["control"].values(), v["control"]  # "no layer beats its control"
        # TF-IDF and bag of words well above chance, length near it
        conf = s["confounds"]
        assert min(conf["tfidf"], conf["bag_of_words"]) > s["majority_accuracy"] + 0.05, conf
        assert abs(conf["length"] - s["majority_accuracy"]) < 0.05, conf
        # no layer beats the strongest confound on this card
        assert "beats" not in v["confound"].values(), v["confound"]
        # the gap over random init grows with depth; only late layers beat it, not all of
        # them, the others tie
        gap = s["gap_random_init"]
        late = [k for k in layers if int(k[2:-1]) >= 21]
        assert min(gap[k] for k in late) > gap["h[0]"], gap
        beats = {k for k, verdict in v["random_init"].items() if verdict == "beats"}
        assert beats and beats < set(late), v["random_init"]
        assert set(v["random_init"].values()) == {"beats", "ties"}, v["random_init"]
        assert "image/png" not in _mimetypes(_cell(nb, "card = runner.validity()"))
        # "Going further": CV chose 1.0 for most layers (l2=100 is a hundred times that),
        # none stronger
        l2 = list(s["l2"].values())
        assert max(l2) == 1.0 and l2.count(1.0) > len(l2) / 2, s["l2"]
        # both layer-sweep plots were drawn
        assert "image/png" in _mimetypes(_cell(nb, 'plot_layer_sweep(sweep, "accuracy"'))
        assert "image/png" in _mimetypes(_cell(nb, 'plot_layer_sweep(paired, "selectivity"'))
        # Run All showed no answer: the solution cells are Markdown, nothing under them ran
        lesson = [c for c in nb.cells if "extra" not in _tags(c)]
        printed = "".join(_stdout(c) for c in lesson)
        assert "intervals overlap:" not in printed and "gap above the half-width" not in printed
        # the solutions' code works when a student runs it (after the notebook)
        sol = [c for c in nb.cells if "extra" in _tags(c)]
        assert "intervals overlap:" in _stdout(sol[0])
        # Exercise 1 teaches the paired interval: the solution prints it with its verdict
        paired = _stdout(sol[0]).split("paired: ", 1)[1]
        assert paired.split(" ", 1)[0] in ("beats", "ties", "loses") and "95% CI" in paired
        assert "quick check and paired verdict disagree at:" in _stdout(sol[1])
        assert "text/html" in _mimetypes(sol[2])


@pytest.mark.slow
class TestLessonUse:  # a class: its own unit for `pytest --dist loadscope`
    def test_use_lesson_runs_end_to_end(self, tmp_path: Path) -> None:
        nb = _execute_with_solutions(USE_LESSON, tmp_path)
        s = _summary(nb)
        layers = s["layers"]
        assert layers[0] == "h[0]" and len(layers) >= 4
        assert all(0.0 <= s["accuracy"][k] <= 1.0 for k in layers)
        assert max(s["accuracy"].values()) >= 0.6, s["accuracy"]  # a real sentiment signal
        # every layer was steered along the probe, mass-mean and random directions
        assert set(s["write"]) == {"probe", "mass_mean", "random"}
        assert all(set(v) == set(layers) for v in s["write"].values())
        assert s["n_effects"] == 3 * len(layers) * 3
        # "What the read/write gap means", sentence by sentence, against the random band
        # (20 random directions per layer) and the 95% intervals over the steered reviews
        acc, band, w = s["accuracy"], s["band"], s["write"]
        low, high = s["write_low"], s["write_high"]
        later = [k for k in layers if k != "h[0]"]
        assert acc["h[0]"] < min(acc[k] for k in later), acc  # read weak and flat
        assert max(acc[k] for k in later) - min(acc[k] for k in later) < 0.1, acc
        assert all(band[k][1] - band[k][0] > 2.0 for k in layers), band  # several units wide
        early = ["h[0]", "h[5]", "h[10]"]
        assert all(0 < w["mass_mean"][k] < band[k][1] for k in early), (w, band)  # inside it
        assert all(w["random"][k] <= 0.2 for k in early), w["random"]  # the single draw
        late = ["h[15]", "h[20]", "h[25]"]
        assert all(low["probe"][k] > band[k][1] for k in late), (low, band)  # beyond the band
        assert all(acc[k] <= acc["h[5]"] + 0.02 for k in late), acc  # reads no better
        assert s["cosine"]["h[0]"] > 0.6 and all(s["cosine"][k] < 0.2 for k in late), s["cosine"]
        assert max(low["mass_mean"][k] - band[k][1] for k in layers) < 0.5, low  # at most barely
        kl = s["kl_full"]
        similar = [k for k in layers if kl["random"][k] >= min(kl["probe"][k], kl["mass_mean"][k])]
        assert len(similar) >= len(layers) - 1, kl  # KL: random as large nearly everywhere
        assert all(
            hi >= lo
            for side in ("probe", "mass_mean")
            for lo, hi in zip(low[side].values(), high[side].values(), strict=True)
        )
        assert s["kl_max"] > 0.0
        # the read/write plots were drawn, and steer's own report printed
        assert "image/png" in _mimetypes(_cell(nb, "fig, axes = plt.subplots(3"))
        assert "image/png" in _mimetypes(_cell(nb, 'ax.set_xlabel("read: probe accuracy")'))
        assert "SteeringResult(" in "".join(
            o["data"].get("text/plain", "")
            for o in _cell(nb, 'steering.steer(runner, "h[10]"').outputs
            if "data" in o
        )
        # Run All showed no answer; the solutions work when a student runs them
        lesson = [c for c in nb.cells if "extra" not in _tags(c)]
        printed = "".join(_stdout(c) for c in lesson)
        assert "mirror table" not in printed and "strongest write layer" not in printed
        sol = [c for c in nb.cells if "extra" in _tags(c)]
        assert len(sol) == 3
        assert "mirror table" in _stdout(sol[0])
        # "pushed the other way it lowers the log-odds, but stays inside the band"
        rows = [ln.split() for ln in _stdout(sol[0]).splitlines() if ln.startswith("h[")]
        pushed_back = {r[0]: float(r[1]) for r in rows}  # the -1.0 column
        assert set(pushed_back) == set(layers)
        assert all(band[k][0] < v < 0 for k, v in pushed_back.items()), (pushed_back, band)
        assert "strongest write layer" in _stdout(sol[1])
        assert "steered:" in _stdout(sol[2])


@pytest.mark.slow
class TestLessonRemove:  # a class: its own unit for `pytest --dist loadscope`
    def test_remove_lesson_runs_end_to_end(self, tmp_path: Path) -> None:
        nb = _execute_with_solutions(ERASE_LESSON, tmp_path)
        s = _summary(nb)
        layers = s["layers"]
        assert layers == ["h[5]", "h[10]"] and set(s["ranks"].values()) == {1}
        checks, eff = s["checks"], s["effects"]
        # "Read, write, remove", sentence by sentence (paired intervals over the test texts)
        for k in layers:
            clean = checks[k]["linear re-probe (clean)"]
            erased = checks[k]["linear re-probe (erased)"]
            assert 0.6 <= clean["value"] <= 0.7 and clean["verdict"] == "ties", clean
            assert clean["low"] < 0, clean  # its interval includes chance
            assert erased["value"] == erased["majority"] == 0.5, erased  # one class throughout
            assert erased["low"] == erased["high"] == 0.0 and erased["verdict"] == "ties"
            mlp = [checks[k][f"mlp re-probe ({state})"]["verdict"] for state in ("clean", "erased")]
            assert mlp == ["ties", "ties"], checks[k]
        assert eff["kl"]["verdict"] == "beats" and eff["kl"]["value"] < 0.01, eff["kl"]
        assert eff["log_odds_shift"]["verdict"] == "ties", eff["log_odds_shift"]
        assert eff["aligned_shift"]["verdict"] == "ties", eff["aligned_shift"]
        verdict = eff["readout_accuracy"]
        assert verdict["value"] == verdict["clean"] == 12 / 16, verdict
        assert s["n_prompts"] == 16
        # the erasure ran inside the model and the eraser showed itself
        assert "ConceptEraser" in "".join(
            o["data"].get("text/html", "") for o in _cell(nb, "erasers = {").outputs if "data" in o
        )
        # Run All showed no answer; the solutions work when a student runs them
        lesson = [c for c in nb.cells if "extra" not in _tags(c)]
        printed = "".join(_stdout(c) for c in lesson)
        assert "INLP re-probe" not in printed and "random rank-1 erasure" not in printed
        sol = [_stdout(c) for c in nb.cells if "extra" in _tags(c)]
        assert len(sol) == 3
        inlp = [ln for ln in sol[0].splitlines() if ln.startswith("INLP re-probe after")]
        assert len(inlp) == 2 and all(float(ln.split(": ")[1].split()[0]) > 0.5 for ln in inlp)
        assert "MLP after erasure:" in sol[1]
        assert sol[2].startswith("random rank-1 erasure: re-probe ")
        assert float(sol[2].split("re-probe ")[1].split()[0]) > 0.5, sol[2]
