"""The live dashboard `fit_probes` shows in a notebook: progress bars above the
early-stopping monitor, with a Stop button that works while the cell runs.

Why a poller: `fit_probes` blocks the cell like any function, and the kernel
handles browser-to-kernel widget messages (the Stop click) only between cells.
The runner calls `Dashboard.poll()` between batches and training steps, in the
fitting thread; `KernelPoller` then takes the messages queued for the main shell
and handles the widget (comm) ones on the spot, the way `jupyter-ui-poll` does for
older kernels. Anything else (e.g. the next cell's execute_request under "Run
all") is handed back to the kernel's loop in arrival order, to run after the
current cell. Fitting stays in the cell's own thread, so traces on the model stay
serialised and `display()` is never called from a thread.

`jupyter-ui-poll` itself is not used: its 1.1 release calls
`kernel.do_one_iteration()`, which ipykernel 7 removed (it quietly does nothing
there), and it needs execute_request interception that ipykernel 7's
shell-channel thread makes unnecessary.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import ipywidgets

from ..core.engine import events as ev
from .monitor import EarlyStoppingMonitor
from .progress import ProbeProgress

COMM_MSG_TYPES = ("comm_msg", "comm_open", "comm_close")


def current_kernel() -> Any:
    """The running ipykernel kernel, or None (plain Python, terminal IPython)."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


class KernelPoller:
    """Handle widget messages that arrived while the current cell runs (ipykernel >= 7).

    `poll()` is cheap to call often: it does real work at most every `interval`
    seconds, and only in the thread the kernel runs cells in.
    """

    def __init__(self, kernel: Any = None, interval: float = 0.1) -> None:
        self.kernel = kernel if kernel is not None else current_kernel()
        self.interval = interval
        self.handled = 0
        self.deferred = 0
        self._last = 0.0
        self._socket = None
        self._thread: threading.Thread | None = None
        self.reason = ""
        k = self.kernel
        sct = getattr(k, "shell_channel_thread", None) if k is not None else None
        manager = getattr(sct, "manager", None)
        pair = getattr(manager, "_shell_channel_to_main", None)
        if k is None:
            self.reason = "no Jupyter kernel: nothing to poll"
        elif pair is None or not hasattr(k, "shell_main"):
            self.reason = (
                "the Stop button needs ipykernel >= 7 while a cell runs; interrupt the "
                "kernel instead (probes keep their best weights)"
            )
        else:
            self._socket = pair.to_socket
            self._thread = getattr(manager, "_parent_thread", None) or threading.main_thread()

    @property
    def supported(self) -> bool:
        return self._socket is not None

    def poll(self, force: bool = False) -> int:
        """Handle queued widget messages now; returns how many were handled."""
        if self._socket is None or threading.current_thread() is not self._thread:
            return 0
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return 0
        self._last = now
        import zmq

        handled = 0
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            except zmq.ZMQError:  # socket closed: the kernel is shutting down
                self._socket = None
                break
            if self._dispatch_comm(frames):
                handled += 1
            else:
                # Not ours to run now: queue it on the kernel's loop, in order, to be
                # handled exactly as if it had been read after this cell.
                self.kernel.io_loop.add_callback(self.kernel.shell_main, None, frames)
                self.deferred += 1
        self.handled += handled
        return handled

    def _dispatch_comm(self, frames: list[Any]) -> bool:
        k = self.kernel
        session = k.session
        idents, rest = session.feed_identities(frames, copy=False)
        header = session.deserialize(rest, content=False, copy=False)["header"]
        msg_type = header.get("msg_type")
        if msg_type not in COMM_MSG_TYPES:
            return False
        msg = session.deserialize(rest, content=True, copy=False)
        handler = k.shell_handlers.get(msg_type)
        if handler is None:
            return True
        stream = k.shell_channel_thread.manager.get_subshell_to_shell_channel_socket(None)
        # The parent stays the running cell's, so anything a handler prints or
        # updates is attributed to that cell (as jupyter-ui-poll does).
        try:
            result = handler(stream, idents, msg)
            if hasattr(result, "__await__"):
                k.io_loop.add_callback(lambda: result)
        except Exception:  # a broken handler must not break the fit
            k.log.error("widget message handler failed during fit", exc_info=True)
        return True


class Dashboard:
    """Progress bars + early-stopping monitor for one `fit_probes` call.

    The runner calls it with every event, calls `poll()` between batches and
    `close()` at the end (which finalises the view; the widgets stay displayed).
    Widget traits change at most every `min_interval` seconds (~10 Hz) whatever the
    event rate, and always at the end of a fit. In a kernel it displays itself when
    the fit starts (`show=False` to place it yourself, e.g. in a layout).
    """

    def __init__(
        self,
        runner: Any = None,
        *,
        min_interval: float = 0.1,
        poller: KernelPoller | None = None,
        title: str = "",
        show: bool | None = None,
    ) -> None:
        self.runner = runner
        # `fit_probes(progress=Dashboard)` works too: in a kernel it shows itself.
        self.auto_show = current_kernel() is not None if show is None else show
        self.min_interval = min_interval
        self.progress = ProbeProgress(title=title)
        self.monitor = EarlyStoppingMonitor(runner)
        self.poller = poller if poller is not None else KernelPoller()
        self.monitor.stop_supported = self.poller.supported
        self.monitor.stop_hint = self.poller.reason
        self.monitor.observe(self._on_stop_requested, names="stop_requested")
        self.widget = ipywidgets.VBox(
            [self.progress, self.monitor], layout=ipywidgets.Layout(width="100%")
        )
        self.flushes = 0
        self.finished = False
        self._last_flush = 0.0
        self._handle: Any = None

    # -- the runner's side ----------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        self.progress.handle(event)
        self.monitor.handle(event)
        if isinstance(event, ev.FitStarted):
            self.finished = False
            # a tracked call (steering sweep, stability) trains no probe of its own: no
            # loss charts, no Stop (Ctrl-C / the kernel's interrupt ends it)
            self.monitor.layout.display = None if event.probes else "none"
            if self.auto_show:
                self.show()
            self.flush()
        elif event.kind == ev.FIT_FINISHED:
            self.finished = True
            self.flush(final=True)
        elif time.monotonic() - self._last_flush >= self.min_interval:
            self.flush()

    def poll(self) -> None:
        """Between batches: let a Stop click in (throttled), redraw if due."""
        self.poller.poll()
        if time.monotonic() - self._last_flush >= self.min_interval:
            self.flush()

    def flush(self, final: bool = False) -> None:
        self._last_flush = time.monotonic()
        sent = self.progress.flush()
        sent = self.monitor.flush(final=final) or sent
        if sent:
            self.flushes += 1

    def close(self) -> None:
        """End of fit_probes (also after an error or interrupt): final redraw, then the
        displayed output becomes the static snapshot of the final state, so a notebook
        saved now and reopened without a kernel (or exported) shows it, not an error."""
        self.flush(final=True)
        if self._handle is not None:
            try:
                self._handle.update(self.final_bundle(), raw=True)
            except Exception:  # no frontend left (kernel shutting down)
                pass

    def _on_stop_requested(self, change: dict[str, Any]) -> None:
        if change["new"] and not self.finished:
            self.progress.request_stop()

    # -- display --------------------------------------------------------------------
    def show(self) -> Dashboard:
        """Display in the current output (once); returns self."""
        if self._handle is None:
            from IPython.display import display

            self._handle = display(self, display_id=True)
        return self

    def summary(self) -> str:
        return self.progress.summary()

    def __repr__(self) -> str:
        return self.summary()

    def snapshot_html(self) -> str:
        """Static HTML of the current state (progress, phases, loss charts)."""
        from .snapshot import dashboard_html

        return dashboard_html(self.progress.state, self.monitor.state, self.progress.title)

    def final_bundle(self) -> dict[str, str]:
        """What the output holds once the fit is over: the snapshot, no live view."""
        return {"text/plain": self.summary(), "text/html": self.snapshot_html()}

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        from .snapshot import split_bundle

        data, _meta = split_bundle(self.widget._repr_mimebundle_(**kwargs))
        data["text/plain"] = self.summary()
        data["text/html"] = self.snapshot_html()
        return data


def dashboard_factory(runner: Any) -> Any:
    """`fit_probes(progress="auto")` in a notebook: a displayed Dashboard; elsewhere
    (plain Python, terminal IPython) the console meter."""
    if current_kernel() is None:
        from ..core.engine.progress import ConsoleProgress

        return ConsoleProgress()
    return Dashboard(runner, show=True)
