"""The HTTP edge of the API: bounds, error shapes, request metrics, draining.

Role: one pure ASGI middleware in front of the FastAPI app (under Socket.io's ASGI app), so it
sees every HTTP request with its route template (FastAPI's router sets it on the shared scope)
and every exception nobody turned into a response; `ErrorsMiddleware`, inside FastAPI, answers
the exceptions of the routes FastAPI serves the same way, before Starlette's own error
middleware would answer them in plain text:

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

__all__ = ["EdgeMiddleware", "ErrorsMiddleware", "answer_error", "json_error"]

log = logging.getLogger("runner.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


async def json_error(send: Send, error: ApiError) -> None:
    # rendered as every other JSON answer is (Starlette's JSONResponse)
    body = json.dumps(
        error.body(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
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
        await answer_error(scope, exc, self.context.limits.max_body_bytes, status["sent"], send)


class ErrorsMiddleware:
    """Inside FastAPI (within Starlette's ServerErrorMiddleware, which would answer plain
    text): an exception a FastAPI-served route raised becomes its JSON answer here."""

    def __init__(self, app: ASGIApp, context: ServeContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            limit = self.context.limits.max_body_bytes
            await answer_error(scope, exc, limit, started, sending)


async def answer_error(
    scope: Scope, exc: Exception, max_body_bytes: int, started: bool, send: Send
) -> None:
    """The answer to an exception: its API error, or a 500 naming an incident whose traceback
    goes to the log; nothing when the response already started (it is logged)."""
    if isinstance(exc, _BodyTooLarge):
        error: ApiError | None = ApiError(
            413, "body_too_large", f"the request body is larger than {max_body_bytes} bytes"
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
    if started:  # a streamed response already started: nothing more can be said
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
