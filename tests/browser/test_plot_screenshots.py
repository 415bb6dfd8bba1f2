"""The layer-sweep plot as a reader sees it in a notebook, light and dark: the PNG the
inline backend would show (transparent background, mid-grey ink), put on JupyterLab's
light and dark page colours in chromium. Screenshots go to
test-artifacts/sweep_plot_<theme>.png for people to look at; the test checks that each
baseline is drawn in its own colour and that the figure has no opaque background (no
white block on a dark page)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PAGE_COLOUR = {"light": "#ffffff", "dark": "#111111"}  # JupyterLab's layout colours


def lesson_like_metrics() -> pd.DataFrame:
    """Shaped like lesson 1's: h[0], h[3], ..., h[30], a bootstrap band, five baselines."""
    rows = []
    for i in range(0, 31, 3):
        acc = 0.67 + 0.05 * (1 - math.exp(-i / 8))
        rows.append(
            {
                "probe": f"h[{i}]",
                "accuracy": acc,
                "accuracy_low": acc - 0.065,
                "accuracy_high": acc + 0.06,
                "baseline_majority": 0.5,
                "baseline_random_init": 0.61 - 0.003 * i,
                "baseline_length": 0.52,
                "baseline_bag_of_words": 0.62,
                "baseline_tfidf": 0.65,
            }
        )
    df = pd.DataFrame(rows).set_index("probe")
    return df.assign(submodule=df.index)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_sweep_plot_light_and_dark(page: Any, theme: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lm_probe_widgets.display.sweep_plot import plot_layer_sweep

    ax = plot_layer_sweep(lesson_like_metrics(), "accuracy", figsize=(8, 4))
    ax.set_xlabel("layer i of h[i] (0 = embeddings)")
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=100)  # what the inline backend does
    plt.close(ax.figure)
    png = buf.getvalue()

    from matplotlib.image import imread

    pixels = imread(io.BytesIO(png))
    assert pixels.shape[2] == 4 and np.median(pixels[:, :, 3]) == 0.0  # transparent
    data = base64.b64encode(png).decode()
    page.set_content(
        f'<body style="margin:0;background:{PAGE_COLOUR[theme]}">'
        f'<img id="plot" src="data:image/png;base64,{data}"></body>'
    )
    page.wait_for_function("document.getElementById('plot').complete")
    assert page.evaluate("document.getElementById('plot').naturalWidth") == 800
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#plot").screenshot(path=str(ARTIFACTS / f"sweep_plot_{theme}.png"))
