"""The wheel from this checkout installs into an empty venv and imports without torch."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from patience import PATIENCE_S

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = list(out.glob("lm_probe_widgets-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "lm_probe_widgets/__init__.py" in names
    assert "lm_probe_widgets/cli/__init__.py" in names
    assert "lm_probe_widgets/core/io/loading.py" in names
    # core's subpackages ship whole (hatch takes every file under lm_probe_widgets/)
    for sub in ("engine", "methods", "io"):
        assert f"lm_probe_widgets/core/{sub}/__init__.py" in names, sub
    source = ROOT / "lm_probe_widgets"
    modules = {p.relative_to(ROOT).as_posix() for p in source.rglob("*.py")}
    assert not {m for m in modules if "__pycache__" not in m} - set(names)
    assert not [n for n in names if n.startswith(("tests/", "js/")) or "__pycache__" in n]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert (
        "lm-probe = lm_probe_widgets.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    # the built front end ships as package data (the widgets load it from static/):
    # every file of the committed build, and nothing else there
    built = sorted(p.name for p in (source / "static").iterdir())
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("lm_probe_widgets/static/"))
    assert shipped == built
    # the one theme, the repr styles and a bundled widget among them
    assert {"theme.css", "repr.css", "table.js"} <= set(shipped)


def test_wheel_installs_into_empty_venv_and_imports(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # A light import: no torch, numpy or nnsight installed in this venv at all.
    probe = (
        "import sys, lm_probe_widgets as m; "
        "from lm_probe_widgets.display.assets import asset_dir; "
        "from lm_probe_widgets.display.html import CSS; "
        "assert asset_dir().name == 'static' and '.lpw-repr' in CSS, asset_dir(); "
        "assert 'torch' not in sys.modules; print(m.__version__, m.__file__)"
    )
    done = subprocess.run(
        [str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=PATIENCE_S
    )
    assert done.returncode == 0, done.stderr
    assert str(env_dir) in done.stdout  # imported from the venv, not from the checkout
    done = subprocess.run(
        [str(env_dir / "bin" / "lm-probe"), "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0 and "lm-probe" in done.stdout, done.stderr
