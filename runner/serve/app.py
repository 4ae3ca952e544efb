"""One ASGI app for `runner serve`: the REST API, Socket.io, Prometheus metrics, the console
and the OpenAPI document, on one port.

Role: `build_app(context)` assembles the parts around one `ServeContext`:

    /api/agent-lifecycle/...   REST (routes_sessions, routes_operators, routes_status)
    /socket.io/                Socket.io, namespace /agent-lifecycle (realtime)
    /metrics                   Prometheus text format (metrics), no credentials
    /console                   the operator console (operator_console)
    /openapi.json              the OpenAPI document (FastAPI); no /docs page: it would load
                               its scripts from a CDN

The REST routes are FastAPI routes (validation, the OpenAPI document); requests to them are
served by `runner.serve.fastlane` when it can, by FastAPI otherwise, with the same answers.

Errors of every kind leave as `{"error": {"code", "message"}}` (`runner.serve.errors`,
`runner.serve.edge`); FastAPI's own 404/405/422 answers are reshaped to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from runner import __version__
from runner.serve import operator_console, routes_operators, routes_sessions, routes_status
from runner.serve.context import ServeContext
from runner.serve.edge import EdgeMiddleware, ErrorsMiddleware
from runner.serve.errors import error_body
from runner.serve.fastlane import FastLane
from runner.serve.realtime import RealtimeLayer
from runner.serve.tracing import TraceMiddleware

__all__ = ["ServeApp", "build_app"]

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


@dataclass
class ServeApp:
    """The ASGI app and its parts (tests and the server reach the parts through it)."""

    asgi: Any
    api: FastAPI
    context: ServeContext
    realtime: RealtimeLayer
    lane: FastLane


def build_app(context: ServeContext) -> ServeApp:
    api = FastAPI(
        title="runner serve",
        version=__version__,
        description="The runner runtime as a service: sessions, teams, operators, events.",
        docs_url=None,
        redoc_url=None,
    )
    api.state.serve = context
    routers = [
        routes_sessions.router,
        routes_operators.router,
        routes_status.router,
        operator_console.router,
    ]
    for router in routers:
        api.include_router(router)

    @api.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(
            context.metrics.exposition(),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    api.add_exception_handler(RequestValidationError, _invalid_body)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_middleware(ErrorsMiddleware, context=context)
    # after every route and handler is in place: the fast lane compiles them now. The edge
    # is in front of FastAPI, so what the lane serves skips FastAPI's own layers too; the
    # request's trace span is outermost, covering the edge.
    lane = FastLane(api, routers, api.exception_handlers, context)
    edge = TraceMiddleware(EdgeMiddleware(api, context=context, lane=lane))
    realtime = RealtimeLayer(context)
    context.metrics.follow(context.lc)
    realtime.follow()
    return ServeApp(
        asgi=realtime.asgi(edge), api=api, context=context, realtime=realtime, lane=lane
    )


async def _invalid_body(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:20]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    message = "; ".join(problems) or "the request is not valid"
    return JSONResponse(error_body("invalid_request", message), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and type(exc.__cause__).__name__ == "_BodyTooLarge":
        status = 413
    code = _HTTP_CODES.get(status, "http_error")
    message = (
        f"the request body is larger than {request.app.state.serve.limits.max_body_bytes} bytes"
        if status == 413
        else "no such route"
        if status == 404
        else str(exc.detail)
    )
    headers = dict(exc.headers or {})
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)
