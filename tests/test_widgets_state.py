"""Python-side state of the submodule picker and the metrics table widgets."""

from __future__ import annotations

import pytest
import traitlets

from lm_probe_widgets.widgets import SubmodulePicker
from lm_probe_widgets.widgets.picker import layer_groups, layer_pattern, normalise_tree


@pytest.fixture(scope="module", params=["gpt2", "llama", "bert"])
def tiny_arch(request):
    from lm_probe_widgets.core.io.tiny import tiny_model

    model, _tok = tiny_model(request.param)
    return request.param, model


# --- picker ------------------------------------------------------------------------


def test_picker_tree_for_each_architecture(tiny_arch):
    arch, model = tiny_arch
    picker = SubmodulePicker(model)
    names = [r["name"] for r in picker.tree]
    block = {"gpt2": "transformer.h.1", "llama": "model.layers.1", "bert": "encoder.layer.1"}[arch]
    assert block in names and "" not in names
    row = picker.tree[names.index(block)]
    assert row["depth"] == block.count(".") and row["parent"] == block.rsplit(".", 1)[0]
    assert row["runs"] is True and row["shape"][-1] == 32  # width of the tiny model
    # parents always precede children (the browser relies on pre-order)
    seen = set()
    for r in picker.tree:
        assert not r["parent"] or r["parent"] in seen
        seen.add(r["name"])
    patterns = {g["pattern"]: g["members"] for g in picker.groups}
    assert patterns[layer_pattern(block)] == [block.replace(".1", f".{i}") for i in range(3)]


def test_picker_module_lists_do_not_run(tiny_arch):
    arch, model = tiny_arch
    picker = SubmodulePicker(model)
    lists = [r for r in picker.tree if r["type"] == "ModuleList"]
    assert lists and all(r["runs"] is False for r in lists)


def test_picker_selection_validated_sorted_and_deduplicated():
    from lm_probe_widgets.core.io.tiny import tiny_model

    model, _ = tiny_model("gpt2")
    picker = SubmodulePicker(model, selected=["transformer.h.2.output", "transformer.h.0.mlp"])
    # bare names mean ".output"; order follows the tree, not the click order
    assert picker.selected == ["transformer.h.0.mlp.output", "transformer.h.2.output"]
    picker.selected = picker.selected + ["transformer.h.0.mlp.output"]
    assert picker.selected.count("transformer.h.0.mlp.output") == 1
    with pytest.raises(traitlets.TraitError, match="did you mean.*transformer.h.1.mlp.output"):
        picker.selected = ["transformer.h.1.mpl.output"]
    assert picker.modules == ["transformer.h.0.mlp", "transformer.h.2"]


def test_picker_select_patterns_and_to_configs():
    ProbeConfig = pytest.importorskip("lm_probe_widgets.core.config").ProbeConfig
    from lm_probe_widgets.core.io.tiny import tiny_model

    model, _ = tiny_model("llama")
    picker = SubmodulePicker(model)
    with pytest.raises(ValueError, match="nothing is selected"):
        picker.to_configs([0, 1])
    picker.select("model.layers.*.mlp")
    assert picker.selected == [f"model.layers.{i}.mlp.output" for i in range(3)]
    configs = picker.to_configs(["neg", "pos"], pooling="last", max_steps=50)
    assert all(isinstance(c, ProbeConfig) for c in configs)
    assert [c.submodule for c in configs] == picker.selected
    assert {(tuple(c.classes), c.pooling, c.max_steps) for c in configs} == {
        (("neg", "pos"), "last", 50)
    }
    with pytest.raises(ValueError, match="no submodule matches"):
        picker.select("model.layers.*.ffn")
    picker.clear()
    assert picker.selected == []


def test_picker_bert_module_named_output():
    """BERT has modules literally called `output`: the selection must stay unambiguous."""
    from lm_probe_widgets.core.io.tiny import tiny_model

    model, _ = tiny_model("bert")
    picker = SubmodulePicker(model, selected=["encoder.layer.0.output.output"])
    assert picker.modules == ["encoder.layer.0.output"]
    picker.selected = ["encoder.layer.0.output"]  # the layer's own output
    assert picker.modules == ["encoder.layer.0"]


def test_picker_state_survives_json_round_trip():
    """Everything synced must be plain JSON (the widget wire), including shapes."""
    import json

    from lm_probe_widgets.core.io.tiny import tiny_model

    model, _ = tiny_model("gpt2")
    picker = SubmodulePicker(model, selected=["transformer.h.0.output"])
    state = picker.get_state()
    for key in ("tree", "groups", "selected", "height"):
        assert json.loads(json.dumps(state[key], allow_nan=False)) == state[key]
    assert "_esm" in state and "picker_default as default" in state["_esm"]  # esbuild's export
    assert "--jp-layout-color0" in state["_css"] and ".lpw-picker" in state["_css"]


def test_picker_synthetic_tree_helpers():
    rows = [{"name": "a.b"}, {"name": "a"}, {"name": "a.c", "shape": (1, 2)}, {"name": ""}]
    tree = normalise_tree(rows)
    assert [r["name"] for r in tree] == ["a", "a.b", "a.c"]  # re-ordered: parent first
    assert tree[2]["shape"] == [1, 2]
    groups = layer_groups(["x.0.y", "x.1.y", "x.0", "x.1", "z.0.q"])
    assert groups == [
        {"pattern": "x.*.y", "members": ["x.0.y", "x.1.y"]},
        {"pattern": "x.*", "members": ["x.0", "x.1"]},
    ]
    with pytest.raises(TypeError):
        SubmodulePicker()
    with pytest.raises(ValueError, match="no submodules"):
        SubmodulePicker(tree=[])


# --- metrics table -------------------------------------------------------------------


def metrics_frame():
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(
        {
            "loss": [0.5, np.nan, 0.25, 0.5],
            "accuracy": [0.75, 0.9, np.nan, 0.6],
            "steps": np.array([10, 20, 30, 40], dtype=np.int64),
            "stop_reason": ["early stopping", "max steps", None, 'quote " and, comma'],
            "early": [True, False, True, False],
        },
        index=pd.Index(["h.0", "h.1", "h.2", "h.3"], name="probe"),
    )
    return df


def test_table_state_columns_rows_and_best():
    import json

    from lm_probe_widgets.widgets import MetricsTable

    table = MetricsTable(metrics_frame())
    cols = {c["name"]: c for c in table.columns}
    assert [c["name"] for c in table.columns] == [
        "probe",
        "loss",
        "accuracy",
        "steps",
        "stop_reason",
        "early",
    ]
    assert cols["loss"]["best"] == "min" and cols["accuracy"]["best"] == "max"
    assert cols["steps"]["best"] is None and cols["probe"]["kind"] == "string"
    assert cols["early"]["kind"] == "bool" and cols["early"]["best"] is None
    assert table.rows[1] == ["h.1", None, 0.9, 20, "max steps", False]
    assert type(table.rows[0][3]) is int  # numpy ints become plain ints
    json.dumps(table.get_state()["rows"], allow_nan=False)  # NaN never crosses the wire
    override = MetricsTable(metrics_frame(), best={"steps": "min", "loss": None})
    cols = {c["name"]: c for c in override.columns}
    assert cols["steps"]["best"] == "min" and cols["loss"]["best"] is None
    with pytest.raises(ValueError, match="do not exist"):
        MetricsTable(metrics_frame(), best={"nope": "min"})
    with pytest.raises(TypeError, match="DataFrame"):
        MetricsTable([1, 2, 3])


def test_table_sort_view_and_exports():
    from lm_probe_widgets.widgets import MetricsTable

    table = MetricsTable(metrics_frame())
    assert table.order() == [0, 1, 2, 3]
    table.sort = {"column": "loss", "descending": False}
    assert table.order() == [2, 0, 3, 1]  # stable for the tie, NaN last
    assert list(table.df.index) == ["h.2", "h.0", "h.3", "h.1"]
    table.sort = {"column": "loss", "descending": True}
    assert table.order() == [0, 3, 2, 1]  # ties keep their order, NaN still last
    with pytest.raises(traitlets.TraitError, match="cannot sort by"):
        table.sort = {"column": "nope"}
    table.sort = {"column": "accuracy", "descending": True}
    csv = table.to_csv()
    assert csv.splitlines() == [
        "probe,loss,accuracy,steps,stop_reason,early",
        "h.1,,0.9,20,max steps,false",
        "h.0,0.5,0.75,10,early stopping,true",
        'h.3,0.5,0.6,40,"quote "" and, comma",false',
        "h.2,0.25,,30,,true",
    ]
    import io
    import json

    import pandas as pd

    back = pd.read_csv(io.StringIO(csv))
    assert list(back["probe"]) == ["h.1", "h.0", "h.3", "h.2"]
    records = json.loads(table.to_json())
    assert [r["probe"] for r in records] == ["h.1", "h.0", "h.3", "h.2"]
    assert records[0]["loss"] is None and records[3]["stop_reason"] is None
    assert table.to_json().startswith('[\n  {\n    "probe": "h.1",\n    "loss": null,')


def test_table_exports_are_built_in_python_and_sent_on_request():
    """The browser's CSV/JSON buttons send {type: export}; the reply carries the text
    of to_csv()/to_json() for the current sort, the file name and the type."""
    import pandas as pd

    from lm_probe_widgets.widgets.table import MetricsTable

    df = pd.DataFrame(
        {"loss": [0.5, 1e-7], "accuracy": [0.75, 0.9]}, index=pd.Index(["h.0", "h.1"], name="probe")
    )
    table = MetricsTable(df, filename="sweep 1")
    table.sort = {"column": "accuracy", "descending": True}
    sent = []
    table.send = sent.append
    table._on_custom_msg(table, {"type": "export", "format": "csv"}, [])
    table._on_custom_msg(table, {"type": "export", "format": "json"}, [])
    table._on_custom_msg(table, {"type": "export", "format": "xml"}, [])
    table._on_custom_msg(table, {"type": "other"}, [])
    assert [m["format"] for m in sent] == ["csv", "json"]
    csv, js = sent
    assert csv["filename"] == "sweep_1.csv" and csv["mime"].startswith("text/csv")
    assert csv["text"] == table.to_csv() and csv["text"].splitlines()[1].startswith("h.1,1e-07,")
    assert js["filename"] == "sweep_1.json" and js["text"] == table.to_json()
    with pytest.raises(ValueError, match="export format"):
        table.export_message("xml")


def test_table_follows_a_runner_until_closed():
    import pandas as pd

    from lm_probe_widgets.core.engine.events import EventBus
    from lm_probe_widgets.widgets import MetricsTable

    class FakeRunner:  # only the two attributes the table reads
        def __init__(self):
            self.events = EventBus()
            self.frames = []

        @property
        def metrics(self):
            if not self.frames:
                raise RuntimeError("no probe has been fitted yet")
            return self.frames[-1]

    runner = FakeRunner()
    table = MetricsTable(runner)
    assert table.rows == []
    runner.frames.append(pd.DataFrame({"loss": [0.3]}, index=pd.Index(["a"])))
    runner.events.publish("step", "a", step=1)
    assert table.rows == []  # only finishing events refresh
    runner.events.publish("probe_finished", "a", state="finished")
    assert table.rows == [["a", 0.3]] and table.columns[0]["name"] == "probe"
    table.sort = {"column": "loss", "descending": True}
    runner.frames.append(pd.DataFrame({"loss": [0.3, 0.1]}, index=pd.Index(["a", "b"])))
    runner.events.publish("fit_finished", reason="completed")
    assert len(table.rows) == 2 and table.sort["column"] == "loss"  # sort kept
    table.close()
    runner.frames.append(pd.DataFrame({"loss": [0.0]}, index=pd.Index(["c"])))
    runner.events.publish("fit_finished", reason="completed")
    assert len(table.rows) == 2


def test_picker_to_runner_to_live_table():
    """The real path: pick submodules, build configs, fit, and the table fills itself."""
    from lm_probe_widgets.core.engine.data import ProbeDataset
    from lm_probe_widgets.core.io.tiny import tiny_model
    from lm_probe_widgets.core.runner import ProbeRunner
    from lm_probe_widgets.widgets import MetricsTable

    model, tok = tiny_model("gpt2")
    picker = SubmodulePicker(model).select("transformer.h.*.mlp")
    runner = ProbeRunner(model, picker.to_configs([0, 1], max_steps=5, warmup_steps=1))
    table = MetricsTable(runner)
    assert table.rows == [] or all(r[0] in picker.selected for r in table.rows)
    texts = ["good fun film", "awful dull plot", "great acting", "boring script"] * 6
    labels = [1, 0, 1, 0] * 6
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=16)
    runner.fit_probes(ds, ds, num_epoch=1, batch_size=8, progress=None)
    assert [r[0] for r in table.rows] == picker.selected
    names = [c["name"] for c in table.columns]
    assert {"loss", "accuracy"} <= set(names)
    table.sort = {"column": "loss", "descending": False}
    assert list(table.df.index) == list(runner.metrics.sort_values("loss", kind="stable").index)
    table.close()


def test_table_best_rules_follow_metric_meaning():
    from lm_probe_widgets.widgets.table import best_direction

    expect = {
        "loss": "min",
        "val_loss": "min",
        "code_length_bits": "min",
        "mdl": "min",
        "error": "min",
        "accuracy": "max",
        "roc_auc": "max",
        "compression": "max",
        "accuracy_low": None,
        "f1_high": None,
        "baseline_accuracy": None,
        "control_accuracy": None,
        "steps": None,
        "examples_seen": None,
        "l2": None,
        "n_train": None,
        "n": None,
        "seconds": None,
    }
    assert {k: best_direction(k, "number") for k in expect} == expect
    assert best_direction("loss", "string") is None


def test_neutral_columns_are_never_highlighted_anywhere():
    """Which value is best is decided once (display.columns): the table sends the
    best cells to the browser as data, and the repr ranks by the same rule, so a count
    such as `n` is never marked best, and the two agree on every column."""
    import pandas as pd

    from lm_probe_widgets.display import columns as dc
    from lm_probe_widgets.display.metrics_table import best_rows
    from lm_probe_widgets.widgets import MetricsTable

    df = pd.DataFrame(
        {
            "accuracy": [0.7, 0.9, 0.8],
            "loss": [0.5, 0.3, 0.4],
            "n": [40, 90, 60],
            "n_train": [10, 30, 20],
            "baseline_accuracy": [0.5, 0.6, 0.55],
            "seconds": [1.0, 3.0, 2.0],
        },
        index=pd.Index(["a", "b", "c"], name="probe"),
    )
    cols = {c["name"]: c for c in MetricsTable(df).columns}
    marked = {n: c["best_rows"] for n, c in cols.items() if c["best_rows"]}
    assert marked == {"accuracy": [1], "loss": [1]}
    assert cols["n"]["best"] is None and cols["n"]["better"] == ""
    assert cols["loss"]["better"] == "lower is better"
    records = df.reset_index().to_dict("records")
    for name in df.columns:  # the repr's ranking is the same rule
        assert sorted(best_rows(records, name)) == cols[name]["best_rows"], name
        assert cols[name]["best"] == dc.better_direction(name)


def test_table_text_and_static_html_fallbacks_are_escaped():
    import pandas as pd

    from lm_probe_widgets.widgets import MetricsTable

    evil = "<img src=x onerror=alert(1)>"
    df = pd.DataFrame(
        {evil: [evil, "ok"], "loss": [0.2, 0.1]}, index=pd.Index(["a", evil], name="probe")
    )
    table = MetricsTable(df, sort={"column": "loss"})
    data, _meta = table._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "<img" not in data["text/html"] and "&lt;img src=x" in data["text/html"]
    html = data["text/html"]
    first = html.index('data-col="probe">&lt;img src=x onerror=alert(1)&gt;</td>')
    assert first < html.index('data-col="probe">a</td>')  # the sorted view
    assert data["text/plain"].splitlines()[-1].startswith("a ")  # sorted view: loss 0.1 first


# --- outputs: the live view and its static copy, side by side ----------------------


@pytest.fixture
def outputs(monkeypatch):
    """display/update_display calls recorded, in order, as
    (kind, display_id, mime types, text/html)."""
    import IPython.display

    calls: list[tuple[str, str, set[str], str]] = []

    def record(kind):
        def fn(data, metadata=None, raw=False, display_id=None):
            calls.append((kind, display_id, set(data), data.get("text/html", "")))

        return fn

    monkeypatch.setattr(IPython.display, "display", record("display"))
    monkeypatch.setattr(IPython.display, "update_display", record("update"))
    return calls


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_widgets_stay_live_beside_a_static_copy_that_follows_them(outputs):
    """In JupyterLab a saved notebook reopened without its kernel shows "Error displaying
    widget: model not found" for an output carrying the live view, and the kernel cannot
    tell when the notebook is saved. So the picker and the table are shown as two
    outputs: the live view (widget only, nothing else to render) and a static copy with
    the stylesheet that shows one of them. Clicks (from the browser) and changes from
    Python refresh the copy at once and never touch the live view, which stays live
    (under Run All too). `freeze()` empties the live output by hand."""
    import pandas as pd

    from lm_probe_widgets.widgets import MetricsTable, ProbeProgress
    from lm_probe_widgets.widgets.snapshot import STATIC_COPY_CSS, STATIC_COPY_NOTE

    calls = outputs
    tree = [{"name": "a"}, {"name": "a.b"}, {"name": "c"}]
    picker = SubmodulePicker(tree=tree, selected=["a.output"])
    table = MetricsTable(pd.DataFrame({"probe": ["p", "q"], "accuracy": [0.5, 0.7]}))
    progress = ProbeProgress()
    for w in (picker, table, progress):
        w._ipython_display_()
    shown = [(k, m) for k, _id, m, _h in calls]
    live = ("display", {WIDGET_VIEW, "text/plain"})
    copy = ("display", {"text/plain", "text/html"})
    both = ("display", {WIDGET_VIEW, "text/plain", "text/html"})
    assert shown == [live, copy, live, copy, both]  # a progress bar: one output
    picker_live, picker_copy, table_copy = calls[0][1], calls[1][1], calls[3][1]
    assert STATIC_COPY_CSS in calls[1][3] and STATIC_COPY_NOTE in calls[1][3]
    assert "lpw-static-copy" in calls[1][3] and "a.output" in calls[1][3]
    # the copy is marked for the live view's script (where :has() cannot hide it)
    assert picker.copy_ids == [picker_copy] and f'data-lpw-copy="{picker_copy}"' in calls[1][3]

    calls.clear()
    picker.set_state({"selected": ["a.output", "c.output"]})  # a click in the browser
    assert [(k, i) for k, i, _m, _h in calls] == [("update", picker_copy)]
    assert "c.output" in calls[0][3] and WIDGET_VIEW not in calls[0][2]
    assert f'data-lpw-copy="{picker_copy}"' in calls[0][3]  # still marked once refreshed

    calls.clear()
    table.set_state({"sort": {"column": "accuracy", "descending": True}})  # a header click
    assert [(k, i) for k, i, _m, _h in calls] == [("update", table_copy)]
    html = calls[0][3]
    assert html.index('data-col="probe">q<') < html.index('data-col="probe">p<')
    assert 'aria-sort="descending"' in html  # the copy marks the sort

    calls.clear()
    picker.select("a.b")  # a change from Python: the copy follows, the view is untouched
    assert [(k, i) for k, i, _m, _h in calls] == [("update", picker_copy)]
    assert "a.b.output" in calls[0][3]

    calls.clear()
    assert picker.freeze()  # by hand: the live output empties, the copy stays
    assert ("update", picker_live, {"text/plain"}) in [(k, i, m) for k, i, m, _h in calls]
    assert not picker.freeze()  # nothing live left
    calls.clear()
    picker._ipython_display_()  # shown again: a new live view and copy
    assert [c[0] for c in calls] == ["display", "display"] and calls[0][1] != picker_live
    table.close()
