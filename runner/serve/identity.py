"""Who is calling `runner serve`: an authenticated caller is the runtime's own `AuthContext`.

Role: between authentication (`runner.serve.authn`: token -> caller) and the endpoints. A caller
holds a user id, the workspaces it covers (or every workspace, `*`) and its permissions
(`runner.runtime.auth`: `chat:access`, `operator`, `admin`, `metrics:read`); the runtime checks
them on every call, so an endpoint passes the caller on as `auth=` and maps the runtime's errors
to status codes (`runner.serve.errors`). Only what the runtime does not own is checked here:
`metrics:read` on analytics and the existence of non-runtime objects (`NotVisible`).

Invariants:
  - A session, queue item or escalation of a workspace the caller does not cover is reported
    exactly like a missing one (404), never as forbidden.
  - A missing permission is 403 whatever the object: the runtime checks it before any lookup.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.runtime.auth import AuthContext
from runner.spec.vocabulary import ALL_WORKSPACES, PERMISSIONS

__all__ = ["NotVisible", "caller_of"]


class NotVisible(Exception):
    """An object that does not exist or lies in a workspace the caller does not cover (404)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found (or not visible to your workspaces)")


def caller_of(user_id: str, workspaces: Iterable[str], permissions: Iterable[str]) -> AuthContext:
    """The caller a key or token stands for. Unknown permission names are dropped; a caller of
    exactly one workspace acts in it, one of several names the workspace per request."""
    covered = frozenset(workspaces)
    concrete = [w for w in covered if w != ALL_WORKSPACES]
    acting = concrete[0] if len(concrete) == 1 and ALL_WORKSPACES not in covered else None
    known = set(PERMISSIONS)
    return AuthContext(
        user_id=user_id,
        workspace_id=acting,
        permissions=frozenset(p for p in permissions if p in known),
        workspaces=covered,
    )
