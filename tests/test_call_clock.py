"""The whole call's time left (`CallClock`) covers the control and baseline fits that
follow the probes: each is costed before it runs from the call's own measured stages and
refined from its own throughput as it runs. A fake clock drives a scripted fit whose
stages take known times, so the truth is known at every event and nothing real is timed."""

from __future__ import annotations

import re

import pytest

from lm_probe_widgets.core.engine.progress import CallClock

N_VAL, N_TRAIN, N_EVAL, BATCH, EPOCHS, PROBES = 60, 600, 200, 20, 4, 6
MAIN = [
    {"phase": "extract-val", "total": N_VAL, "unit": "examples"},
    {"phase": "extract-train", "total": N_TRAIN, "unit": "examples"},
    {"phase": "train", "total": N_TRAIN, "unit": "examples", "epochs": EPOCHS - 1},
    {"phase": "refine", "total": PROBES, "unit": "probes"},
    {"phase": "extract-eval", "total": N_EVAL, "unit": "examples"},
]
LATER = [
    {"phase": key, "total": None, "unit": "examples"}
    for key in ("control", "baseline-majority", "baseline-random_init", "baseline-tfidf")
]
ZERO = re.compile(r"(?<![0-9m])0s left")  # "0s left", not "10s left" or "1m00s left"
MODEL, TRAIN, CACHED, REFINE = 0.02, 0.005, 0.0005, 1.0  # seconds per example (probe)


def _stages(phase: str, detail: bool, *, model: float, slow: float = 1.0) -> list[tuple]:
    """(phase, detail, epoch, done, total, seconds) per batch event of one (sub-)fit whose
    passes cost `model` s per example and whose later epochs `slow` times the usual."""
    out = []

    def add(stage, epoch, total, per_unit, step):
        for done in range(step, total + 1, step):
            out.append((phase, stage if detail else None, epoch, done, total, per_unit * step))

    add("extract-val", 1, N_VAL, model, BATCH)
    add("extract-train", 1, N_TRAIN, model + TRAIN, BATCH)
    for epoch in range(2, EPOCHS + 1):
        add("train", epoch, N_TRAIN, TRAIN * slow, BATCH)
    add("refine", EPOCHS, PROBES, REFINE, 1)
    add("extract-eval", 0, N_EVAL, model, BATCH)
    return out


def _script(random_init_slow: float = 1.0) -> list[tuple]:
    """The call: the probes (passes through the model), the control probes (cache reads),
    the random-init baseline (a model of its own); majority and tfidf send no batches."""
    main = [(stage, None, *rest) for _, stage, *rest in _stages("main", True, model=MODEL)]
    return (
        main
        + _stages("control", True, model=CACHED)
        + _stages("baseline-random_init", True, model=MODEL, slow=random_init_slow)
    )


def _replay(script: list[tuple], num_epoch: int = EPOCHS):
    """Feed the events at their times; yield (event, clock, words, seconds, untimed, truth)."""
    call = CallClock()
    main = MAIN if num_epoch > 1 else [p for p in MAIN if p["phase"] != "train"]
    call.start(main + LATER, num_epoch, 0.0)
    t, total = 0.0, sum(e[-1] for e in script)
    for event in script:
        phase, detail, epoch, done, n, dt = event
        t += dt
        data = {"phase": phase, "epoch": epoch, "examples_done": done, "examples_total": n}
        if detail:
            data["detail"] = detail
        call.batch(data, t)
        seconds, untimed = call.left(t)
        yield event, call, call.words(t), seconds, untimed, total - t


def test_control_and_baselines_are_timed_before_they_run_and_nothing_reads_zero():
    """Once the probes' stages are measured, the time left covers the control probes and
    the random-init baseline (no phase "not timed yet"), within 15% of the truth; the
    words say "≈" (about) and never "0s" while work remains."""
    timed = []
    for (phase, detail, *_), _call, words, seconds, untimed, truth in _replay(_script()):
        assert not ZERO.search(words) and words != "", words
        if phase == "extract-eval" or phase in ("control", "baseline-random_init"):
            assert not untimed, (phase, detail, untimed)
            assert words.startswith("≈ ") or (words == "finishing" and truth < 1.5), words
            if truth > 5:
                timed.append((phase, detail, seconds, truth))
                assert abs(seconds - truth) <= 0.15 * truth, (phase, detail, seconds, truth)
    assert {p for p, *_ in timed} == {"extract-eval", "control", "baseline-random_init"}


def test_a_baseline_slower_than_its_estimate_is_refined_as_it_runs():
    """The random-init model's later epochs run 2.5x slower than the probes' did: the estimate made
    before it ran is low, and it comes within 15% of the truth once its training stage
    has run for a few seconds (from that stage's own throughput, not the prior)."""
    script = _script(random_init_slow=2.5)
    spent_in_train = 0.0
    before = None
    for (phase, detail, *_, dt), _call, _w, seconds, untimed, truth in _replay(script):
        if phase == "control" and before is None:
            before = (seconds, truth)
        if phase == "baseline-random_init" and detail == "train":
            spent_in_train += dt
            if spent_in_train >= 3.0 and truth > 5:
                assert not untimed
                assert abs(seconds - truth) <= 0.15 * truth, (seconds, truth)
    assert before is not None and before[0] < 0.85 * before[1]  # the prior was too low
    assert spent_in_train >= 3.0


def test_a_sub_fit_with_no_basis_is_named_and_the_bound_holds():
    """With one epoch the probes' first epoch ran inside their model pass, so the control
    fit's training cannot be costed before it runs: the words name it ("not timed yet:
    control") and the seconds stay a lower bound of the truth; the cheap baselines
    (no model) are never named."""
    script = [e for e in _script() if "train" not in e[:2]]
    seen, spent = False, 0.0
    for (phase, *_, dt), _call, words, seconds, untimed, truth in _replay(script, num_epoch=1):
        spent = spent + dt if phase == "extract-eval" else 0.0
        if spent > 1.5:  # its own pass timed (the meter's first second is over)
            assert untimed == ["control"], untimed
            assert words.endswith("(not timed yet: control)") or words.startswith("time left")
            assert seconds <= truth * 1.05
            seen = True
        assert "baseline-majority" not in untimed and "baseline-tfidf" not in untimed
    assert seen


def test_words_before_any_measure_and_after_the_end():
    call = CallClock()
    call.start(MAIN + LATER, EPOCHS, 0.0)
    words = call.words(0.0)
    assert words.startswith("time left: not known yet (") and "baselines" in words, words
    call.finish()
    assert call.words(1.0) == ""


@pytest.mark.parametrize("stop_at", ["control", "baseline-random_init"])
def test_a_fit_that_overruns_every_estimate_never_reads_zero(stop_at):
    """A stage slower than every measure says so ("not timed yet") rather than "0s"."""
    call = CallClock()
    call.start(MAIN + LATER, EPOCHS, 0.0)
    t = 0.0
    for phase, detail, epoch, done, n, dt in _script():
        t += dt
        data = {"phase": phase, "epoch": epoch, "examples_done": done, "examples_total": n}
        if detail:
            data["detail"] = detail
        call.batch(data, t)
        if phase == stop_at:
            break
    assert not ZERO.search(call.words(t + 1000.0))


def test_a_nested_fit_row_times_all_its_stages_not_only_the_running_one():
    """The dashboard's control row says the time left in the whole control fit (its
    training, final fit and test pass to come), not in the stage running now."""
    from lm_probe_widgets.core.engine import events as ev
    from lm_probe_widgets.widgets.progress import ProgressState

    clock = [0.0]
    state = ProgressState(lambda: clock[0])
    start = {"probes": [], "configs": [], "num_epoch": EPOCHS, "n_train": N_TRAIN}
    state.handle(ev.make_event(ev.FIT_STARTED, None, {**start, "phases": MAIN + LATER}))
    script = _script()
    rows = []
    for i, (phase, detail, epoch, done, n, dt) in enumerate(script):
        clock[0] += dt
        data = {"phase": phase, "epoch": epoch, "examples_done": done, "examples_total": n}
        state.handle(ev.make_event(ev.BATCH, None, {**data, "detail": detail} if detail else data))
        if phase == "control" and detail == "extract-train" and done == N_TRAIN // 2:
            truth = sum(e[-1] for e in script[i + 1 :] if e[0] == "control")
            rows.append((state.phases["control"]["eta"], truth, state.phases["control"]["text"]))
    ((eta, truth, text),) = rows
    assert abs(eta - truth) <= 0.15 * truth, (eta, truth)  # ~18 s, not the stage's 1.5 s
    assert "≈" in text and "left in this phase" in text, text


def test_a_resumed_call_with_nothing_measured_to_go_by_says_so():
    """`resume=True` after a Stop in the control fit: the probes' own stages do not run
    again, so the random-init baseline has nothing to be costed from; it is named as not
    timed yet, never counted as nothing left ("finishing", "≈")."""
    script = [e for e in _script() if e[0] != "main" and "train" not in e[:2]]
    script = [e for e in script if e[0] == "control"][-3:] + [
        e for e in script if e[0] == "baseline-random_init"
    ][:2]
    for (phase, *_), _call, words, _s, untimed, _truth in _replay(script):
        if phase == "control":
            assert "baseline-random_init" in untimed, untimed
            assert words.startswith(("≥ ", "time left: not known yet")), words
