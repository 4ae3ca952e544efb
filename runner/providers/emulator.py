"""`runner emulator`: a LocalStore served over Foundry's agents REST protocol (api-version v1).

Role in the flow: the foundry provider, the real azure-ai-projects SDK and the openai client are
tested against this HTTP server instead of Azure; benchmarks count the requests runner sends
(`GET /_emulator/stats`). It speaks the protocol as SDK 2.10.0 does (see
shared/reference/foundry-protocol.md): routes under any `/api/projects/{project}` prefix, 200 on
every success, errors and list pages in the recorded service's shapes (`emulator_json`), and an
empty page with no `last_id` (the SDK pages until it sees none).
`/openai/v1/conversations` and `/openai/v1/responses` answer with the local provider's
deterministic reply and its word-count usage, or function calls (`local_tools`), as JSON or, for
`stream: true`, as server-sent events (`emulator_responses`).

The protocol logic is `emulator_routes.Emulator`, the wire shapes and request decoding are in
`emulator_json`, fault injection and stats in `emulator_faults`, the bounded HTTP server
(connection cap, read timeouts, body limit, loopback-only binding) in `emulator_http`; this
module is the HTTP face: the request handler, `serve_emulator` and its `EmulatorHandle`.

Invariants:
- Every write is committed to the store before any byte of the response is sent.
- Injected faults are decided per request from one seeded random stream, so a run with `seed`
  is repeatable given the same request order. `fail_rate`: the request is answered 429 (with
  `Retry-After` and `retry-after-ms`) or 503 *without doing the work*. `lost_response_rate`: a
  write is done and committed, then its response is lost (503, or the connection is dropped),
  as when a reply is lost on the way back.
- Stats, reset and journal endpoints (`/_emulator/...`) are neither counted nor faulted; the
  journal (`record_requests=N`, off by default) keeps the last N routed requests' bodies.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runner.providers.base import NotFoundError, ProviderError
from runner.providers.emulator_faults import FaultConfig, LostResponseMode, injected_error
from runner.providers.emulator_http import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    BoundedRequestHandler,
    BoundedServer,
    check_bind_host,
)
from runner.providers.emulator_json import HttpError, error_json
from runner.providers.emulator_responses import EventStream
from runner.providers.emulator_routes import Emulator
from runner.providers.local_store import LocalStore

__all__ = ["EmulatorHandle", "serve_emulator"]

# ---------------------------------------------------------------- HTTP server


class _Server(BoundedServer):
    emulator: Emulator


class _Server6(_Server):
    address_family = socket.AF_INET6


class _RequestHandler(BoundedRequestHandler):
    server_version = "runner-emulator/1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: benchmarks send thousands of requests

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", self.headers.get("x-ms-client-request-id", ""))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, stream: EventStream) -> None:
        """Server-sent events, as the service streams a response (whole body, one write)."""
        data = b"".join(
            f"event: {name}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
            for name, event in stream.events
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: HttpError) -> None:
        request_id = self.headers.get("x-ms-client-request-id") or uuid.uuid4().hex
        self._send(error.status, error_json(error, request_id), error.headers)

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            raw = self.read_body()  # bounded: 400/408/411/413 before anything is routed
        except HttpError as exc:
            self._send_error(exc)
            return
        self.request_read()
        if path.endswith("/_emulator/stats") and method == "GET":
            self._send(200, emulator.stats())
            return
        if path.endswith("/_emulator/requests") and method == "GET":
            self._send(200, {"data": emulator.recorded()})
            return
        if path.endswith("/_emulator/reset-stats") and method == "POST":
            emulator.reset_stats()
            self._send(200, {"reset": True})
            return
        try:
            family, match, handler = emulator.route(method, path)
        except HttpError as exc:
            self._send_error(exc)
            return
        failure, lost = emulator.draw(method, family)
        faults = emulator.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if failure is not None:
            self._send_error(injected_error(failure, faults.retry_after_ms))
            return
        try:
            emulator.check_api_version(family, query)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise HttpError(400, "invalid_request_error", "the body is not JSON") from None
            features = self.headers.get("Foundry-Features")
            emulator.check_preview_features(method, family, body, features)
            emulator.record(method, path, body, features)
            status, payload = handler(emulator, match, query, body)
        except HttpError as exc:
            self._send_error(exc)
            return
        except NotFoundError as exc:
            self._send_error(HttpError(404, exc.code or "not_found", str(exc)))
            return
        except ProviderError as exc:
            self._send_error(
                HttpError(exc.status or 400, exc.code or "invalid_parameters", str(exc))
            )
            return
        if lost:  # the work is committed; the answer never arrives
            if faults.lost_response_mode == "drop":
                self.close_connection = True
                return
            self._send_error(HttpError(503, "service_unavailable", "the response was lost"))
            return
        if isinstance(payload, EventStream):
            self._send_events(payload)
            return
        self._send(status, payload)


# ---------------------------------------------------------------- running it


class EmulatorHandle:
    """A running emulator: `.endpoint` for FoundryProvider/AIProjectClient, `.stop()` to end."""

    def __init__(
        self, server: _Server, thread: threading.Thread, *, project: str, owns_store: bool
    ) -> None:
        self._server = server
        self._thread = thread
        self._owns_store = owns_store
        host, port = server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        if ":" in shown:
            shown = f"[{shown}]"
        self.port = int(port)
        self.base_url = f"http://{shown}:{self.port}"
        self.endpoint = f"{self.base_url}/api/projects/{project}"
        self.emulator = server.emulator
        self.store = server.emulator.store

    def stats(self) -> dict[str, Any]:
        """Requests so far: `requests`, `reads`, `writes`, `by_method`, `by_route`, faults."""
        return self.emulator.stats()

    def reset_stats(self) -> None:
        self.emulator.reset_stats()

    def requests(self) -> list[dict[str, Any]]:
        """The requests recorded so far (`record_requests=N` keeps the last N): each
        `{"method", "path", "body", "features"}` with the body as decoded JSON and `features`
        the `Foundry-Features` header (None when absent)."""
        return self.emulator.recorded()

    def configure(self, **changes: Any) -> None:
        """Change fault settings while running, e.g. `configure(fail_rate=1.0)`."""
        faults = self.emulator.faults
        updated = FaultConfig(**{**faults.__dict__, **changes})
        updated.check()
        self.emulator.faults = updated

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self._owns_store:
            self.store.close()

    def wait(self) -> None:
        """Block until the server stops (used by the CLI, which serves until Ctrl-C)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_emulator(
    *,
    data_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0,
    fail_rate: float = 0,
    lost_response_rate: float = 0,
    seed: int | None = None,
    fail_statuses: Sequence[int] = (429, 503),
    retry_after_ms: int = 0,
    lost_response_mode: LostResponseMode = "503",
    project: str = "p1",
    record_requests: int = 0,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_body: int = DEFAULT_MAX_BODY,
    allow_remote: bool = False,
    idle_timeout: float = 60.0,
    read_timeout: float = 10.0,
    request_timeout: float = 10.0,
    float32: bool = False,
) -> EmulatorHandle:
    """Start the emulator on a background thread over the store in `data_dir`.

    `port=0` picks a free port. `record_requests=N` keeps the last N requests for
    `EmulatorHandle.requests()` and `GET /_emulator/requests`. `float32=True` keeps
    `temperature`/`top_p` as float32 and echoes them so (0.3 -> 0.30000001192092896), as the
    service does. Use as a context manager; the
    store file is `data_dir/local-store.db` (the same file a `local` environment with that
    data_dir uses). The HTTP limits (`max_connections`, `max_body` bytes, the timeouts in
    seconds) are `runner.providers.emulator_http`'s; a `host` that is not loopback is refused
    (ValueError) unless `allow_remote`.
    """
    from runner.paths import local_store_path

    check_bind_host(host, allow_remote=allow_remote)

    faults = FaultConfig(
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        lost_response_rate=lost_response_rate,
        fail_statuses=tuple(fail_statuses),
        retry_after_ms=retry_after_ms,
        lost_response_mode=lost_response_mode,
    )
    faults.check()
    store = LocalStore(local_store_path(str(data_dir)))
    try:
        server_class = _Server6 if ":" in host else _Server
        server = server_class(
            (host, port),
            _RequestHandler,
            max_connections=max_connections,
            max_body=max_body,
            idle_timeout=idle_timeout,
            read_timeout=read_timeout,
            request_timeout=request_timeout,
        )
    except (OSError, ValueError):
        store.close()
        raise
    server.emulator = Emulator(
        store, faults=faults, seed=seed, record_requests=record_requests, float32=float32
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.name = f"runner-emulator-{server.server_address[1]}"
    thread.start()
    return EmulatorHandle(server, thread, project=project, owns_store=True)
