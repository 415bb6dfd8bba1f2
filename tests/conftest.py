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

# `make test` runs pytest -n 2 --dist loadscope: each module is one unit of work for a
# worker (module-scoped fixtures, such as a JupyterLab server, are built once), and each
# class too; the notebook runs on the real model (minutes each) are classes of their own
# in tests/test_notebooks.py. Units go out in collection order, so the longest come
# first and the two workers end together; run without xdist, the order is the same.
LONGEST_FIRST = (
    "tests/test_notebooks.py::TestLessonWhichLayer",
    "tests/test_notebooks.py::TestLessonUse",
    "tests/test_notebooks.py::TestQuickstart",
    "tests/test_notebooks.py::TestLessonRemove",
    "tests/browser/test_jupyterlab.py",
)


def _rank(item: pytest.Item) -> int:
    hits = [i for i, unit in enumerate(LONGEST_FIRST) if item.nodeid.startswith(unit + "::")]
    return hits[0] if hits else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the other modules stay whole, in their order


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
