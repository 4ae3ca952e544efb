"""Running the app: uvicorn on the runtime's own event loop, draining on SIGTERM.

Role: `serve_forever(app, sockets=...)` runs one `ServeApp` until it is told to stop; the
CLI (`runner.cli.serve`) and the tests call it on the loop that opened the `Lifecycle`, so
the runtime and every request share one loop and one thread (SQLite connections included).

Draining (SIGTERM or SIGINT, or `DrainingServer.request_stop()`):
  1. `draining` is set: new sessions, new messages and new Socket.io connections get 503,
     `/health` answers 503 `draining` so a load balancer takes the instance out;
  2. API requests in flight (turns included) finish, up to `drain_timeout_s`;
  3. Socket.io clients are disconnected (they reconnect elsewhere), uvicorn stops;
  4. the caller closes the Lifecycle, which flushes state. Exit 0.
A second signal while draining stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from runner.serve.app import ServeApp

__all__ = [
    "DrainingServer",
    "OneWriteHTTPProtocol",
    "OneWriteTransport",
    "make_server",
    "serve_forever",
]


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: ServeApp) -> None:
        super().__init__(config)
        self.serve_app = app
        self.drained = asyncio.Event()
        self._drain_task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT start a drain (uvicorn's own handling would stop at once and then
        re-raise the signal, ending the process with 143 instead of 0)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        handled = (signal.SIGTERM, signal.SIGINT)
        for sig in handled:
            loop.add_signal_handler(sig, self.request_stop)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def request_stop(self) -> None:
        """Drain, then stop; a second request stops at once."""
        context = self.serve_app.context
        if context.draining:
            self.should_exit = True
            self.force_exit = True
            return
        context.draining = True
        self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        context = self.serve_app.context
        deadline = time.monotonic() + context.limits.drain_timeout_s
        while context.api_in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.serve_app.realtime.disconnect_all()
        self.drained.set()
        self.should_exit = True


class OneWriteTransport:
    """A connection's transport that sends what is written in one pass of the event loop as
    one write: uvicorn writes a response's status line and headers, then its body, as two
    `send()`s, so every response cost two syscalls, two segments and two wake-ups of the
    client (and, on a busy machine, two chances for the woken client to preempt the server).
    Streamed bodies still leave chunk by chunk: each pass of the loop flushes."""

    __slots__ = ("_loop", "_pending", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP/1.1 protocol (httptools, else h11) over `OneWriteTransport`; a
    WebSocket upgrade gets the connection's own transport back."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(OneWriteTransport(transport))

    transport: Any

    def handle_websocket_upgrade(self, *args: Any) -> None:
        wrapped = self.transport
        if isinstance(wrapped, OneWriteTransport):
            wrapped.flush()
            self.transport = wrapped.transport
        super().handle_websocket_upgrade(*args)


def make_server(app: ServeApp, *, host: str, port: int) -> DrainingServer:
    limits = app.context.limits
    config = uvicorn.Config(
        app.asgi,
        http=OneWriteHTTPProtocol,
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        ws_max_size=limits.max_socket_message_bytes,
        timeout_graceful_shutdown=max(1, int(limits.drain_timeout_s)),
    )
    return DrainingServer(config, app)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve_forever(server: DrainingServer, *, sockets: Sequence[socket.socket]) -> None:
    """Serve until stopped (drained or forced), then stop delivering events."""
    try:
        await server.serve(sockets=list(sockets))
    finally:
        server.serve_app.realtime.stop()
