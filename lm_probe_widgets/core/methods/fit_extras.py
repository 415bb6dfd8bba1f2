"""Control probes and baselines, fitted from the same plan as the probes beside them.

`fit_extras` runs once the probes' own fit has completed; `unfinished_extras` says
which of them a Stop or Ctrl-C left unfinished. The runner hands in two narrow
hooks rather than itself: `sibling` (a runner for other configs or another model,
sharing the cache when asked) and `fit_sub` (run a plan on such a runner as a phase
of this fit, undone with it if the fit fails).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ProbeConfig
from ..engine import events as ev
from ..engine.fit import FitResult
from ..engine.plan import FitPlan
from ..engine.states import FitOutcome, RunnerState
from .baselines import MajorityBaseline, input_embedding_path, random_init_model
from .confounds import CONFOUNDS
from .control_tasks import ControlTask, control_null_label

Sibling = Callable[[Any, Sequence[ProbeConfig], bool], Any]
# fit_sub(runner, plan, phase, fingerprint): fingerprint the runner's model first
FitSub = Callable[[Any, FitPlan, str, bool], str]


class Relay:
    """Passes a control or baseline fit's progress to the main display as one phase."""

    def __init__(self, bus: Any, phase: str) -> None:
        self.bus, self.phase = bus, phase

    def publish(self, kind: str, probe: str | None = None, /, **data: Any) -> None:
        if kind == ev.BATCH:
            self.bus.publish(kind, **{**data, "detail": data.get("phase"), "phase": self.phase})


def fit_extras(
    plan: FitPlan,
    result: FitResult,
    resume: bool,
    *,
    model: Any,
    sibling: Sibling,
    fit_sub: FitSub,
) -> str:
    """Control probes and baselines of `plan` into `result`; how they ended."""
    if plan.control:
        twin, task = result.control if resume and result.control else (None, None)
        if twin is None:
            null = control_null_label(plan.configs)
            regression = plan.configs[0].task == "regression"  # one task (plan)
            task = ControlTask.fit(
                plan.train, seed=plan.seed, null_label=null, regression=regression
            )
            twin = sibling(model, plan.configs, True)
        result.control = (twin, task)
        outcome = fit_sub(twin, plan.relabelled(task.relabel), "control", False)
        if outcome != FitOutcome.COMPLETED:
            return outcome
    for name in plan.baselines:
        if name == "majority" or name in CONFOUNDS:  # no model involved
            base = MajorityBaseline(plan) if name == "majority" else CONFOUNDS[name](plan)
            base.compute_metrics(plan.eval_set)
            result.baselines[name] = base
            continue
        base = result.baselines.get(name) if resume else None
        if base is None:
            if name == "embeddings":
                sub = input_embedding_path(model) + ".output"
                configs = [dataclasses.replace(c, submodule=sub) for c in plan.configs]
                base = sibling(model, configs, True)
            else:  # seed + 1: never the init of a model built with the fit seed (tiny models)
                base = sibling(random_init_model(model, plan.seed + 1), list(plan.configs), False)
            result.baselines[name] = base
        outcome = fit_sub(base, plan.for_configs(base.configs), f"baseline-{name}", True)
        if outcome != FitOutcome.COMPLETED:
            return outcome
    return FitOutcome.COMPLETED


def unfinished_extras(
    plan: FitPlan | None, control: Any, baselines: dict[str, Any]
) -> dict[str, str]:
    """The control probes and baselines `plan` asked for that did not finish:
    {column prefix: what happened}."""
    if plan is None:
        return {}
    planned = (["control"] if plan.control else []) + [f"baseline_{n}" for n in plan.baselines]
    out = {}
    for key in planned:
        sub = control if key == "control" else baselines.get(key[len("baseline_") :])
        if sub is None:
            out[key] = "not run"
        elif str(getattr(sub, "state", RunnerState.FITTED)) != str(RunnerState.FITTED):
            out[key] = f"{sub.state} during its fit"
    return out
