"""Static HTML/text reprs of runners and probes: structure, escaping, ids, themes.

A real runner is fitted on the tiny GPT-2 (a few seconds); the HTML is parsed with
html.parser so the assertions are about elements and text, not substrings.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
from html.parser import HTMLParser
from typing import Any

import pytest
from patience import PATIENCE_S

from lm_probe_widgets.core.engine.probe import LinearProbe
from lm_probe_widgets.display.states import VERDICTS

EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_CLASS = "<script>alert('c')</script>"
EVIL_SUBMODULE = '"><svg onload=alert(2)>.output'
GOOD, BAD = "pos & <b>ok</b>", EVIL_CLASS


def make_texts(n: int = 64, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        good = i % 2 == 0
        words = ["good", "great", "fine", "nice"] if good else ["bad", "awful", "poor", "sad"]
        texts.append(" ".join(rng.choice(words) for _ in range(6)))
        labels.append(GOOD if good else BAD)
    return texts, labels


@pytest.fixture(scope="module")
def fitted() -> Any:
    """A fitted runner whose probe name and class labels are HTML-injection attempts;
    one probe is tuned to stop early."""
    from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
    from lm_probe_widgets.core.io.tiny import tiny_model

    model, tok = tiny_model("gpt2")
    texts, labels = make_texts()
    ds = ProbeDataset.from_texts(texts, labels, tok, max_length=16)
    train, test = ds.tt_split(test_size=0.25, seed=0)
    classes = sorted({BAD, GOOD})
    configs = [
        ProbeConfig("transformer.h.0.output", classes=classes, name=EVIL_NAME),
        ProbeConfig("transformer.h.1.output", classes=classes),
        ProbeConfig(
            "transformer.h.2.output", classes=classes, threshold=0.2, patience=2, warmup_steps=2
        ),
        ProbeConfig("transformer.wte.output", classes=classes, name="embeddings"),
    ]
    runner = ProbeRunner(model, configs)
    runner.fit_probes(train, test, num_epoch=3, batch_size=8, progress=None)
    return runner, test


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text: list[str] = []

    def iter(self) -> Any:
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag)
            and (cls is None or cls in (n.attrs.get("class") or "").split())
        ]

    def all_text(self) -> str:
        parts = list(self.text)
        for c in self.children:
            parts.append(c.all_text())
        return "".join(parts)


class Tree(HTMLParser):
    """A tiny DOM: enough to assert which elements exist and what text they hold."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "circle", "polyline", "line", "path"}

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag: str) -> None:
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.text.append(data)


def parse(source: str) -> Node:
    return Tree(source).root


# -- runner ------------------------------------------------------------------------------
def test_mimebundle_has_text_and_html(fitted: Any) -> None:
    runner, _ = fitted
    bundle = runner._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert runner._repr_mimebundle_(include=["text/plain"]).keys() == {"text/plain"}
    assert runner._repr_mimebundle_(exclude=["text/html"]).keys() == {"text/plain"}
    assert runner._repr_html_().startswith('<div id="lpw-')


def test_text_plain_is_a_readable_table(fitted: Any) -> None:
    runner, _ = fitted
    text = runner._repr_mimebundle_()["text/plain"]
    lines = text.splitlines()
    assert lines[0].startswith("ProbeRunner: GPT2LMHeadModel, 4 probe(s), state: fitted")
    header = lines[1].split()
    assert header[:6] == ["probe", "submodule", "pooling", "state", "steps", "best"]
    assert "accuracy" in header and "loss" in header
    for name in ("transformer.h.1.output", "embeddings", EVIL_NAME):
        assert any(line.startswith(name) for line in lines[3:]), name
    assert "early-stopped" in text and "stopped early at step" in text
    assert "<" not in text.replace(EVIL_NAME, "")  # plain text: no markup of ours
    # cut the table by the dashed rule's column spans; the lowest loss is starred
    spans = [m.span() for m in re.finditer(r"-+", lines[2])]
    table = {}
    for line in lines[3 : 3 + len(runner.configs)]:
        cells = [line[a:b].strip() for a, b in spans]
        table[cells[0]] = dict(zip(header, cells, strict=True))
    assert set(table) == set(runner.metrics.index)
    best = runner.metrics["loss"].idxmin()
    starred = [name for name, row in table.items() if row["loss"].endswith("*")]
    assert starred == [best]
    assert table["transformer.h.2.output"]["state"] == "early-stopped"
    assert table[EVIL_NAME]["submodule"] == "transformer.h.0.output"


def test_html_structure_state_and_sparklines(fitted: Any) -> None:
    runner, _ = fitted
    root = parse(runner._repr_html_())
    (top,) = [n for n in root.children if n.tag == "div"]
    assert top.attrs["class"] == "lpw lpw-repr" and top.attrs["id"].startswith("lpw-")
    (body,) = top.find_all("div", "lpw-body")
    # revealed only by the (trusted) scoped CSS; hidden both ways, since each sanitizer
    # keeps one of the two (JupyterLab's the style, GitHub's the attribute)
    assert "hidden" in body.attrs and body.attrs["style"] == "display:none"
    (fallback,) = top.find_all("div", "lpw-fallback")
    pre = fallback.find_all("pre")[0].all_text()
    assert pre == runner._repr_mimebundle_()["text/plain"]
    assert "GPT2LMHeadModel" in top.find_all("span", "lpw-model")[0].all_text()

    (probes,) = body.find_all("table", "lpw-probes")
    rows = {tr.attrs.get("data-probe"): tr for tr in probes.find_all("tr") if tr.attrs}
    assert set(rows) == {
        EVIL_NAME,
        "transformer.h.1.output",
        "transformer.h.2.output",
        "embeddings",
    }
    stopped = rows["transformer.h.2.output"]
    assert runner["transformer.h.2.output"].state == "early-stopped"
    badge = stopped.find_all("span", "lpw-badge")[0]
    assert badge.attrs["data-state"] == "early-stopped"
    assert "stopped early at step" in stopped.all_text()
    assert "because validation loss did not improve" in stopped.all_text()
    assert rows["embeddings"].find_all("span", "lpw-badge")[0].attrs["data-state"] == "finished"
    assert "transformer.wte.output" in rows["embeddings"].find_all("td", "lpw-submodule")[0].text
    # one sparkline per fitted probe, with as many points as evaluations, best dot present
    for name, tr in rows.items():
        (svg,) = tr.find_all("svg", "lpw-spark")
        (poly,) = svg.find_all("polyline")
        n_points = len(poly.attrs["points"].split())
        rec = runner[name].record
        assert n_points == sum(math.isfinite(h["val_loss"]) for h in rec.history) > 1
        assert svg.find_all("circle", "lpw-spark-best")[0].attrs["data-step"] == str(rec.best_step)
        assert bool(svg.find_all("line", "lpw-spark-stop")) == (rec.state == "early-stopped")
        assert svg.find_all("title")[0].all_text().startswith("validation loss")
    # collapsible configurations with every probe
    (details,) = [d for d in body.find_all("details") if "lpw-all-metrics" not in d.attrs["class"]]
    assert details.find_all("summary")[0].all_text() == "Configurations (4)"
    assert "patience" in details.all_text() and "l2" in details.all_text()


def test_metrics_best_per_column(fitted: Any) -> None:
    runner, _ = fitted
    root = parse(runner._repr_html_())
    (table,) = root.find_all("table", "lpw-metrics-all")  # every column, folded away
    df = runner.metrics
    for col, pick in (
        ("loss", "idxmin"),
        ("val_loss", "idxmin"),
        ("online_adam_compression", "idxmax"),
    ):
        cells = [td for td in table.find_all("td") if td.attrs.get("data-col") == col]
        assert len(cells) == len(df)
        best = [
            td.parent.attrs["data-probe"] for td in cells if "lpw-best" in td.attrs["class"].split()
        ]
        assert best == [getattr(df[col], pick)()], col
    headers = [th.all_text() for th in table.find_all("th")]
    assert "test log-loss ↓" in headers and "accuracy ↑" in headers


def test_metrics_compact_view_first(fitted: Any) -> None:
    """The original's metrics (with intervals) in view, the rest one click away; every
    number with three decimals."""
    runner, _ = fitted
    root = parse(runner._repr_html_())
    (compact,) = root.find_all("table", "lpw-metrics")
    headers = [th.all_text() for th in compact.find_all("th")]
    assert headers == ["probe", "accuracy ↑", "F1 (macro) ↑", "Matthews corr. ↑", "test log-loss ↓"]
    (folded,) = root.find_all("details", "lpw-all-metrics")
    assert folded.find_all("summary")[0].all_text().startswith("All metric columns")
    for td in compact.find_all("td", "lpw-num"):
        value = "".join(td.text).strip()
        assert re.fullmatch(r"-?\d+\.\d{3}|-?\d\.\d\de-\d\d", value), value  # tiny: 8.58e-04
        for ci in td.find_all("span", "lpw-ci"):
            assert re.fullmatch(r"\[\d\.\d{3}, \d\.\d{3}\]", ci.all_text()), ci.all_text()


def test_table_snapshot_and_runner_repr_draw_one_metrics_table(fitted: Any) -> None:
    """The table widget's static copy and the runner repr come from one builder: for
    every cell of the repr's compact table, the copy shows the same heading, text and
    best mark (the copy used to mark no best value)."""
    from lm_probe_widgets.widgets import MetricsTable

    runner, _ = fitted
    (mine,) = parse(runner._repr_html_()).find_all("table", "lpw-metrics")
    (copy,) = parse(MetricsTable(runner).snapshot_html()).find_all("table", "lpw-snap-compact")

    def cells(table: Node) -> dict[tuple[str, str], tuple[str, bool]]:
        return {
            (td.parent.attrs["data-probe"], td.attrs["data-col"]): (
                td.all_text(),
                "lpw-best" in (td.attrs.get("class") or "").split(),
            )
            for td in table.find_all("td")
        }

    ours, theirs = cells(mine), cells(copy)
    assert any(best for _text, best in ours.values())
    assert {k: theirs.get(k) for k in ours} == ours
    heads = {th.all_text() for th in copy.find_all("th")}
    assert {th.all_text() for th in mine.find_all("th")} <= heads


def test_confidence_interval_columns_are_shown(fitted: Any) -> None:
    """Bootstrap CIs arrive as <metric>_low/<metric>_high columns."""
    from lm_probe_widgets.display.metrics_table import _metric_cell

    cell = parse(
        _metric_cell({"accuracy": 0.8, "accuracy_low": 0.7, "accuracy_high": 0.9}, "accuracy", True)
    )
    (td,) = cell.find_all("td")
    assert td.attrs["class"] == "lpw-num lpw-best"
    assert td.find_all("span", "lpw-ci")[0].all_text() == "[0.700, 0.900]"


def test_injection_is_escaped_everywhere(fitted: Any) -> None:
    runner, _ = fitted
    html = runner._repr_html_()
    for evil in (EVIL_NAME, EVIL_CLASS, "<b>ok</b>"):
        assert evil not in html
    root = parse(html)
    tags = {n.tag for n in root.iter()}
    assert "img" not in tags and "script" not in tags and "b" in tags  # only our <b> note
    assert [n for n in root.find_all("b") if n.all_text() == "ok"] == []
    # the injection attempts are visible as text
    names = [n.all_text() for n in root.find_all("td", "lpw-name")]
    assert EVIL_NAME in names
    chips = [n.all_text() for n in root.find_all("span", "lpw-chip")]
    assert EVIL_CLASS in chips and GOOD in chips
    # a submodule string (not fitted: it can never reach a model) is escaped too
    from lm_probe_widgets import ProbeConfig

    runner.configs.append(ProbeConfig(EVIL_SUBMODULE, classes=[0, 1], name="unfitted"))
    try:
        html = runner._repr_html_()
    finally:
        runner.configs.pop()
    assert EVIL_SUBMODULE not in html
    root = parse(html)
    assert "svg" not in {n.tag for n in root.iter() if "onload" in n.attrs}
    assert EVIL_SUBMODULE in [n.all_text() for n in root.find_all("td", "lpw-submodule")]


def test_unique_ids_and_scoped_css(fitted: Any) -> None:
    runner, _ = fitted
    ids = set()
    for _ in range(5):
        root = parse(runner._repr_html_())
        ids.add(root.children[0].attrs["id"])
        ids.add(parse(runner["embeddings"]._repr_html_()).children[0].attrs["id"])
    assert len(ids) == 10
    from lm_probe_widgets.display.html import CSS

    # every selector of every rule starts at the root class (after an optional
    # body-theme prefix); at-rules wrap scoped rules only

    body = re.sub(r"/\*.*?\*/", "", CSS, flags=re.S)
    for selectors in re.findall(r"([^{}]+)\{[^{}]*\}", body):
        for sel in selectors.split(","):
            sel = sel.strip()
            assert re.match(r"^(body\[[^\]]+\] )?\.lpw\b", sel), sel
    assert 'body[data-jp-theme-light="false"] .lpw' in CSS
    assert "body[data-vscode-theme-kind" in CSS
    assert "color-scheme: light dark" in CSS and "light-dark(" in CSS  # OS preference


def test_unfitted_runner_renders(fitted: Any) -> None:
    from lm_probe_widgets import ProbeRunner

    runner, _ = fitted
    fresh = ProbeRunner(runner.model, list(runner.configs))
    bundle = fresh._repr_mimebundle_()
    assert "state: not fitted" in bundle["text/plain"]
    root = parse(bundle["text/html"])
    states = [b.attrs["data-state"] for b in root.find_all("span", "lpw-badge")]
    assert states == ["not fitted"] * 5  # runner + 4 probes
    assert root.find_all("table", "lpw-metrics") == []
    # said once: by the badge of each row, by the head line of the text
    cells = root.find_all("td", "lpw-state")
    assert len(cells) == 4 and all(c.all_text() == "not fitted" for c in cells)
    assert bundle["text/plain"].count("not fitted") == 1, bundle["text/plain"]


# -- probe -------------------------------------------------------------------------------
def test_probe_repr(fitted: Any) -> None:
    runner, _ = fitted
    probe = runner["transformer.h.2.output"]
    bundle = probe._repr_mimebundle_()
    text = bundle["text/plain"]
    assert text.startswith("LinearProbe transformer.h.2.output")
    assert f"dim: {probe.dim}" in text and "stopped early at step" in text
    assert "top dims by |w|" in text
    root = parse(bundle["text/html"])
    facts = {
        dt.all_text(): dd.all_text()
        for dt, dd in zip(root.find_all("dt"), root.find_all("dd"), strict=True)
    }
    assert facts["feature dim"] == str(probe.dim) == "32"
    assert facts["submodule"] == "transformer.h.2.output"
    assert facts["best step"] == str(probe.record.best_step)
    (weights,) = root.find_all("table", "lpw-weights")
    dims = [int(tr.find_all("td")[0].all_text()) for tr in weights.find_all("tr")[1:]]
    import numpy as np

    expected = np.argsort(-np.abs(probe.coef_).max(0), kind="stable")[:8]
    assert dims == [int(d) for d in expected]
    assert f"{np.linalg.norm(probe.coef_.astype(np.float64)):.4f}" in root.all_text()
    assert root.find_all("svg", "lpw-spark")
    assert root.find_all("details")[0].find_all("summary")[0].all_text() == "Configuration"


def test_probe_repr_escapes_and_unfitted(fitted: Any) -> None:
    runner, _ = fitted
    html = runner[EVIL_NAME]._repr_html_()
    assert EVIL_NAME not in html and EVIL_CLASS not in html
    root = parse(html)
    assert root.find_all("img") == [] and root.find_all("script") == []
    assert root.find_all("span", "lpw-name")[0].all_text() == EVIL_NAME
    from lm_probe_widgets import ProbeConfig

    probe = LinearProbe(ProbeConfig(EVIL_SUBMODULE, classes=[EVIL_CLASS, "b"]), dim=4)
    bundle = probe._repr_mimebundle_()
    assert "not fitted" in bundle["text/plain"]
    root = parse(bundle["text/html"])
    assert EVIL_SUBMODULE not in bundle["text/html"]
    assert root.find_all("span", "lpw-submodule")[0].all_text() == EVIL_SUBMODULE
    assert root.find_all("table", "lpw-weights") == []


# -- light rendering ---------------------------------------------------------------------
def test_html_repr_imports_nothing_heavy() -> None:
    """Rendering must not import matplotlib (nor anything heavy) -- checked in a fresh
    interpreter so other tests' imports don't hide it. The core is loaded first (a
    real probe, a runner-shaped object holding real configs and a metrics frame)."""
    code = (
        "import sys, types, numpy as np, pandas as pd\n"
        "from lm_probe_widgets.core.config import ProbeConfig\n"
        "from lm_probe_widgets.core.engine.probe import LinearProbe\n"
        "cfg = ProbeConfig('transformer.h.0.output')\n"
        "p = LinearProbe(cfg, 8)\n"
        "x = np.random.default_rng(0).normal(size=(16, 8)); y = np.arange(16) % 2\n"
        "p.scaler.update(x); p.step(x, y); p.evaluate(x, y); p.finish('finished', 'done')\n"
        "df = pd.DataFrame({'accuracy': [0.5], 'loss': [0.7], 'submodule': [cfg.submodule]},"
        " index=pd.Index([cfg.name], name='probe'))\n"
        "r = types.SimpleNamespace(model=None, configs=[cfg], probes={cfg.name: p},"
        " state='fitted', metrics=df)\n"
        "df.to_dict('records')\n"
        "before = set(sys.modules)\n"
        "from lm_probe_widgets.display.runner_html import runner_mimebundle\n"
        "b = runner_mimebundle(r); pb = p._repr_mimebundle_()\n"
        "assert 'lpw-spark' in b['text/html'] and 'lpw-weights' in pb['text/html']\n"
        "new = sorted(set(sys.modules) - before)\n"
        "assert 'matplotlib' not in sys.modules, new\n"
        "print(new)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE_S
    )
    assert out.returncode == 0, out.stderr[-2000:]
    new = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own printed list
    # l2_note: the probe repr's note on its chosen L2 (a module that imports nothing)
    allowed = ("lm_probe_widgets.display", "lm_probe_widgets.core.engine.l2_note", "html", "uuid")
    assert all(any(m == a or m.startswith(a + ".") for a in allowed) for m in new), new


def test_repr_while_fitting(fitted: Any) -> None:
    """A repr taken from inside the fit (an event subscriber, as a notebook display
    would) shows the probe as fitting, with its step and a curve so far."""
    from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner

    runner, _ = fitted
    texts, labels = make_texts(24, seed=3)
    ds = ProbeDataset.from_texts(texts, labels, runner.model.tokenizer, max_length=12)
    live = ProbeRunner(runner.model, [ProbeConfig("transformer.h.1.output", classes=[BAD, GOOD])])
    seen: list[dict[str, str]] = []

    def on_event(event: Any) -> None:
        if event.kind == "evaluated" and event.data["step"] == 2:
            seen.append(live._repr_mimebundle_())

    live.events.subscribe(on_event)
    live.fit_probes(ds, num_epoch=1, batch_size=4, progress=None)
    (bundle,) = seen
    assert "state: fitting" in bundle["text/plain"]
    root = parse(bundle["text/html"])
    states = [b.attrs["data-state"] for b in root.find_all("span", "lpw-badge")]
    assert states == ["fitting", "fitting"]  # the runner and its one probe
    assert "fitting: step 2" in root.find_all("td", "lpw-state")[0].all_text()
    (poly,) = root.find_all("polyline")
    assert len(poly.attrs["points"].split()) == 2
    assert "state: fitted" in live._repr_mimebundle_()["text/plain"]


def test_stop_ticks_and_badges_in_their_state_colour() -> None:
    """Red is the error's alone: a Stop is amber, early stopping teal (display.states)."""
    from lm_probe_widgets.display.html import _badge
    from lm_probe_widgets.display.sparkline import sparkline_svg
    from lm_probe_widgets.display.states import PROBE_STATES

    history = [{"step": s, "val_loss": 1 / s} for s in range(1, 6)]
    for state in ("stopped", "early-stopped", "error"):
        svg = sparkline_svg(history, 3, 5, stop_state=state)
        assert f'style="stroke: {PROBE_STATES[state]["color"]}"' in svg
        assert f'style="color: {PROBE_STATES[state]["color"]}"' in _badge(state)
    assert "d32f2f" not in sparkline_svg(history, 3, 5, stop_state="stopped")


def test_probe_repr_validity_card(fitted: Any) -> None:
    """With a runner to ask, the probe's repr carries its `runner.validity()` readings
    (escaped, failed checks marked); without one, nothing new."""
    from lm_probe_widgets.display.probe_html import probe_html, probe_validity

    runner, _ = fitted
    probe = runner["transformer.h.1.output"]
    expected = runner.validity().loc[probe.name, "reading"].split("; ")
    root = parse(probe_html(probe, runner=runner))
    (card,) = root.find_all("div", "lpw-validity")
    items = card.find_all("li")
    assert [li.all_text() for li in items] == expected
    assert any("control task" in r for r in expected)
    assert [li.attrs["data-check"] for li in items] == [
        r.split(" ", 1)[0] if r.startswith(("beats", "ties", "loses")) else "info" for r in expected
    ]
    # runner[name] knows its runner: the probe's own repr carries the same card
    assert probe.runner is runner
    (own,) = parse(probe._repr_html_()).find_all("div", "lpw-validity")
    assert [li.all_text() for li in own.find_all("li")] == expected
    from lm_probe_widgets.core.engine.probe import LinearProbe

    alone = LinearProbe(probe.config, probe.dim)  # made by hand: no runner, no card
    alone.load_arrays(probe.state_arrays())
    assert alone.runner is None
    assert parse(probe_html(alone)).find_all("div", "lpw-validity") == []

    class Evil:  # readings come from data: escaped like everything else
        def validity(self) -> Any:
            import pandas as pd

            reading = f"beats {EVIL_NAME} by 3.0 points; loses to <b>x</b> by 1.0 points"
            return pd.DataFrame({"reading": [reading]}, index=[EVIL_NAME])

    evil = runner[EVIL_NAME]
    html = probe_html(evil, runner=Evil())
    assert EVIL_NAME not in html and "<b>x</b>" not in html
    root = parse(html)
    assert root.find_all("script") == [] and root.find_all("img") == []
    items = root.find_all("div", "lpw-validity")[0].find_all("li")
    assert [li.all_text() for li in items] == [
        f"beats {EVIL_NAME} by 3.0 points",
        "loses to <b>x</b> by 1.0 points",
    ]
    assert items[1].attrs["class"] == "lpw-validity-fails"
    # colours follow the verdict (display.states.VERDICTS)
    assert [li.attrs["data-check"] for li in items] == ["beats", "loses"]
    assert VERDICTS["loses"]["color"] in items[1].attrs["style"]
    assert VERDICTS["beats"]["color"] in items[0].attrs["style"]

    class Broken:  # a runner whose validity fails: no card, no error
        def validity(self) -> Any:
            raise RuntimeError("boom")

    assert probe_validity(probe, Broken()) == []
    assert parse(probe_html(probe, runner=Broken())).find_all("div", "lpw-validity") == []


def test_steering_result_reads_as_html_and_escapes() -> None:
    """A SteeringResult shows the push against the activation norm, the probe's read-out
    before and after, and per input the top next tokens with their KL; token strings and
    generated texts are escaped."""
    import numpy as np

    from lm_probe_widgets.core.methods.steering import SteeringResult

    evil = "<img src=x onerror=alert(1)>"
    r = SteeringResult(
        submodule="model.layers.9.output",
        scale=2.0,
        direction_norm=1.0,
        activation_norm=4.0,
        classes=["neg", "pos"],
        positive="pos",
        proba_before=np.array([[0.8, 0.2], [0.6, 0.4]]),
        proba_after=np.array([[0.4, 0.6], [0.2, 0.8]]),
        top_before=[[(evil, 0.5), (" good", 0.1)], [(" bad", 0.3)]],
        top_after=[[(" great", 0.4)], [(" fun", 0.2)]],
        kl=np.array([0.25, 0.75]),
        text_before=[evil, "b"],
        text_after=["c", "d"],
    )
    html = r._repr_html_()
    assert "<img" not in html
    root = parse(html)
    text = root.all_text()
    assert "0.50× the mean activation norm" in text
    assert "0.300 → 0.700 (+0.400, mean of 2)" in text
    assert "0.5 nats (mean)" in text
    rows = root.find_all("tr")
    assert any("0.7500" in row.all_text() and "' fun'" in row.all_text() for row in rows)
    assert evil in text  # shown as text, not as markup
