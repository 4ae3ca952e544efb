"""What the REST handlers take from each request: the serve context and the caller.

Role: FastAPI dependencies shared by `runner.serve.routes_*`. The caller comes from
`Authorization: Bearer <key or token>` (declared as the OpenAPI security scheme) and is the
runtime's `AuthContext`: handlers pass it on as `auth=` and the runtime checks it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from runner.runtime.auth import AuthContext
from runner.serve.context import ServeContext
from runner.serve.identity import NotVisible

__all__ = ["Caller", "Context", "bearer_token", "caller", "in_workspace", "serve_context"]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from the environment's auth block, or a JWT from its issuer.",
)


async def serve_context(request: Request) -> ServeContext:
    # async, like every dependency here: FastAPI runs a plain `def` dependency in a worker
    # thread, a thread hop per request for an attribute read
    context: ServeContext = request.app.state.serve
    return context


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> AuthContext:
    context: ServeContext = request.app.state.serve
    token = None if credentials is None else credentials.credentials
    return await context.authenticator.authenticate(token)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, read as `HTTPBearer` reads it
    (for the fast lane, `runner.serve.fastlane`, which does not run FastAPI's dependencies)."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


Context = Annotated[ServeContext, Depends(serve_context)]
Caller = Annotated[AuthContext, Depends(caller)]


def in_workspace(caller: AuthContext, workspace: str | None) -> AuthContext:
    """The caller acting in `workspace` (a request may name one of its workspaces): a 404 for a
    workspace it does not cover, like any object it may not see."""
    if workspace is None:
        return caller
    if len(workspace) > 200 or not caller.covers(workspace):
        raise NotVisible(f"workspace {workspace!r}")
    return caller.acting_in(workspace)
