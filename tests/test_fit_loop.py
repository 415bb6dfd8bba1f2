"""The fit loop's narrow inputs (issue 30): a FitLoop runs from a plan, a feature
reader, a cache, an event bus and a public StopFlag, never the runner's own fields;
FitSettings are checked once, on construction, and the plan reads them through."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeError, ProbeRunner
from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.core.engine.fit import FitLoop, FitResult
from lm_probe_widgets.core.engine.plan import build_plan
from lm_probe_widgets.core.engine.settings import FitSettings
from lm_probe_widgets.core.engine.states import FitOutcome, ProbeState
from lm_probe_widgets.core.engine.stop import StopFlag

H0 = "transformer.h.0.output"


def test_fit_settings_are_checked_on_construction_and_frozen():
    with pytest.raises(ProbeError, match="num_epoch must be an integer >= 1"):
        FitSettings(num_epoch=0)
    with pytest.raises(ProbeError, match="unknown baselines"):
        FitSettings(baselines=("majority", "nope"))
    settings = FitSettings(num_epoch=3, baselines="majority", control=1)
    assert settings.baselines == ("majority",) and settings.control is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.num_epoch = 5
    with pytest.raises(ProbeError, match="batch_size must be an integer >= 1"):
        dataclasses.replace(settings, batch_size=0)  # a changed copy is checked again
    alone = settings.alone()
    assert (alone.control, alone.baselines, alone.num_epoch) == (False, (), 3)


def test_a_fit_loop_runs_on_its_narrow_inputs_and_stops_on_its_flag(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(48, seed=2)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25)
    cfg = ProbeConfig(H0, [0, 1], validation="none", refine=False)
    reader = ProbeRunner(model, [cfg])  # a feature reader here: its results stay untouched
    settings = FitSettings(num_epoch=2, batch_size=8, bootstrap=0)
    plan = build_plan(model, [cfg], train, test, settings)
    assert (plan.num_epoch, plan.batch_size, plan.settings) == (2, 8, settings)

    bus, seen = ev.EventBus(), []
    stop = StopFlag(bus)

    def on_event(e):
        seen.append(e.kind)
        if e.kind == ev.BATCH and e.data["phase"] == "extract-train":
            stop.request()  # what the Stop button does, from a display's poll

    bus.subscribe(on_event)
    result = FitResult(plan=plan)
    loop = FitLoop(
        plan,
        result,
        reader=reader,
        cache=reader.cache,
        bus=bus,
        stop=stop,
        device=torch.device("cpu"),
    )
    assert loop.run() == FitOutcome.STOPPED
    probe = result.probes[cfg.name]
    assert probe.state == ProbeState.STOPPED and result.cursor.step == 1
    assert ev.STOPPED in seen and cfg.name in result.metrics  # a Stop still evaluates
    assert reader.probes == {} and reader.last_result is not result

    stop.clear()  # resume with nothing asked: the loop finishes the plan
    assert not stop.requested and not stop.interrupted
    bus.interrupted = True  # a display that relayed Ctrl-C counts as an interrupt
    assert stop.interrupted
    stop.clear()
    resumed = result.resumed(plan)
    loop = FitLoop(
        plan,
        resumed,
        reader=reader,
        cache=reader.cache,
        bus=ev.EventBus(),
        stop=stop,
        device=torch.device("cpu"),
    )
    assert loop.run() == FitOutcome.COMPLETED
    assert resumed.cursor.training_done and resumed.probes[cfg.name].record.epochs_done == 2
