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

import uvicorn

from runner.serve.app import ServeApp

__all__ = ["DrainingServer", "make_server", "serve_forever"]


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


def make_server(app: ServeApp, *, host: str, port: int) -> DrainingServer:
    limits = app.context.limits
    config = uvicorn.Config(
        app.asgi,
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
