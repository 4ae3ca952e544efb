"""The REST routes run without FastAPI's per-request machinery: the same routes, parameters,
models and serialization, at a fraction of the cost per call.

Role: `EdgeMiddleware` asks `FastLane.dispatch` to serve each `/api/` request before handing
it to FastAPI. Profiling `runner serve` showed FastAPI's request path (dependency solving,
its middleware stack, route matching) costing 2-4x the runtime's own work per call (a turn
of the local provider is ~0.1 ms; FastAPI's path around it ~0.25-0.4 ms). The routes stay
FastAPI routes: FastAPI builds the OpenAPI document from them and serves every request the
fast lane does not take.

At start, `FastLane(api, routers, handlers, context)` compiles each `APIRoute` under `/api/` whose
parameters are all of kinds it knows: the serve context and the caller (`runner.serve.deps`),
path parameters, one JSON body model (or an optional one), `Request`, `Response`; a route
with anything else (query, header or cookie parameters, other dependencies, streaming
endpoints) is never taken.
A request is taken when the first of those routes matching its path and method (in the
order the app includes them, FastAPI's order) is compiled. Then:

  - the body is read (bounded by the edge), parsed as JSON and validated with the route's own
    FastAPI field; path parameters too. Anything that is not the plain case (no or another
    content type, JSON that does not parse, a value that does not validate, a root path) is
    handed to FastAPI unchanged with the body replayed, so every refusal keeps FastAPI's shape;
  - the caller comes from `Authorization: Bearer` exactly as FastAPI's `HTTPBearer` reads it;
  - the endpoint's return value goes through FastAPI's own `serialize_response` (the route's
    response model, aliases, include/exclude), status code and `Response` headers merged the
    way FastAPI merges them;
  - an exception with a handler registered on the app (HTTPException, validation) is answered
    by that handler; any other propagates to the edge like it would from FastAPI.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi import params as fastapi_params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel

from runner.serve import deps

# FastAPI serialises a response model straight to JSON bytes since its serialize_response grew
# `dump_json`; older releases (the floor, 0.110) return data for a JSONResponse. The lane does
# what the installed FastAPI does, so its answers stay byte for byte FastAPI's own.
_DUMPS_JSON = "dump_json" in inspect.signature(serialize_response).parameters


def _dump_json(plan: _Plan) -> dict[str, Any]:
    return {"dump_json": plan.dump_json} if _DUMPS_JSON else {}


if TYPE_CHECKING:
    from runner.serve.context import ServeContext

__all__ = ["FastLane"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CONTEXT = "context"
_CALLER = "caller"
_KNOWN_DEPENDENCIES: dict[Any, str] = {deps.serve_context: _CONTEXT, deps.caller: _CALLER}


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to run one route without FastAPI's request machinery."""

    route: APIRoute
    path_fields: tuple[Any, ...]
    body: Any  # the body's ModelField, or None
    body_required: bool
    dependencies: tuple[tuple[str, str], ...]  # (parameter name, _CONTEXT or _CALLER)
    request_name: str | None
    response_name: str | None
    dump_json: bool


def _model_type(annotation: Any) -> bool:
    """A pydantic model, or an optional one (`Model | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    return len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel)


def _compile(route: APIRoute) -> _Plan | None:
    dependant = route.dependant
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call):
        return None  # sync endpoints (thread pool) and generators (streams) stay with FastAPI
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        return None
    if (
        dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    ):
        return None
    if not isinstance(route.response_class, DefaultPlaceholder):
        return None
    dependencies = []
    for sub in dependant.dependencies:
        kind = _KNOWN_DEPENDENCIES.get(sub.call)
        if kind is None or sub.name is None:
            return None
        dependencies.append((sub.name, kind))
    body = None
    if dependant.body_params:
        if len(dependant.body_params) != 1:
            return None
        body = dependant.body_params[0]
        info = body.field_info
        if (
            not isinstance(info, fastapi_params.Body)
            or isinstance(info, fastapi_params.Form)
            or getattr(info, "embed", False)
            or not _model_type(info.annotation)
        ):
            return None
    for field in dependant.path_params:
        if field.field_info.annotation is not str:
            return None
    return _Plan(
        route=route,
        path_fields=tuple(dependant.path_params),
        body=body,
        body_required=body is not None and body.field_info.is_required(),
        dependencies=tuple(dependencies),
        request_name=dependant.request_param_name,
        response_name=dependant.response_param_name,
        dump_json=route.response_field is not None and _DUMPS_JSON,
    )


class FastLane:
    """The compiled `/api/` routes of one app (see the module docstring).

    `routers` are the routers the app includes at its root (no prefix or dependencies added
    by the include), in the order it includes them: their routes are matched in that order,
    as FastAPI matches them; a path under `/api/` none of them has is FastAPI's (404)."""

    def __init__(
        self,
        api: FastAPI,
        routers: Sequence[APIRouter],
        handlers: Mapping[Any, Any],
        context: ServeContext,
    ) -> None:
        self.api = api
        self.context = context
        self.routes: list[tuple[APIRoute, _Plan | None]] = []
        for router in routers:
            for route in router.routes:
                if not isinstance(route, APIRoute) or not route.path.startswith("/api/"):
                    continue
                compiled = None if router.dependencies else _compile(route)
                self.routes.append((route, compiled))
        self.handlers = dict(handlers)
        self.enabled = True  # off: FastAPI serves everything (tests compare the two)
        self.served = 0

    def compiled(self) -> list[str]:
        """`METHOD path` of every route the lane serves."""
        return [
            f"{method} {route.path}"
            for route, plan in self.routes
            if plan is not None
            for method in sorted(route.methods or ())
        ]

    def match(self, scope: Scope) -> tuple[_Plan, dict[str, Any]] | None:
        """The plan of the route FastAPI would pick for this request (None: FastAPI's)."""
        if scope.get("root_path"):
            return None
        path, method = scope["path"], scope["method"]
        for route, plan in self.routes:
            found = route.path_regex.match(path)
            if found is None or method not in (route.methods or ()):
                continue  # FastAPI looks further too (405 if only the path matched)
            if plan is None:
                return None
            convert = route.param_convertors
            return plan, {k: convert[k].convert(v) for k, v in found.groupdict().items()}
        return None

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Serve the request if its route is compiled and the request is the plain case, and
        return None; else return the `receive` FastAPI must read the request from (nothing
        has been sent; a body already read is replayed)."""
        # FastAPI's dependency overrides (tests) apply only where FastAPI solves dependencies
        found = self.match(scope) if self.enabled and not self.api.dependency_overrides else None
        if found is None:
            return receive
        plan, raw_params = found
        body = b""
        if plan.body is not None:
            read = await _read_body(receive)
            if read is None:  # the client went away: FastAPI answers that as it does
                return _replaying({"type": "http.disconnect"}, receive)
            body = read
            receive = _replaying({"type": "http.request", "body": body}, receive)
        values = self._values(plan, scope, raw_params, body)
        if values is None:
            return receive
        self.served += 1  # taken: from here on the lane answers, or raises to the edge
        scope["app"] = self.api  # as Starlette sets it for a request it serves
        scope["route"] = plan.route
        scope["endpoint"] = plan.route.endpoint
        scope["path_params"] = raw_params
        request = Request(scope, receive)
        sub_response = Response()  # as FastAPI makes it for a `response: Response` parameter
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        try:
            response = await self._run(plan, values, request, sub_response)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
        return None

    def _values(
        self, plan: _Plan, scope: Scope, raw_params: dict[str, Any], body: bytes
    ) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        for field in plan.path_fields:
            value, errors = field.validate(
                raw_params.get(field.alias), values, loc=("path", field.alias)
            )
            if errors:
                return None
            values[field.name] = value
        if plan.body is not None:
            if body:
                if not _is_json(scope):
                    return None
                try:
                    data = json.loads(body)
                except ValueError:
                    return None
                value, errors = plan.body.validate(data, values, loc=("body",))
                if errors:
                    return None
            elif plan.body_required:
                return None
            else:
                value = plan.body.get_default()
            values[plan.body.name] = value
        return values

    async def _run(
        self, plan: _Plan, values: dict[str, Any], request: Request, sub_response: Response
    ) -> Response:
        for name, kind in plan.dependencies:
            if kind == _CONTEXT:
                values[name] = self.context
            else:
                token = deps.bearer_token(request.headers.get("authorization"))
                values[name] = await self.context.authenticator.authenticate(token)
        if plan.request_name:
            values[plan.request_name] = request
        if plan.response_name:
            values[plan.response_name] = sub_response
        route = plan.route
        assert route.dependant.call is not None
        raw = await route.dependant.call(**values)
        if isinstance(raw, Response):
            return raw
        args: dict[str, Any] = {}
        status = route.status_code or sub_response.status_code
        if status is not None:
            args["status_code"] = status
        if sub_response.status_code:
            args["status_code"] = sub_response.status_code
        content = await serialize_response(
            field=route.response_field,
            response_content=raw,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
            is_coroutine=True,
            **_dump_json(plan),
        )
        response: Response
        if plan.dump_json:
            response = Response(content=content, media_type="application/json", **args)
        else:
            response = JSONResponse(content, **args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    def _handler(self, exc: Exception) -> Any:
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return False


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body; None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(first: Message, receive: Receive) -> Receive:
    """`receive` for whoever reads the request next: `first` (what was already read), then
    the rest from `receive`."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return first
        return await receive()

    return replay
