"""The runner's `metrics` table: one row per probe, its held-out numbers, how its
training went, and the control and baseline columns beside it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..config import ProbeConfig
from ..engine.l2_note import l2_note
from ..engine.metrics import METRIC_COLUMNS, MetricsTable
from ..engine.plan import FitPlan
from ..engine.probe import LinearProbe
from ..engine.states import ProbeState
from .baselines import add_baseline_columns
from .mdl import MDL_COLUMNS


def metrics_table(
    configs: Sequence[ProbeConfig],
    probes: dict[str, LinearProbe],
    measured: dict[str, dict[str, Any]],
    *,
    mdl: pd.DataFrame | None,
    plan: FitPlan | None,
    control: Any,
    baselines: dict[str, Any],
    incomplete: dict[str, str],
) -> MetricsTable:
    """`measured`: held-out metrics by probe; `control`: the control runner or None;
    `incomplete`: the methods a Stop left unfinished (their columns stay blank)."""
    rows = []
    for cfg in configs:
        row: dict[str, Any] = {"probe": cfg.name}
        row.update({c: math.nan for c in METRIC_COLUMNS})
        row.update(measured.get(cfg.name, {}))
        row.update(record_columns(cfg, probes.get(cfg.name)))
        rows.append(row)
    df = pd.DataFrame(rows).set_index("probe")
    for col in MDL_COLUMNS:  # NaN until runner.mdl()
        df[col] = math.nan if mdl is None else mdl[col].reindex(df.index)
    if control is not None or "control" in incomplete:
        # selectivity: the task's score minus the control's (accuracy, or R² for
        # regression probes); blank when the control probes did not finish
        score = "r2" if "r2" in df and df["accuracy"].isna().all() else "accuracy"
        if "control" in incomplete:
            ctrl = pd.Series(math.nan, index=df.index)
        else:
            ctrl = control.metrics[score].reindex(df.index)
        df[f"control_{score}"] = ctrl
        df["selectivity"] = df[score] - ctrl
    names = list(dict.fromkeys([*(plan.baselines if plan else ()), *baselines]))
    shown = {n: None if f"baseline_{n}" in incomplete else baselines[n] for n in names}
    table = MetricsTable(add_baseline_columns(shown, df, configs))
    if incomplete:
        table.attrs["incomplete"] = incomplete
    return table


def record_columns(cfg: ProbeConfig, probe: LinearProbe | None) -> dict[str, Any]:
    rec = probe.record if probe is not None else None
    cols: dict[str, Any] = {
        "submodule": cfg.submodule,
        "kind": cfg.kind,  # the probe family (ProbeConfig.kind)
        "pooling": cfg.pooling,
        "state": str(rec.state) if rec else str(ProbeState.NOT_FITTED),
        "steps": rec.steps if rec else 0,
        "examples_seen": rec.examples_seen if rec else 0,
        "epochs": rec.epochs_done if rec else 0,
        "best_step": rec.best_step if rec else None,
        "val_loss": rec.val_loss if rec else math.nan,
        "l2": rec.best_l2 if rec else math.nan,
        "refined": rec.refined if rec else False,
        "l2_note": l2_note(cfg, rec),
        "stop_reason": rec.stop_reason if rec else None,
        # the first pass's prequential bits under Adam: they depend on its learning rate
        # and batch size; the MDL of Voita & Titov is `runner.mdl()` (core.methods.mdl)
        "online_adam_code_bits": (rec.code_length_bits if rec and rec.uniform_bits else math.nan),
        "online_adam_compression": (
            rec.uniform_bits / rec.code_length_bits
            if rec and rec.code_length_bits > 0
            else math.nan
        ),
    }
    return cols
