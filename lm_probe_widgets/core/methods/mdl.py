"""Minimum description length of the labels given the features: the block-wise
online code of Voita & Titov (2020, "Information-Theoretic Probing with Minimum
Description Length").

The training examples are put in a seeded random order and cut at their fractions
0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50 and 100 % (`FRACTIONS`; with few
examples, fractions that round to the same count merge). The first block is sent
with the uniform code (log2 K bits a label); every later block is sent with a probe
trained to convergence on all the blocks before it. The code length is the sum, in
bits; compression = uniform code of all labels / code length (1: nothing learned).

Each block's probe is the library's final fit (L-BFGS to a gradient tolerance,
`core.engine.final_fit.held_out_bits`) on the probe's standardised features, all
blocks and strengths side by side: the code depends on the data and the probe
family, not on a learning rate or a batch size. The L2 strength is chosen
prequentially: block i+1 is sent with the strength (from `L2_GRID`) that sent block
i shortest, a choice the receiver can repeat from what it has already decoded (the
first coded block uses the grid's middle strength). One strength for all blocks
would not do: the strength right for 100 examples makes a probe fitted on 1 to 6 of
them confidently wrong. It reads cached
features; the model does not run. The first-pass "online Adam" bits the fit reports
(`online_adam_code_bits`) are another quantity: they measure the optimiser too.

`compression_low/high` is a percentile-bootstrap interval over the examples (whole
texts for token-level probes, the rule of `core.engine.uncertainty.unit_draws`):
each example keeps the bits its block's probe gave it, and a resample's compression
is its uniform code over its code length. It says how precisely these examples pin
the code down given the block probes; refitting the probes on each resample (and a
new data order) would also count the probes' own variability, at 1000 times the cost.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..engine.data import ProbeDataset
from ..engine.final_fit import held_out_bits
from ..engine.plan import row_texts, scored_labels
from ..errors import ProbeError

if TYPE_CHECKING:
    from ..runner import ProbeRunner

FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
MDL_COLUMNS = ["mdl_bits", "uniform_bits", "compression", "compression_low", "compression_high"]
#: Bootstrap resamples of the compression interval, and its level.
N_BOOT = 1000
LEVEL = 0.95
L2_GRID = tuple(float(v) for v in np.logspace(-4, 2, 7))


def block_ends(n: int) -> np.ndarray:
    """Where the blocks of `n` examples end: round(fraction x n), at least 1, distinct."""
    if n < 2:
        raise ProbeError(f"an online code needs at least 2 examples, got {n}")
    return np.unique(np.clip(np.round(np.asarray(FRACTIONS) * n).astype(int), 1, n))


def online_code(
    x: np.ndarray,
    y_idx: np.ndarray,
    n_classes: int,
    *,
    mu: np.ndarray,
    inv: np.ndarray,
    seed: int = 0,
    tol: float = 1e-4,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    clusters: np.ndarray | None = None,
) -> dict[str, float]:
    """Block-wise online code length of labels `y_idx` given features `x` (bits), the
    uniform code and their ratio; `compression_low/high`: its percentile-bootstrap
    interval over the examples (whole texts with `clusters`), each keeping the bits
    its block's probe gave it (NaN when `n_boot` is 0)."""
    from ..engine.uncertainty import unit_draws

    if not 0 < level < 1:
        raise ProbeError(f"level must be in (0, 1), got {level}")
    if n_boot < 0:
        raise ProbeError("n_boot must be >= 0 (0 turns the interval off)")
    n = len(y_idx)
    order = np.random.default_rng(seed).permutation(n)
    ends = block_ends(n)
    blocks = [(order[:a], order[a:b]) for a, b in zip(ends[:-1], ends[1:], strict=True)]
    per_label = math.log2(n_classes)
    row_bits = np.full(n, per_label)  # the first block: the uniform code
    if blocks:
        rows = held_out_bits(x, y_idx, n_classes, L2_GRID, mu, inv, blocks, tol=tol, per_row=True)
        table = rows.sum(0)  # [strengths, blocks]
        chosen = [len(L2_GRID) // 2, *np.argmin(table[:, :-1], 0)]  # by the block before
        for j, (c, (_, coded)) in enumerate(zip(chosen, blocks, strict=True)):
            row_bits[coded] = rows[coded, c, j]
    bits, uniform = float(row_bits.sum()), n * per_label
    low = high = math.nan
    if n_boot:
        counts, unit = unit_draws(n, clusters, n_boot, np.random.default_rng(seed))
        resampled = counts @ np.bincount(unit, row_bits, minlength=counts.shape[1])
        size = counts @ np.bincount(unit, minlength=counts.shape[1])
        tail = 100 * (1 - level) / 2
        low, high = map(float, np.percentile(size * per_label / resampled, [tail, 100 - tail]))
    return {
        "mdl_bits": bits,
        "uniform_bits": uniform,
        "compression": uniform / bits,
        "compression_low": low,
        "compression_high": high,
    }


def mdl_table(
    runner: ProbeRunner, dataset: ProbeDataset | None = None, seed: int = 0
) -> pd.DataFrame:
    """`online_code` of every fitted classification probe on `dataset` (default: the
    last fit's training data, validation part included), one row per probe;
    regression probes get NaN (a code for continuous targets needs a quantisation)."""
    plan = runner.last_plan
    if dataset is None:
        if plan is None:
            raise ProbeError("mdl needs a fit first, or dataset=")
        from .validity import _union

        dataset = plan.train if plan.val is None else _union(plan.train, plan.val)
    rows: dict[str, dict[str, Any]] = {}
    fitted = [c for c in runner.configs if c.name in runner.probes]
    # MDL is the linear read-out's code length: regression and family probes get NaN
    classify = [c for c in fitted if c.task != "regression" and _linear(c)]
    feats = runner.features(dataset, [c.feature_key for c in classify]) if classify else {}
    for cfg in fitted:
        if cfg not in classify:
            rows[cfg.name] = {c: math.nan for c in MDL_COLUMNS}
            continue
        probe = runner.probes[cfg.name]
        keep, y_idx = scored_labels(cfg, dataset)
        x = np.asarray(feats[cfg.feature_key])
        if len(keep) != len(x):
            x = x[keep]
        mu, inv = probe._scaler_arrays()
        texts = row_texts(cfg, dataset) if cfg.token_level else None  # resample whole texts
        rows[cfg.name] = online_code(
            x, y_idx, len(cfg.classes), mu=mu, inv=inv, seed=seed, clusters=texts
        )
    return pd.DataFrame.from_dict(rows, orient="index", columns=MDL_COLUMNS).rename_axis("probe")


def _linear(cfg: Any) -> bool:
    return getattr(cfg, "kind", "linear") == "linear"
