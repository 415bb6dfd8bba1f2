"""Running each batch's trace on NDIF through nnsight's remote backend.

`ProbeRunner(model, configs, remote=True)` sends every batch's trace to NDIF
(https://ndif.us), where the model is already loaded; only the model's name, the
token ids and the trace body travel there. Pooling happens inside the trace, on
the server, so what comes back is one float32 vector per example and feature key
instead of every token's activation (see the README for sizes). Probes train
locally, as always.

Failures are made quick and explicit: a missing API key is reported before any
network call; the NDIF host is probed with a short TCP connect (in a daemon
thread, since a DNS lookup ignores socket timeouts) before the first trace; the
websocket connects with a timeout; and every network, authentication or server
error becomes a `RemoteUnavailable` that says what to set. A failed batch loses
nothing: probes keep their weights and the pooled cache keeps every batch that
came back, so `fit_probes(..., resume=True)` continues.

`remote="local"` runs the same path (trace serialised, our code shipped by value,
user modules hidden while deserialising) in-process, without a key or network:
the way to check a remote set-up before paying for it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any
from urllib.parse import urlparse

import torch
from nnsight.intervention.backends.remote import RemoteBackend, RemoteError
from nnsight.schema.response import Status

from ..errors import ProbeError
from . import pooling
from .data import Batch
from .extract import Extractor, FeatureKey, pooled_trace
from .submodules import DryRun

API_KEY_ENV = "NDIF_API_KEY"
HOST_ENV = "NDIF_HOST"
CONNECT_TIMEOUT_S = 5.0
KEY_URL = "https://login.ndif.us"

_KEY_HELP = (
    f"Get a key at {KEY_URL}, then either `export {API_KEY_ENV}=<your key>` (before "
    "starting Python), or in Python `import nnsight; "
    "nnsight.CONFIG.set_default_api_key('<your key>')` (saved in "
    "~/.config/nnsight/config.yaml)."
)
_RESUME = (
    "No probe state was lost: probes keep their weights and the pooled features "
    "that came back are cached; fix the cause and call fit_probes(..., resume=True)."
)


class RemoteUnavailable(ProbeError):
    """NDIF could not be used (no key, unreachable, rejected, failed); the message says
    what to set or check."""


def api_key() -> str | None:
    """The NDIF API key: $NDIF_API_KEY (read now, so setting it after importing nnsight
    works), else nnsight's config (`nnsight.CONFIG.API.APIKEY`)."""
    from nnsight import CONFIG

    return os.environ.get(API_KEY_ENV) or CONFIG.API.APIKEY or None


def api_host(remote: Any = True) -> str:
    """Where requests go: a host URL given as `remote=`, else $NDIF_HOST, else nnsight's
    config (https://api.ndif.us)."""
    from nnsight import CONFIG

    if isinstance(remote, str) and remote != "local":
        return remote
    return os.environ.get(HOST_ENV) or CONFIG.API.HOST


def _reachable(host_url: str, timeout: float) -> str | None:
    """None if a TCP connection to the host opens within `timeout`, else why not."""
    url = urlparse(host_url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except OSError as e:
            result.append(f"{type(e).__name__}: {e}")

    t = threading.Thread(target=probe, daemon=True, name="lm-probe-ndif-check")
    t.start()
    t.join(timeout + 0.5)
    if not result:
        return f"no answer within {timeout:.0f} s (DNS lookup or connect hung)"
    return result[0]


class RemoteSession:
    """The remote set-up of one runner: mode, host, key, the model's remote name."""

    def __init__(self, model: Any, remote: bool | str) -> None:
        from nnsight.modeling.mixins.remotable import Remotable

        if remote is not True and not isinstance(remote, str):
            raise ProbeError(f"remote must be True, 'local' or a host URL, got {remote!r}")
        if (
            isinstance(remote, str)
            and remote != "local"
            and not remote.startswith(("http://", "https://"))
        ):
            raise ProbeError(
                f"remote={remote!r}: use True (NDIF), 'local' (simulate here) or a host URL "
                "starting with http:// or https://"
            )
        if not isinstance(model, Remotable):
            raise ProbeError(
                f"remote runs need an nnsight TransformersModel (got {type(model).__name__}): "
                "nnsight.TransformersModel('org/name') names a model NDIF hosts, without "
                "loading its weights here"
            )
        self.model = model
        self.mode = remote
        self.local = remote == "local"
        self.host = None if self.local else api_host(remote)
        self._model_key: str | None = None
        self._checked = False
        if not self.local:
            self.check_key()
            repo = getattr(model, "repo_id", None)
            if not isinstance(repo, str) or os.path.isdir(os.path.expanduser(repo)):
                raise ProbeError(
                    f"NDIF runs models by their Hugging Face id, but this model came from "
                    f"{repo!r}. Wrap the hub id instead, e.g. "
                    "nnsight.TransformersModel('meta-llama/Llama-3.1-8B') (weights stay on "
                    "the server); see nnsight.ndif.status() for the models NDIF hosts"
                )

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"RemoteSession({'local simulation' if self.local else self.host})"

    def check_key(self) -> str:
        """The API key, or a clear error -- no network involved."""
        key = api_key()
        if not key:
            raise RemoteUnavailable(
                f"remote=True runs the model on NDIF, which needs an API key, and none is "
                f"set. {_KEY_HELP} To try the remote code path without NDIF, use "
                "remote='local'."
            )
        return key

    def ensure_ready(self, baselines: Any = ()) -> None:
        """Check key, host and model name once (quickly); raise RemoteUnavailable if not.
        Baselines that build a second local model are refused on NDIF."""
        local_only = sorted({"embeddings", "random_init"} & set(baselines or ()))
        if local_only and not self.local:
            raise ProbeError(
                f"baselines {local_only} run a local copy of the model and are not available "
                "with remote=True yet; use baselines=('majority',) or run them locally"
            )
        if self.local or self._checked:
            return
        self.check_key()
        why = _reachable(self.host, CONNECT_TIMEOUT_S)
        if why is not None:
            raise RemoteUnavailable(
                f"cannot reach NDIF at {self.host}: {why}. Check your internet connection "
                f"(and proxy), or set {HOST_ENV} / nnsight.CONFIG.API.HOST if you use "
                f"another NDIF server; https://discuss.ndif.us lists outages. {_RESUME}"
            )
        self._checked = True

    @property
    def model_key(self) -> str:
        """The name NDIF knows the model by (canonicalised once via the HF hub)."""
        if self._model_key is None:
            box: list[Any] = []

            def mint() -> None:
                try:
                    box.append(self.model.to_model_key())
                except Exception as e:  # noqa: BLE001 - reported below
                    box.append(e)

            t = threading.Thread(target=mint, daemon=True, name="lm-probe-model-key")
            t.start()
            t.join(3 * CONNECT_TIMEOUT_S)
            if not box or isinstance(box[0], Exception):
                why = f"{type(box[0]).__name__}: {box[0]}" if box else "the hub did not answer"
                raise RemoteUnavailable(
                    f"could not resolve the model's Hugging Face id "
                    f"{getattr(self.model, 'repo_id', None)!r} for NDIF ({why}). Check the "
                    f"id and your connection. {_RESUME}"
                )
            self._model_key = box[0]
        return self._model_key

    def backend(self) -> Any:
        """The nnsight backend for one trace."""
        if self.local:
            from nnsight.intervention.backends.local import LocalSimulationBackend

            return LocalSimulationBackend(self.model)
        return _TimelyRemoteBackend(
            self.model_key,
            host=self.host,
            api_key=self.check_key(),
            env=self.model._remoteable_get_env(),
        )

    def explain(self, error: BaseException) -> RemoteUnavailable:
        """A RemoteUnavailable naming the cause and the fix for a failed remote trace."""
        text = f"{type(error).__name__}: {error}"
        status = getattr(error, "status_code", None)
        low = text.lower()
        if status in (401, 403) or any(
            s in low for s in ("401", "403", "unauthorized", "forbidden", "api key", "api-key")
        ):
            return RemoteUnavailable(
                f"NDIF at {self.host} rejected the request ({text}): the API key is "
                f"missing, wrong or not allowed this model. {_KEY_HELP} {_RESUME}"
            )
        if _is_network_error(error):
            return RemoteUnavailable(
                f"lost the connection to NDIF at {self.host} ({text}). Check your "
                f"connection and retry. {_RESUME}"
            )
        return RemoteUnavailable(f"the NDIF job failed: {text}. {_RESUME}")


def _is_network_error(error: BaseException) -> bool:
    if isinstance(error, (OSError, TimeoutError)):
        return True
    try:
        import httpx
        import websocket

        return isinstance(error, (httpx.TransportError, websocket.WebSocketException))
    except ImportError:  # pragma: no cover - both come with nnsight
        return False


class _TimelyRemoteBackend(RemoteBackend):
    """nnsight's blocking RemoteBackend, but the websocket connect (which has no
    timeout upstream) gives up after CONNECT_TIMEOUT_S. Otherwise upstream's
    `request`, unchanged."""

    def request(self, request: Any, tracer: Any) -> Any:
        import websocket

        blob = self._serialize(tracer)
        connection = websocket.create_connection(
            f"{self.ws_host}/subscribe",
            header={"ndif-api-key": self.api_key} if self.api_key else None,
            timeout=CONNECT_TIMEOUT_S,
        )
        try:
            request.session_id = json.loads(connection.recv())["session_id"]
            self.send(request, blob)
            connection.settimeout(0.1 if self.display.enabled else CONNECT_TIMEOUT_S)
            while True:
                try:
                    message = connection.recv()
                except websocket.WebSocketTimeoutException:
                    self.display.refresh()  # a long job: keep waiting
                    continue
                response = self.parse(message)
                result = self.handle(response)
                if response.status == Status.COMPLETED:
                    return result
        finally:
            connection.close()


class RemoteExtractor(Extractor):
    """Like Extractor, but each batch's trace runs remotely (pooling inside it, so only
    pooled vectors come back), with network failures turned into clear errors."""

    def __init__(
        self, model: Any, keys: list[FeatureKey], dry: DryRun, session: RemoteSession
    ) -> None:
        super().__init__(model, keys, dry)
        self.session = session

    def _pooled(self, batch: Batch) -> list[torch.Tensor]:
        import nnsight

        session = self.session
        session.ensure_ready()
        nnsight.register(pooling)  # ship pooling's source: the server has no lm_probe_widgets
        try:
            return pooled_trace(
                self.model,
                self.reads,
                self.hows,
                self._envoy_paths,
                batch.input_ids,
                batch.attention_mask,
                backend=session.backend(),
            )
        except RemoteUnavailable:
            raise
        except Exception as e:
            if session.local or not _is_remote_failure(e):
                raise
            raise session.explain(e) from e


def _is_remote_failure(error: BaseException) -> bool:
    return isinstance(error, RemoteError) or _is_network_error(error)
