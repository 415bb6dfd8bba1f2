"""MLP probes with matched controls (Hewitt & Liang 2019): a one-hidden-layer probe
reads more than a linear one, and part of that "more" is memorising which words a text
holds. So each capacity (hidden `width`, AdamW `weight_decay`) is fitted twice, on the
task and on its control task (`core.methods.control_tasks`: random but consistent labels
per word type), and reported as selectivity = accuracy - control accuracy at that
capacity, with the paired interval of that difference over the test texts. A capacity
sweep shows where extra capacity stops buying task accuracy and starts buying
control accuracy. `width=0` is the linear probe (logistic regression), the sweep's
reference point.

Training is full batch: `steps` AdamW steps on standardised features, in float32 on
`device` (CPU by default), initialised from `seed` without touching the global
random state. No early stopping: a fixed budget is part of the capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import is_int
from ..engine.data import ProbeDataset
from ..engine.family_models import MLPProbe
from ..engine.plan import scored_labels
from ..errors import ProbeError
from .compare import LEVEL, Outcomes, compare_outcomes, holm_family
from .family_rows import check_level_seed, probe_config, rows, train_test

COLUMNS = [
    "width",
    "weight_decay",
    "accuracy",
    "control_accuracy",
    "selectivity",
    "low",
    "high",
    "p",
    "p_holm",
    "verdict",
]


def _grid(values: Any, what: str, low: float, integer: bool) -> list[Any]:
    values = [values] if np.isscalar(values) else list(values)
    ok = [(is_int(v) if integer else isinstance(v, (int, float))) and v >= low for v in values]
    if not values or not all(ok):
        kind = "integers" if integer else "numbers"
        raise ProbeError(f"{what} must be a non-empty list of {kind} >= {low}, got {values!r}")
    return values


def _check_sweep(
    widths: Any, weight_decays: Any, lr: Any, steps: Any, level: Any, seed: Any
) -> tuple[list[int], list[float]]:
    widths = _grid(widths, "widths", 0, True)
    weight_decays = _grid(weight_decays, "weight_decays", 0, False)
    MLPProbe(widths[0], weight_decays[0], lr=lr, steps=steps, seed=seed)  # checks settings
    check_level_seed(level, seed)
    return widths, weight_decays


def capacity_sweep(
    x_train: np.ndarray,
    y_train: np.ndarray,
    control_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    control_test: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    widths: Sequence[int] = (0, 16, 64),
    weight_decays: Sequence[float] = (1e-2,),
    n_classes: int | None = None,
    lr: float = 1e-2,
    steps: int = 300,
    level: float = LEVEL,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """At every (width, weight_decay): an `MLPProbe` fitted on the task and one of the
    same capacity on the control labels, selectivity = accuracy - control accuracy
    and its paired interval over the test texts (`clusters`), Holm-corrected over the
    sweep. One row per capacity (`COLUMNS`)."""
    widths, weight_decays = _check_sweep(widths, weight_decays, lr, steps, level, seed)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(control_train) != len(y_train) or len(control_test) != len(y_test):
        raise ProbeError("control labels need one value per row, as the task labels")
    if n_classes is None:
        n_classes = int(max(np.max(y_train), np.max(control_train))) + 1
    clusters = np.arange(len(y_test)) if clusters is None else np.asarray(clusters)
    zeros = np.zeros(len(y_test))
    made, keys = [], []
    for width in widths:
        for wd in weight_decays:
            gains = []
            for labels, truth in ((y_train, y_test), (control_train, control_test)):
                probe = MLPProbe(width, wd, lr=lr, steps=steps, seed=seed, device=device)
                pred = probe.fit(x_train, labels, n_classes).predict(x_test)
                gains.append(Outcomes("accuracy", (pred == truth).astype(float), zeros, clusters))
            name = f"mlp(width={width}, weight_decay={wd:g})"
            made.append(compare_outcomes(*gains, name, "control", level=level, seed=seed))
            keys.append((width, wd))
    made = holm_family(made)
    out = pd.DataFrame(
        [
            [w, wd, m.a_score, m.b_score, m.difference, m.low, m.high, m.p, m.p_holm, m.verdict]
            for (w, wd), m in zip(keys, made, strict=True)
        ],
        columns=COLUMNS,
    )
    out.attrs.update(level=level, steps=steps)
    return out


def mlp_probe(
    runner: Any,
    name: str,
    widths: Sequence[int] = (0, 16, 64),
    weight_decays: Sequence[float] = (1e-2,),
    *,
    train: ProbeDataset | None = None,
    test: ProbeDataset | None = None,
    lr: float = 1e-2,
    steps: int = 300,
    level: float = LEVEL,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """`capacity_sweep` at probe `name`'s site from the runner's cached features, with
    the runner's control task (or one fitted on `train` with `seed`), trained on the
    runner's probe device unless `device` says otherwise."""
    from .control_tasks import ControlTask

    _check_sweep(widths, weight_decays, lr, steps, level, seed)  # before any forward pass
    device = getattr(runner, "probe_device", None) if device is None else device
    cfg = probe_config(runner, name)
    train, test = train_test(runner, train, test)
    task = runner.control_task
    if task is None:
        task = ControlTask.fit(train, seed=seed, null_label=cfg.null_label)
    x, y, _ = rows(runner, cfg, train)
    xt, yt, texts = rows(runner, cfg, test)
    cy = scored_labels(cfg, task.relabel(train))[1]  # the same rows, control labels
    cyt = scored_labels(cfg, task.relabel(test))[1]
    return capacity_sweep(
        x, y, cy, xt, yt, cyt, texts,
        widths=widths, weight_decays=weight_decays, n_classes=len(cfg.classes),
        lr=lr, steps=steps, level=level, seed=seed, device=device,
    )  # fmt: skip
