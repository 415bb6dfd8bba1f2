"""Shared fixtures: tiny in-process models and a small learnable text task."""

from __future__ import annotations

import os

# `make test` runs two pytest workers on a 2-core machine (pytest -n 2): one torch thread
# each, set before torch is imported, so they do not fight over the cores (and kernels and
# subprocesses the tests start inherit it). A lone `pytest` keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings
from synthetic import sentiment_texts

from lm_probe_widgets.core.io.tiny import tiny_model

# The persistent feature store is on by default for users; the suite counts forward
# passes and shares one deterministic tiny model, so its tests opt in explicitly
# (tests/test_store*.py pass store=... or set this to 1 in their subprocesses).
os.environ.setdefault("LM_PROBE_WIDGETS_STORE", "0")

# Property tests run under the same rule as every other test: no clock. hypothesis's
# default 200 ms deadline and its too-slow health check time each example, which on a
# loaded machine fails a correct test; a test's own @settings may still narrow this.
settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("suite")

# The longest tests first, each a unit of its own, so that two workers end together: the
# notebooks on the real model take minutes each, the rest seconds. Every other test goes
# with its module (one unit: module-scoped fixtures such as a JupyterLab server are built
# once). Run without xdist, the order is the same and the groups mean nothing.
LONGEST_FIRST = ("tests/test_notebooks.py", "tests/browser/test_jupyterlab.py")


def _unit(item: pytest.Item) -> tuple[int, str]:
    module = item.nodeid.split("::")[0]
    rank = LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)
    own = module == LONGEST_FIRST[0] and item.get_closest_marker("slow") is not None
    return rank, f"nb-{item.name}" if own else module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_unit(item)[1]))
    items.sort(key=lambda item: _unit(item)[0])  # stable: modules stay whole, in order


@pytest.fixture(scope="session")
def tiny():
    """(nnsight GPT-2 model, tokenizer): 3 layers, width 32, random init."""
    return tiny_model("gpt2")


@pytest.fixture(scope="session")
def tiny_llama():
    return tiny_model("llama")


@pytest.fixture(scope="session")
def tiny_bert():
    return tiny_model("bert")


@pytest.fixture(scope="session")
def sentiment():
    return sentiment_texts()
