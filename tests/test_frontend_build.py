"""The committed front-end bundle in lm_probe_widgets/static/ is what js/ builds to."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest
from patience import PATIENCE_S

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "lm_probe_widgets" / "static"
WIDGETS = ["monitor", "picker", "playground", "progress", "table"]


def test_committed_bundle_is_a_fresh_build(tmp_path):
    """Edit js/ without `npm run build` and this fails: the wheel would ship stale code."""
    node = shutil.which("node")
    esbuild = ROOT / "node_modules" / "esbuild"
    assert node and esbuild.is_dir(), "needs Node and `npm ci` (make test runs both)"
    out = tmp_path / "static"
    done = subprocess.run(
        [node, "build.mjs", "--outdir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = sorted(p.name for p in out.iterdir())
    assert built == sorted(p.name for p in STATIC.iterdir()), "run `npm run build`"
    _, mismatch, errors = filecmp.cmpfiles(out, STATIC, built, shallow=False)
    assert not mismatch and not errors, f"stale in static/: {mismatch + errors}; npm run build"


def test_widget_modules_are_self_contained_bundles():
    """anywidget loads each module from a blob URL: no import may be left in it."""
    from lm_probe_widgets.widgets._assets import esm_source

    sources = sorted(p.stem for p in (ROOT / "js").glob("*.js") if p.stem != "shared")
    assert sources == WIDGETS
    for name in WIDGETS:
        assert 'from "./shared.js"' in (ROOT / "js" / f"{name}.js").read_text()
        source = esm_source(name)
        assert not [ln for ln in source.splitlines() if ln.lstrip().startswith("import ")], name
        assert source.count("function h(") == 1, name  # shared.js's helper, bundled once
        assert "export default" in source or "as default" in source, name


def test_unbundled_module_is_refused_with_the_fix(tmp_path, monkeypatch):
    from lm_probe_widgets.display import assets
    from lm_probe_widgets.widgets._assets import esm_source

    (tmp_path / "theme.css").write_text(":root {}\n")
    (tmp_path / "w.js").write_text('import { h } from "./shared.js";\nexport default {};\n')
    monkeypatch.setenv("LPW_ASSET_DIR", str(tmp_path))
    assets.asset_dir.cache_clear()
    assets.read_asset.cache_clear()
    try:
        with pytest.raises(ValueError, match="npm run build"):
            esm_source("w")
        with pytest.raises(FileNotFoundError, match="npm ci"):
            esm_source("missing")
    finally:
        monkeypatch.delenv("LPW_ASSET_DIR")
        assets.asset_dir.cache_clear()
        assets.read_asset.cache_clear()
