"""Real-browser tests: headless Debian chromium driven by playwright.

Cheap layer, reusable by every widget test in this folder:

* ``widget_server`` (session): a loopback ``http.server`` on 127.0.0.1 with a free port.
  ``/harness.html`` is the test page; ``/static/<file>`` serves the widget assets from
  ``lm_probe_widgets.widgets._assets.asset_dir()`` -- the very files the widget classes
  ship (``static/`` in a wheel, ``js/`` in a checkout).
* ``widget_page`` (function): a fresh page with the harness loaded. It fails the test
  on any ``pageerror`` or console error, and saves a screenshot to
  ``test-artifacts/<test>.png`` when the test fails. Use it like::

      def test_bar(widget_page):
          w = widget_page.mount("progress", {"probes": [...]})   # imports /static/progress.js
          w.root.locator(".lpw-progress-bar").first.click()       # playwright Locator
          assert w.get("value") == 3            # current fake-model state, JSON
          assert ["value", 3] in w.sets()       # every model.set(key, value) by the widget
          assert w.saves() == 1                 # number of save_changes() calls
          w.kernel_set("value", 5)              # a kernel-side trait change (fires change:value)
          w.kernel_send({"type": "reset"})      # a custom msg from Python (msg:custom)
          assert w.sent() == [...]              # contents the widget passed to model.send()
          assert w.unmount() == 0               # cleanup removed every model listener

  ``mount`` also loads ``theme.css`` and ``<name>.css`` if present, calls the module's
  ``initialize`` (if any) then ``render({model, el})``; the default export or named
  exports both work. ``widget_page.page`` is the playwright ``Page``;
  ``widget_page.set_theme("dark")`` switches the page to JupyterLab-like dark variables.

Chromium is Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``); never run
``playwright install``. Without it these tests skip locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("LPW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
MISSING = (
    f"chromium not found at {CHROMIUM}; install it with `apt-get install -y chromium` "
    "(never `playwright install`)"
)


def _have_chromium() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [it for it in items if HERE in Path(str(it.path)).resolve().parents]
    for item in mine:
        item.add_marker(pytest.mark.browser)
    if not _have_chromium() and not os.environ.get("CI"):
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=MISSING))


@pytest.fixture(scope="session", autouse=True)
def _require_chromium() -> None:
    if not _have_chromium():  # only reached in CI: a missing browser must not pass quietly
        pytest.fail(MISSING + " -- required when CI is set", pytrace=False)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's chromium (pytest-playwright's own browsers are never installed)."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
        "headless": browser_type_launch_args.get("headless", True),
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_context_args,
        "accept_downloads": True,
        "viewport": {"width": 1100, "height": 800},
    }


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves only /harness.html and /static/<asset>; nothing else of the disk."""

    asset_dir: Path = HERE
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".css": "text/css",
        ".html": "text/html",
    }

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path in ("/", "/harness.html"):
            return str(HERE / "harness.html")
        m = re.fullmatch(r"/static/([A-Za-z0-9_.-]+)", path)
        if m and ".." not in m.group(1):
            return str(self.asset_dir / m.group(1))
        return str(HERE / "__missing__")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def widget_server() -> Any:
    """Base URL (``http://127.0.0.1:<port>``) of the loopback harness server."""
    from lm_probe_widgets.widgets._assets import asset_dir

    handler = type("Handler", (_Handler,), {"asset_dir": asset_dir()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Mounted:
    """One widget rendered in the harness, with its fake model."""

    def __init__(self, page: Any, index: int) -> None:
        self.page = page
        self.index = index
        self.root = page.locator(f'.lpw-mount[data-index="{index}"]')

    def _eval(self, body: str, arg: Any = None) -> Any:
        return self.page.evaluate(
            f"([i, arg]) => {{ const m = window.lpw.model(i); {body} }}", [self.index, arg]
        )

    def get(self, key: str) -> Any:
        return self._eval("return m.get(arg);", key)

    def state(self) -> dict[str, Any]:
        return self._eval("return m.state;")

    def sets(self) -> list[list[Any]]:
        return self._eval("return m.sets;")

    def saves(self) -> int:
        return self._eval("return m.saves;")

    def sent(self) -> list[Any]:
        return self._eval("return m.sent;")

    def kernel_set(self, key: str, value: Any) -> None:
        self._eval("m.kernelSet(arg[0], arg[1]);", [key, value])

    def kernel_send(self, content: Any) -> None:
        self._eval("m.kernelSend(arg);", content)

    def unmount(self) -> int:
        return self.page.evaluate("(i) => window.lpw.unmount(i)", self.index)


class WidgetPage:
    """The harness page plus collected errors; see the module docstring."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.goto(f"{base_url}/harness.html")
        page.wait_for_function("window.lpwReady === true")

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            where = (msg.location or {}).get("url", "")
            self.errors.append(f"console.error: {msg.text} {where}".rstrip())

    def mount(self, name: str, state: dict[str, Any] | None = None, **opts: Any) -> Mounted:
        state = json.loads(json.dumps(state or {}))  # JSON only, as over the widget wire
        index = self.page.evaluate("([n, s, o]) => window.lpw.mount(n, s, o)", [name, state, opts])
        return Mounted(self.page, index)

    def set_theme(self, theme: str) -> None:
        self.page.evaluate("(t) => { document.body.dataset.theme = t; }", theme)

    def assert_no_errors(self) -> None:
        assert not self.errors, "browser errors:\n" + "\n".join(self.errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_lpw_rep_{report.when}", report)


@pytest.fixture
def widget_page(page: Any, widget_server: str, request: pytest.FixtureRequest) -> Any:
    """A fresh harness page; fails on page errors, screenshots to test-artifacts/ on failure."""
    wp = WidgetPage(page, widget_server)
    yield wp
    rep = getattr(request.node, "_lpw_rep_call", None)
    if rep is None or rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception:  # a crashed page must not hide the real failure
            pass
    wp.assert_no_errors()
