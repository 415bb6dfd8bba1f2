"""Widget speed in real chromium: the targets the browser tests used to time.

    .venv/bin/python benchmarks/bench_widgets.py            # 7 rounds, medians
    .venv/bin/python benchmarks/bench_widgets.py --rounds 3

Tests never time anything (a busy machine makes any bound flaky); these numbers are
measured here instead, in the same harness page the browser tests use
(tests/browser/harness.html, the very assets the widgets ship), each round on a fresh
page. Targets (median, one Debian chromium, headless):

- monitor: a snapshot of 40 probes x 600 points drawn in < 400 ms; an update adding
  3 points to each of the 40 curves (10 Hz during a fit) in < 50 ms;
- picker: a search over a 2,002-row tree (125 Llama layers) in < 200 ms;
- table: two header clicks (sort, then the other way) on 600 rows in < 500 ms.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import test_monitor, test_picker, test_table  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, WidgetPage, _Handler  # noqa: E402

TARGETS_MS = {
    "monitor snapshot (40 x 600 points)": 400,
    "monitor update (40 curves, +3 points)": 50,
    "picker search (2,002 rows)": 200,
    "table sort twice (600 rows)": 500,
}


def _monitor(wp: WidgetPage) -> dict[str, float]:
    names = [f"model.layers.{i}.mlp.output" for i in range(40)]
    meta = test_monitor._meta(names, state="training", best_step=100)
    wp.mount("monitor", {"meta": meta, "curves": {}, "running": False})
    steps, losses = test_monitor._curve(600)
    snap = test_monitor._clean({n: [steps, losses] for n in names})
    snapshot = wp.page.evaluate(
        """([snap]) => { const m = window.lpw.model(); const t = performance.now();
        m.kernelSend({type: "snapshot", curves: snap}); return performance.now() - t; }""",
        [snap],
    )
    update = wp.page.evaluate(
        """([names]) => { const m = window.lpw.model(); const t = performance.now();
        for (let k = 0; k < 20; k++) {
          const pts = {};
          for (const n of names) {
            const s0 = 600 + 3 * k;
            pts[n] = [s0, [1, 2, 3].map(i => 2 * (s0 + i)), [0.3, 0.31, 0.29]];
          }
          m.kernelSend({type: "points", points: pts});
        }
        return (performance.now() - t) / 20; }""",
        [names],
    )
    return {
        "monitor snapshot (40 x 600 points)": snapshot,
        "monitor update (40 curves, +3 points)": update,
    }


def _picker(wp: WidgetPage) -> dict[str, float]:
    from lm_probe_widgets.widgets import SubmodulePicker

    picker = SubmodulePicker(tree=test_picker.synthetic_tree())
    wp.mount("picker", test_picker.state_of(picker))
    times = wp.page.evaluate(
        """() => {
            const input = document.querySelector('.lpw-picker-search');
            const times = [];
            for (const q of ['mlp.q_proj', 'layers.1', 'linear', '']) {
                const t0 = performance.now();
                input.value = q;
                input.dispatchEvent(new Event('input'));
                document.querySelector('.lpw-picker-row');  // force the DOM work
                times.push(performance.now() - t0);
            }
            return times;
        }"""
    )
    return {"picker search (2,002 rows)": max(times)}


def _table(wp: WidgetPage) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from lm_probe_widgets.widgets import MetricsTable

    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame(
        {"loss": rng.random(n), "accuracy": rng.random(n), "f1": rng.random(n)},
        index=pd.Index([f"model.layers.{i}.output" for i in range(n)], name="probe"),
    )
    wp.mount("table", test_table.state_of(MetricsTable(df)))
    ms = wp.page.evaluate(
        """() => { const b = document.querySelector('th[data-column="f1"] button');
            const t0 = performance.now(); b.click(); b.click();
            document.querySelector('tbody tr'); return performance.now() - t0; }"""
    )
    return {"table sort twice (600 rows)": ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh pages per widget (7)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    from playwright.sync_api import sync_playwright

    from lm_probe_widgets.widgets._assets import asset_dir

    handler = type("Handler", (_Handler,), {"asset_dir": asset_dir()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    samples: dict[str, list[float]] = {k: [] for k in TARGETS_MS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.rounds):
                for measure in (_monitor, _picker, _table):
                    page = browser.new_page()
                    wp = WidgetPage(page, base)
                    for key, ms in measure(wp).items():
                        samples[key].append(ms)
                    wp.assert_no_errors()
                    page.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"{'measure':<40} {'median ms':>10} {'max ms':>8} {'target':>8}  met")
    ok = True
    for key, target in TARGETS_MS.items():
        med, worst = statistics.median(samples[key]), max(samples[key])
        ok &= med < target
        print(
            f"{key:<40} {med:>10.1f} {worst:>8.1f} {target:>8}  {'yes' if med < target else 'NO'}"
        )
    print(f"{args.rounds} rounds, chromium {CHROMIUM}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
