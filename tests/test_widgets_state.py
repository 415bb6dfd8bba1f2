"""Python-side state of the submodule picker and the metrics table widgets."""

from __future__ import annotations

import pytest
import traitlets

from lm_probe_widgets.widgets import SubmodulePicker
from lm_probe_widgets.widgets.picker import layer_groups, layer_pattern, normalise_tree


@pytest.fixture(scope="module", params=["gpt2", "llama", "bert"])
def tiny_arch(request):
    from lm_probe_widgets.core.tiny import tiny_model

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
    from lm_probe_widgets.core.tiny import tiny_model

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
    from lm_probe_widgets.core.tiny import tiny_model

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
    from lm_probe_widgets.core.tiny import tiny_model

    model, _ = tiny_model("bert")
    picker = SubmodulePicker(model, selected=["encoder.layer.0.output.output"])
    assert picker.modules == ["encoder.layer.0.output"]
    picker.selected = ["encoder.layer.0.output"]  # the layer's own output
    assert picker.modules == ["encoder.layer.0"]


def test_picker_state_survives_json_round_trip():
    """Everything synced must be plain JSON (the widget wire), including shapes."""
    import json

    from lm_probe_widgets.core.tiny import tiny_model

    model, _ = tiny_model("gpt2")
    picker = SubmodulePicker(model, selected=["transformer.h.0.output"])
    state = picker.get_state()
    for key in ("tree", "groups", "selected", "height"):
        assert json.loads(json.dumps(state[key], allow_nan=False)) == state[key]
    assert "_esm" in state and "export default" in state["_esm"]
    assert "--jp-layout-color0" in state["_css"] and ".lpw-picker" in state["_css"]


def test_picker_synthetic_tree_helpers():
    rows = [{"name": "a.b"}, {"name": "a"}, {"name": "a.c", "shape": (1, 2)}, {"name": ""}]
    tree = normalise_tree(rows)
    assert [r["name"] for r in tree] == ["a", "a.b", "a.c"]  # re-ordered: parent first
    assert tree[2]["shape"] == [1, 2]
    groups = layer_groups(["x.0.y", "x.1.y", "x.0", "x.1", "z.0.q"])
    assert groups == [{"pattern": "x.*.y", "members": ["x.0.y", "x.1.y"]},
                      {"pattern": "x.*", "members": ["x.0", "x.1"]}]
    with pytest.raises(TypeError):
        SubmodulePicker()
    with pytest.raises(ValueError, match="no submodules"):
        SubmodulePicker(tree=[])
