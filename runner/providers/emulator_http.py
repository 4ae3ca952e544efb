"""The emulator's HTTP server layer, bounded: connections, read timeouts, request bodies, binds.

Role in the flow: `runner.providers.emulator` builds its server and request handler on
`BoundedServer` and `BoundedRequestHandler`; the handler reads each request's body with
`read_body` before routing it. Everything a client controls is bounded:

  - concurrent connections: at most `max_connections` are served, each on its own thread; one
    more is answered 503 (`Retry-After: 1`) and closed at once by the accepting thread, so a
    flood of half-open connections never holds more threads than the cap;
  - time: a connection idle for `idle_timeout` seconds between requests is closed; once a
    request's first byte arrives, its request line, headers and body must all arrive within
    `request_timeout` seconds (a reaper thread shuts the socket of a late one: a client
    dripping one byte at a time cannot hold a thread), and no single read waits longer than
    `read_timeout`;
  - bodies: `Content-Length` must be one non-negative decimal number (else 400, connection
    closed, no traceback); a body over `max_body` bytes is answered 413 without being read;
    `Transfer-Encoding` (chunked bodies) is answered 411;
  - binding: `check_bind_host` refuses an address that is not loopback unless remote access
    is allowed explicitly (`runner emulator --allow-remote`): the emulator has no
    authentication.

Invariants: a request the server refuses never reaches the routes; nothing a client sends
makes the server print a traceback (unexpected errors are one line on stderr).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runner.providers.emulator_json import HttpError

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_CONNECTIONS",
    "BoundedRequestHandler",
    "BoundedServer",
    "check_bind_host",
    "is_loopback",
]

DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64
_QUIET = (ConnectionError, TimeoutError, OSError)
_CLOSE = {"Connection": "close"}


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (`localhost`, 127.0.0.0/8, ::1)."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_bind_host(host: str, *, allow_remote: bool) -> None:
    """ValueError when `host` is not loopback and remote access was not allowed."""
    if allow_remote or is_loopback(host):
        return
    raise ValueError(
        f"refusing to listen on {host!r}, which is not a loopback address: the emulator has no "
        "authentication, so anyone who can reach it can read and change its agents; listen on "
        "127.0.0.1 (the default), or pass --allow-remote if that is really what you want"
    )


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them, with a reaper thread that
    closes requests that do not arrive within their handler's `request_timeout`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: Any,
        handler: Any,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_body: int = DEFAULT_MAX_BODY,
        idle_timeout: float = 60.0,
        read_timeout: float = 10.0,
        request_timeout: float = 10.0,
    ) -> None:
        if max_connections < 1 or max_body < 0:
            raise ValueError("max_connections must be at least 1 and max_body not negative")
        self.max_connections = max_connections
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, daemon=True)
        self._reaper.name = f"runner-emulator-reaper-{self.server_address[1]}"
        self._reaper.start()

    # ---- the connection cap

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.forget(request)
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": "too_many_connections",
                    "message": f"the emulator serves at most {self.max_connections} "
                    "connections at once; retry shortly",
                    "type": "too_many_connections",
                }
            }
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            request.settimeout(0.5)
            request.sendall(head.encode() + body)
        self.shutdown_request(request)

    # ---- request deadlines

    def expect_by(self, connection: socket.socket, deadline: float) -> None:
        with self._lock:
            self._deadlines[connection] = deadline

    def forget(self, connection: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(connection, None)

    def _reap(self) -> None:
        while not self._closed.wait(0.2):
            now = time.monotonic()
            with self._lock:
                late = [c for c, deadline in self._deadlines.items() if deadline <= now]
                for connection in late:
                    del self._deadlines[connection]
            for connection in late:  # its reads end at once: the handler's thread is freed
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _QUIET):
            return  # the client went away or was too slow: nothing to report
        print(
            f"runner emulator: error serving {client_address}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
            flush=True,
        )


class BoundedRequestHandler(BaseHTTPRequestHandler):
    """Request reading with timeouts and a bounded body (see the module docstring)."""

    protocol_version = "HTTP/1.1"
    timeout = 60.0  # socketserver sets it on the connection in setup(); replaced per request
    server: BoundedServer
    _refused = False

    def handle_one_request(self) -> None:
        server = self.server
        connection: socket.socket = self.connection
        try:
            connection.settimeout(server.idle_timeout)
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                self.close_connection = True
                return
        except (TimeoutError, OSError):  # idle too long, or the client is gone
            self.close_connection = True
            return
        server.expect_by(connection, time.monotonic() + server.request_timeout)
        try:
            connection.settimeout(server.read_timeout)
            super().handle_one_request()
        except _QUIET:
            self.close_connection = True
        finally:
            server.forget(connection)
        if self._refused:
            self._linger()

    def _linger(self) -> None:
        """After refusing a body: send FIN, then read (and drop) what the client is still
        sending for a moment, so closing does not reset the connection before it reads the
        answer."""
        connection: socket.socket = self.connection
        with contextlib.suppress(OSError):
            self.wfile.flush()
            connection.shutdown(socket.SHUT_WR)
            connection.settimeout(0.5)
            deadline = time.monotonic() + 1.0
            drained = 0
            while time.monotonic() < deadline and drained < 1 << 20:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)

    def request_read(self) -> None:
        """The request has arrived in full: its work is not under the read deadline."""
        self.server.forget(self.connection)

    def read_body(self) -> bytes:
        """The request's body, after checking its framing; HttpError (400, 408, 411, 413) when
        it cannot be read, with the connection marked to close (the stream is out of step)."""
        max_body = self.server.max_body
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = self._refused = True
            raise HttpError(
                411,
                "length_required",
                "send the body with a Content-Length, not chunked",
                headers=_CLOSE,
            )
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return b""
        texts = {v.strip() for v in values}
        if len(texts) != 1 or not next(iter(texts)).isdigit() or not next(iter(texts)).isascii():
            self.close_connection = self._refused = True
            shown = ", ".join(repr(v) for v in values)[:80]
            raise HttpError(
                400,
                "invalid_request_error",
                f"invalid Content-Length {shown}: send one non-negative number of bytes",
                headers=_CLOSE,
            )
        length = int(next(iter(texts)))
        if length > max_body:
            self.close_connection = self._refused = True
            raise HttpError(
                413,
                "request_too_large",
                f"the body is {length} bytes; the emulator accepts at most {max_body}",
                headers=_CLOSE,
            )
        try:
            raw = self.rfile.read(length) if length else b""
        except (TimeoutError, OSError):
            raw = b""
        if len(raw) != length:
            self.close_connection = True
            raise HttpError(
                408, "request_timeout", "the body did not arrive in time", headers=_CLOSE
            )
        return raw
