"""What the REST handlers take from each request: the serve context, the caller, and the
runtime auth value for an object the caller may see.

Role: FastAPI dependencies shared by `runner.serve.routes_*`. The caller comes from
`Authorization: Bearer <key or token>` (declared as the OpenAPI security scheme); a session's
workspace is looked up before the runtime is called, so another workspace's session is a 404
exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runner.runtime.auth import AuthContext
from runner.serve import runtime_lookups
from runner.serve.context import ServeContext
from runner.serve.identity import Identity, NotVisible, runtime_auth

__all__ = ["Caller", "Context", "session_auth"]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from the environment's auth block, or a JWT from its issuer.",
)


def serve_context(request: Request) -> ServeContext:
    context: ServeContext = request.app.state.serve
    return context


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Identity:
    context = serve_context(request)
    token = None if credentials is None else credentials.credentials
    return await context.authenticator.authenticate(token)


Context = Annotated[ServeContext, Depends(serve_context)]
Caller = Annotated[Identity, Depends(caller)]


def session_auth(
    context: ServeContext, identity: Identity, session_id: str, *permissions: str
) -> AuthContext:
    """The runtime auth for `identity` on session `session_id`: 403 without any of
    `permissions`, 404 when the session is missing or in a workspace the identity lacks."""
    identity.require(*permissions)
    known, workspace = runtime_lookups.session_workspace(context.lc, session_id)
    if not known or not identity.covers(workspace):
        raise NotVisible(f"session {session_id!r}")
    return runtime_auth(identity, workspace)
