"""One event vocabulary, one reducer, one home for state names.

Typed events reject facts they do not have; the console meter, the progress widget
and the monitor read one reducer, so they agree on every probe's and phase's state
whatever the events; the front end's state names are the Python enums'; no module
compares against a bare state string."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.core.engine.progress import ConsoleProgress
from lm_probe_widgets.core.engine.states import FitOutcome, LiveState, ProbeState, js_state_names
from lm_probe_widgets.widgets.monitor import MonitorState
from lm_probe_widgets.widgets.progress import ProgressState

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("a", "b", "c")


def test_an_event_is_its_plain_form_and_back():
    for cls in ev.KINDS.values():
        e = cls("p") if cls is not ev.FitStarted else cls(probes=["p"], max_steps={"p": 3})
        assert ev.make_event(e.kind, e.probe, e.data) == e
        assert "probe" not in e.data


def test_a_misspelled_or_unknown_event_fails_where_it_is_made():
    bus = ev.EventBus()
    seen = []
    bus.subscribe(seen.append)
    with pytest.raises(ValueError, match="no field"):
        bus.publish(ev.STEP, "a", stepp=1)
    with pytest.raises(ValueError, match="unknown event kind"):
        bus.publish("stepped", "a")
    assert seen == []  # nothing reached a display
    bus.publish(ev.STEP, "a", step=1)
    assert seen == [ev.Step("a", step=1)]


_PROBE_EVENTS = st.one_of(
    st.builds(lambda n, s: ev.Step(n, step=s), st.sampled_from(NAMES), st.integers(1, 9)),
    st.builds(
        lambda n, s: ev.Evaluated(n, step=s, val_loss=0.5, best_val_loss=0.5, best_step=s),
        st.sampled_from(NAMES),
        st.integers(1, 9),
    ),
    st.builds(
        lambda n, state: ev.ProbeFinished(n, state=state.value, reason="r", steps=4),
        st.sampled_from(NAMES),
        st.sampled_from([ProbeState.FINISHED, ProbeState.EARLY_STOPPED]),
    ),
    st.builds(lambda n: ev.Error(n, message="boom"), st.sampled_from(NAMES)),
    st.builds(
        lambda p, d: ev.Batch(phase=p, examples_done=d, examples_total=9),
        st.sampled_from(["extract-val", "extract-train", "refine"]),
        st.integers(0, 9),
    ),
)


@given(
    events=st.lists(_PROBE_EVENTS, max_size=12),
    outcome=st.sampled_from(list(FitOutcome)),
)
def test_the_three_displays_agree_and_no_probe_runs_past_the_fit(events, outcome):
    console = ConsoleProgress(stream=io.StringIO())
    progress, monitor = ProgressState(lambda: 0.0), MonitorState()
    started = ev.FitStarted(probes=list(NAMES), max_steps=dict.fromkeys(NAMES, 9))
    for e in [started, *events, ev.FitFinished(reason=outcome.value)]:
        console(e)
        progress.handle(e)
        monitor.handle(e)
    shown = {p["name"]: p["state"] for p in progress.probe_list()}
    assert shown == {m["name"]: m["state"] for m in monitor.meta_list()}
    assert shown == {n: p.state for n, p in console.tracker.probes.items()}
    ended_by_fit = {
        FitOutcome.ERROR: FitOutcome.ERROR,
        FitOutcome.INTERRUPTED: ProbeState.INTERRUPTED,
    }.get(outcome, ProbeState.STOPPED)
    for name in NAMES:  # a probe's last end event holds; the fit ends the rest
        own = [e for e in events if e.probe == name and isinstance(e, ev.ProbeFinished | ev.Error)]
        want = ended_by_fit
        if own:
            want = own[-1].state if isinstance(own[-1], ev.ProbeFinished) else FitOutcome.ERROR
        assert shown[name] == want
    running = {LiveState.RUNNING.value}
    assert not running & {ph["state"] for ph in progress.phase_list()}
    assert progress.fit["state"] == monitor.outcome == outcome.value


def test_the_front_end_takes_its_state_names_from_the_python_enums():
    text = (ROOT / "js" / "shared.js").read_text()
    block = re.search(r"export const STATES = Object\.freeze\(\{(.*?)\}\);", text, re.S)
    assert block, "js/shared.js must export STATES"
    js = dict(re.findall(r'(\w+):\s*"([^"]*)"', block.group(1)))
    assert js == js_state_names()


def test_no_module_compares_against_a_bare_state_string():
    words = "|".join(re.escape(v) for v in js_state_names().values())
    listed = r"""(?:["'][^"']*["']\s*,\s*)*"""  # earlier items of a tuple or set
    compare = re.compile(rf"""(?:[=!]==?|\bin)\s*[(\[{{]?\s*{listed}["']({words})["']""")
    found = []
    for folder, pattern in (("lm_probe_widgets", "*.py"), ("js", "*.js")):
        for path in sorted((ROOT / folder).rglob(pattern)):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if compare.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, "compare with core.engine.states / js STATES instead:\n" + "\n".join(found)
