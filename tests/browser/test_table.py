"""The metrics table's ESM in real chromium, fed the state the Python class builds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lm_probe_widgets.widgets import MetricsTable

KEYS = ("columns", "rows", "sort", "title", "filename", "max_height")


def state_of(table: MetricsTable) -> dict:
    state = table.get_state()
    return json.loads(json.dumps({k: state[k] for k in KEYS}, allow_nan=False))


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "loss": [0.5, np.nan, 0.25, 0.5, 1e-7],
            "accuracy": [0.75, 0.9, np.nan, 0.6, 0.9],
            "steps": [10, 20, 30, 40, 50],
            "stop_reason": ["early stopping", "max steps", None, 'quote " and, comma', "x\ny"],
        },
        index=pd.Index(["h.0", "h.1", "h.2", "h.3", "h.4"], name="probe"),
    )


def column_text(w, j: int) -> list[str]:
    return w.root.locator(f"tbody tr td:nth-child({j + 1})").all_inner_texts()


def test_header_click_sorts_and_syncs_back(widget_page):
    table = MetricsTable(frame())
    w = widget_page.mount("table", state_of(table))
    assert column_text(w, 0) == ["h.0", "h.1", "h.2", "h.3", "h.4"]
    header = w.root.locator('th[data-column="loss"] button')
    header.click()
    assert w.get("sort") == {"column": "loss", "descending": False}
    assert column_text(w, 0) == ["h.4", "h.2", "h.0", "h.3", "h.1"]  # NaN last
    assert w.root.locator('th[data-column="loss"]').get_attribute("aria-sort") == "ascending"
    header.click()
    assert w.get("sort") == {"column": "loss", "descending": True}
    assert column_text(w, 0) == ["h.0", "h.3", "h.2", "h.4", "h.1"]  # stable ties, NaN last
    # Python follows the synced sort: same order in table.df
    table.sort = w.get("sort")
    assert list(table.df.index) == column_text(w, 0)
    # string column sorts too
    w.root.locator('th[data-column="probe"] button').click()
    assert column_text(w, 0) == ["h.0", "h.1", "h.2", "h.3", "h.4"]
    # a higher-is-better column: the first click puts the best first
    w.root.locator('th[data-column="accuracy"] button').click()
    assert w.get("sort") == {"column": "accuracy", "descending": True}


def test_the_browser_shows_the_order_python_exports(widget_page):
    """One sort rule: names JavaScript's own comparison orders differently (UTF-16 code
    units put U+1F600 before U+FF5E; code points, Python's order, the other way round)
    are shown in the order the exports use."""
    names = ["\U0001f600 smile", "\uff5e wave", "a", "B"]
    table = MetricsTable(pd.DataFrame({"name": names, "loss": [0.1, 0.2, 0.3, 0.4]}))
    w = widget_page.mount("table", state_of(table))
    w.root.locator('th[data-column="name"] button').click()
    table.sort = w.get("sort")
    assert column_text(w, 0) == list(table.df["name"]) == sorted(names)


def test_best_values_highlighted(widget_page):
    w = widget_page.mount("table", state_of(MetricsTable(frame())))
    best = w.root.locator("td.lpw-table-best")
    # loss: min (1e-7, h.4); accuracy: max 0.9 tied (h.1, h.4); steps: a count, none
    cells = best.evaluate_all("tds => tds.map(td => [td.parentElement.dataset.row, td.cellIndex])")
    assert sorted(cells) == [["1", 2], ["4", 1], ["4", 2]]
    assert w.root.locator("tbody tr").nth(1).locator("td").nth(1).inner_text() == "–"
    # a count is never "best", whatever its values
    counts = frame().assign(n=[40, 90, 60, 10, 20])
    w = widget_page.mount("table", state_of(MetricsTable(counts)))
    assert w.root.locator('td.lpw-table-best[data-col="n"]').count() == 0
    assert w.root.locator("td.lpw-table-best").count() == 3
    title = w.root.locator('th[data-column="loss"] button').get_attribute("title")
    assert "(lower is better)" in title
    # a single row, or a column where everything ties, marks nothing
    one = MetricsTable(frame().iloc[:1])
    tied = MetricsTable(pd.DataFrame({"accuracy": [0.5, 0.5]}, index=["a", "b"]))
    for t in (one, tied):
        w = widget_page.mount("table", state_of(t))
        assert w.root.locator("td.lpw-table-best").count() == 0


@pytest.mark.parametrize("sort", [None, {"column": "accuracy", "descending": True}])
def test_csv_and_json_downloads_save_what_python_sends(widget_page, sort):
    table = MetricsTable(frame(), filename="sweep 1")
    w = widget_page.mount("table", state_of(table))
    if sort:
        w.root.locator('th[data-column="accuracy"] button').click()  # best (highest) first
        table.sort = w.get("sort")
        assert table.sort == sort
    page = widget_page.page
    # the button asks the kernel; the browser saves the text Python sends back
    w.root.locator(".lpw-table-csv").click()
    assert w.sent()[-1] == {"type": "export", "format": "csv"}
    with page.expect_download() as info:
        w.kernel_send(table.export_message("csv"))
    download = info.value
    assert download.suggested_filename == "sweep_1.csv"
    text = open(download.path(), encoding="utf-8").read()
    assert text == table.to_csv()
    back = pd.read_csv(open(download.path(), encoding="utf-8"))
    assert list(back["probe"]) == [str(i) for i in table.df.index]
    assert back["stop_reason"].iloc[list(table.df.index).index("h.3")] == 'quote " and, comma'
    w.root.locator(".lpw-table-json").click()
    assert w.sent()[-1] == {"type": "export", "format": "json"}
    with page.expect_download() as info:
        w.kernel_send(table.export_message("json"))
    assert info.value.suggested_filename == "sweep_1.json"
    text = open(info.value.path(), encoding="utf-8").read()
    assert text == table.to_json()
    assert json.loads(text)[0]["probe"] == table.df.index[0]


def test_copy_uses_clipboard_then_textarea_fallback(widget_page):
    w = widget_page.mount("table", state_of(MetricsTable(frame())))
    page = widget_page.page
    page.evaluate(
        """() => { window.__copied = [];
            Object.defineProperty(navigator, 'clipboard', {configurable: true,
              value: {writeText: async (t) => { window.__copied.push(t); }}}); }"""
    )
    w.root.locator(".lpw-table-copy").click()
    page.wait_for_function("window.__copied.length === 1")
    copied = page.evaluate("window.__copied[0]")
    assert copied.splitlines()[0] == "probe\tloss\taccuracy\tsteps\tstop_reason"
    assert "h.4\t1e-7\t0.9\t50\tx y" in copied.splitlines()
    assert "Copied 5 rows" in w.root.locator(".lpw-table-toast").inner_text()
    # clipboard API refused -> the textarea + execCommand path still copies
    page.evaluate(
        """() => { window.__execCopied = null;
            navigator.clipboard.writeText = async () => { throw new Error('denied'); };
            document.addEventListener('copy', () => {
              window.__execCopied = document.activeElement.value; }, {once: true}); }"""
    )
    w.root.locator(".lpw-table-copy").click()
    page.wait_for_function("window.__execCopied !== null")
    assert page.evaluate("window.__execCopied") == copied


def test_html_in_values_and_headers_is_text(widget_page):
    evil = "<img src=x onerror=window.__pwned=1>"
    df = pd.DataFrame(
        {evil: [evil, "ok"], "loss": [0.1, 0.2]}, index=pd.Index([evil, "b"], name="probe")
    )
    w = widget_page.mount("table", {**state_of(MetricsTable(df)), "title": evil})
    assert w.root.locator("img").count() == 0
    assert w.root.locator(".lpw-table-title").inner_text() == evil
    assert column_text(w, 0)[0] == evil and column_text(w, 1)[0] == evil
    assert widget_page.page.evaluate("window.__pwned") is None


def test_hundreds_of_rows_and_kernel_updates(widget_page):
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame(
        {
            "loss": rng.random(n),
            "accuracy": rng.random(n),
            "f1": rng.random(n),
            "steps": rng.integers(1, 1000, n),
        },
        index=pd.Index([f"model.layers.{i}.output" for i in range(n)], name="probe"),
    )
    table = MetricsTable(df)
    w = widget_page.mount("table", state_of(table))
    assert w.root.locator("tbody tr").count() == n
    header = w.root.locator('th[data-column="f1"] button')
    header.click()
    header.click()
    table.sort = w.get("sort")
    assert column_text(w, 0)[:5] == [str(i) for i in table.df.index[:5]]
    # a kernel-side update (e.g. a runner refresh) re-renders with the sort kept
    table.update(df.iloc[:10])
    w.kernel_set("rows", table.get_state()["rows"])  # the rows first: shown as given
    assert w.root.locator("tbody tr").count() == 10
    w.kernel_set("columns", table.get_state()["columns"])  # then their orders
    assert w.root.locator("tbody tr").count() == 10
    assert column_text(w, 0) == [str(i) for i in table.df.index]
    assert w.unmount() == 0


def runner_like_frame() -> pd.DataFrame:
    """The shape of runner.metrics: metrics, intervals, training facts, references."""
    rng = np.random.default_rng(0)
    names = [f"model.layers.{i}.output" for i in range(4)]
    acc = rng.uniform(0.6, 0.9, 4)
    return pd.DataFrame(
        {
            "loss": rng.uniform(0.3, 0.7, 4),
            "accuracy": acc,
            "accuracy_low": acc - 0.04,
            "accuracy_high": acc + 0.04,
            "precision": acc,
            "recall": acc,
            "f1": acc - 0.01,
            "f1_low": acc - 0.05,
            "f1_high": acc + 0.03,
            "matthews": acc - 0.5,
            "roc_auc": acc + 0.05,
            "submodule": names,
            "pooling": ["mean"] * 4,
            "state": ["finished", "early-stopped", "finished", "stopped"],
            "steps": [40, 33, 40, 12],
            "examples_seen": [600, 500, 600, 180],
            "epochs": [10, 8, 10, 3],
            "best_step": [38, 23, 40, 12],
            "val_loss": rng.uniform(0.3, 0.7, 4),
            "l2": [1e-4, 1e-3, 1e-2, 1e-1],
            "refined": [True, True, True, False],
            "stop_reason": ["done"] * 4,
            "code_length_bits": [1234.5, 1200.25, 1100.0, 1300.0],
            "compression": [1.2, 1.3, 1.1, 1.0],
            "control_accuracy": [0.55, 0.52, 0.6, 0.5],
            "selectivity": acc - 0.55,
            "baseline_majority": [0.5] * 4,
            "baseline_random_init": [0.6, 0.61, 0.59, 0.6],
        },
        index=pd.Index(names, name="probe"),
    )


def test_compact_view_with_intervals_and_all_columns_one_click_away(widget_page):
    df = runner_like_frame()
    table = MetricsTable(df)
    state = {**state_of(table), "show_all": False}
    w = widget_page.mount("table", state)
    heads = w.root.locator("thead th").all_inner_texts()
    assert [h.strip() for h in heads] == [
        "probe",
        "accuracy",
        "F1 (macro)",
        "Matthews corr.",
        "test log-loss",
        "state",
        "control accuracy",
        "selectivity",
        "majority baseline",
        "random init baseline",
    ]
    first = w.root.locator("tbody tr").first
    acc = first.locator('td[data-col="accuracy"]').inner_text()
    a, lo, hi = df["accuracy"].iloc[0], df["accuracy_low"].iloc[0], df["accuracy_high"].iloc[0]
    assert acc == f"{a:.3f} [{lo:.3f}, {hi:.3f}]"  # the interval beside its metric
    assert first.locator('td[data-col="loss"]').inner_text() == f"{df['loss'].iloc[0]:.3f}"
    toggle = w.root.locator("button.lpw-table-all")
    assert toggle.inner_text() == f"All columns ({len(df.columns) + 1})"
    toggle.click()
    assert w.get("show_all") is True
    assert w.root.locator("thead th").count() == len(df.columns) + 1
    # three decimals throughout; tiny values never read as zero
    assert first.locator('td[data-col="l2"]').inner_text() == "1.00e-4"
    assert first.locator('td[data-col="code_length_bits"]').inner_text() == "1234.500"
    assert "[" not in first.locator('td[data-col="accuracy"]').inner_text()  # own columns now
    toggle.click()
    assert w.root.locator("thead th").count() == 10 and toggle.inner_text().startswith("All")
    # exports stay the full data
    assert w.root.locator("button.lpw-table-csv").is_visible()
    assert table.to_csv().splitlines()[0].count(",") == len(df.columns)
