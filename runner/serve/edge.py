"""The HTTP edge of the API: bounds, error shapes, request metrics, draining.

Role: one pure ASGI middleware inside the FastAPI app (between Starlette's outermost error
middleware and the router), so it sees every request with its route template and every
exception a handler did not turn into a response:

  - refuses a body larger than `max_body_bytes` (413; by Content-Length at once, else while
    reading) and more than `max_requests_in_flight` API requests at a time (503, Retry-After);
  - turns an expected exception (`runner.serve.errors.from_exception`) into its status and
    `{"error": {"code", "message"}}`; anything else becomes a 500 naming an incident id while
    the traceback goes to the server's log: no traceback ever reaches a client;
  - counts requests and their duration by route template (`runner_http_*`);
  - keeps `ServeContext.api_in_flight`, which draining waits on;
  - offers each API request to the fast lane (`runner.serve.fastlane`) first; what it does
    not serve goes on to FastAPI.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from runner.serve.errors import ApiError, from_exception

if TYPE_CHECKING:
    from runner.serve.context import ServeContext
    from runner.serve.fastlane import FastLane

__all__ = ["EdgeMiddleware", "json_error"]

log = logging.getLogger("runner.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


async def json_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, context: ServeContext, lane: FastLane | None = None) -> None:
        self.app = app
        self.context = context
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.context
        limits = ctx.limits
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        counted = scope["path"].startswith("/api/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
            await send(message)

        try:
            if counted and ctx.api_in_flight >= limits.max_requests_in_flight:
                raise ApiError(
                    503, "busy", "too many requests in flight; retry shortly", {"Retry-After": "1"}
                )
            length = _content_length(scope)
            if length is not None and length > limits.max_body_bytes:
                raise _BodyTooLarge
            if counted:
                ctx.api_in_flight += 1
            try:
                bounded = _bounded(receive, limits.max_body_bytes)
                reading: Receive | None = bounded
                if counted and self.lane is not None:
                    reading = await self.lane.dispatch(scope, bounded, sending)
                if reading is not None:  # not served by the fast lane
                    await self.app(scope, reading, sending)
            finally:
                if counted:
                    ctx.api_in_flight -= 1
        except Exception as exc:
            await self._fail(scope, exc, status, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            ctx.metrics.observe_http(
                scope["method"], template, status["code"], time.perf_counter() - started
            )

    async def _fail(self, scope: Scope, exc: Exception, status: dict[str, Any], send: Send) -> None:
        if isinstance(exc, _BodyTooLarge):
            limit = self.context.limits.max_body_bytes
            error: ApiError | None = ApiError(
                413, "body_too_large", f"the request body is larger than {limit} bytes"
            )
        else:
            error = from_exception(exc)
        if error is None:
            incident = secrets.token_hex(6)
            log.error(
                "internal error %s on %s %s", incident, scope["method"], scope["path"], exc_info=exc
            )
            error = ApiError(
                500, "internal", f"internal error (incident {incident}); see the server's log"
            )
        if status["sent"]:  # a streamed response already started: nothing more can be said
            log.warning("error after the response started: %s", error)
            return
        await json_error(send, error)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _bounded(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def reading() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return reading
