"""A server span per HTTP request, child of the caller's trace (W3C `traceparent`).

Role: the outermost ASGI middleware of `runner serve`'s API. When an OpenTelemetry SDK is
installed, each request is a `SERVER` span named `<METHOD> <route template>`; the runtime's
turn and provider spans opened while it is handled (`runner.runtime.tracing`) are its children,
so one trace holds the caller's request, the turn and the Foundry call. With no SDK the
middleware only passes the request on.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner import telemetry

__all__ = ["TraceMiddleware"]


class TraceMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or telemetry.tracer() is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status: dict[str, Any] = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        method = scope["method"]
        with (
            telemetry.attach_remote_parent(headers),
            telemetry.span(
                f"{method} {scope['path']}",
                {"http.request.method": method, "url.path": scope["path"]},
                kind="server",
            ) as span,
        ):
            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)
                code = status["code"]
                if span is not None and route is not None:
                    span.update_name(f"{method} {route}")
                telemetry.annotate(
                    span,
                    {"http.route": route, "http.response.status_code": code},
                    error=f"HTTP {code}" if code >= 500 else None,
                )
