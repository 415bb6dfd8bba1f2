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

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import is_int
from ..engine.data import ProbeDataset
from ..engine.plan import scored_labels
from ..errors import ProbeError
from .adamw import AdamW
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


class MLPProbe:
    """standardise -> Linear(d, width) -> ReLU -> Linear(width, classes) (width 0:
    one Linear, a logistic probe), trained full batch with AdamW."""

    def __init__(
        self,
        width: int = 64,
        weight_decay: float = 1e-2,
        *,
        lr: float = 1e-2,
        steps: int = 300,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        for key, value, low in (("width", width, 0), ("steps", steps, 1), ("seed", seed, 0)):
            if not is_int(value) or value < low:
                raise ProbeError(f"{key} must be an integer >= {low}, got {value!r}")
        if not weight_decay >= 0 or not lr > 0:
            raise ProbeError(f"weight_decay must be >= 0 and lr > 0, got {weight_decay}, {lr}")
        self.width, self.weight_decay, self.lr = int(width), float(weight_decay), float(lr)
        self.steps, self.seed = int(steps), int(seed)
        self.device = torch.device(device or "cpu")
        self.net: torch.nn.Module | None = None
        self.mu = self.sd = np.zeros(0)

    def _build(self, d: int, k: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.width == 0:
                net: torch.nn.Module = torch.nn.Linear(d, k)
            else:
                net = torch.nn.Sequential(
                    torch.nn.Linear(d, self.width), torch.nn.ReLU(), torch.nn.Linear(self.width, k)
                )
        return net.to(self.device)

    def _inputs(self, x: np.ndarray) -> torch.Tensor:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mu):
            raise ProbeError(f"features must be [rows, {len(self.mu)}], got {x.shape}")
        return torch.as_tensor((x - self.mu) / self.sd, dtype=torch.float32, device=self.device)

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int | None = None) -> MLPProbe:
        """Fit on features `x` [rows, d] and class indices `y`; on bad input nothing
        changes (the fitted state is replaced only once training has finished)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ProbeError(
                f"need features [rows, d] and one label a row, got {x.shape}, {y.shape}"
            )
        if y.dtype.kind not in "iu" or (y < 0).any():
            raise ProbeError("labels must be class indices 0, 1, ...")
        k = int(y.max()) + 1 if n_classes is None else int(n_classes)
        if k < 2 or y.max() >= k:
            raise ProbeError(f"need at least two classes and labels below n_classes={k}")
        if not np.isfinite(x).all():
            raise ProbeError("features contain NaN or inf")
        mu, sd = x.mean(0), x.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        net = self._build(x.shape[1], k)
        xs = torch.as_tensor((x - mu) / sd, dtype=torch.float32, device=self.device)
        yt = torch.as_tensor(y, dtype=torch.long, device=self.device)
        opt = AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xs), yt).backward()
            opt.step()
        self.net, self.mu, self.sd = net.eval(), mu, sd
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise ProbeError("this MLP probe is not fitted")
        with torch.no_grad():
            return torch.softmax(self.net(self._inputs(x)), -1).double().cpu().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    def save(self, path: str | Path) -> None:
        """One safetensors file: the weights and scaler as arrays, the settings as
        JSON metadata (loading runs no code)."""
        from safetensors.numpy import save_file

        if self.net is None:
            raise ProbeError("this MLP probe is not fitted: nothing to save")
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        arrays.update(mu=self.mu, sd=self.sd)
        settings = {"width": self.width, "weight_decay": self.weight_decay, "lr": self.lr}
        settings.update(steps=self.steps, seed=self.seed)
        save_file(arrays, str(path), metadata={"mlp_probe": json.dumps(settings)})

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> MLPProbe:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = (f.metadata() or {}).get("mlp_probe")
            if meta is None:
                raise ProbeError(f"{str(path)!r} is not a saved MLP probe")
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        probe = cls(**json.loads(meta), device=device)
        last = arrays["net.weight"] if probe.width == 0 else arrays["net.2.weight"]
        net = probe._build(len(arrays["mu"]), last.shape[0])
        net.load_state_dict(
            {k[4:]: torch.as_tensor(v) for k, v in arrays.items() if k[:4] == "net."}
        )
        probe.net, probe.mu, probe.sd = net.eval(), arrays["mu"], arrays["sd"]
        return probe

    def __repr__(self) -> str:
        state = "fitted" if self.net is not None else "not fitted"
        return (
            f"MLPProbe(width={self.width}, weight_decay={self.weight_decay}, "
            f"steps={self.steps}, {state})"
        )


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
