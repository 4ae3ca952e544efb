"""Who is calling the runtime: the auth context every session call is checked against.

Role: a neutral module of the runtime. `check_auth(auth)` turns what a caller passes (an
`AuthContext`, a mapping such as `{"user_id", "workspace_id", "permissions"}`, or any object
with those attributes, like a Scenario's `auth`) into an `AuthContext` and requires
`chat:access`; the session API then compares its `workspace_id` with the session's.

Invariant: an `AuthContext` is frozen; a missing permission raises `PermissionDeniedError`
before anything is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.runtime.errors import PermissionDeniedError

__all__ = ["CHAT_ACCESS", "AuthContext", "AuthLike", "check_auth"]

CHAT_ACCESS = "chat:access"


@dataclass(frozen=True, slots=True)
class AuthContext:
    """A caller: its user, its workspace (None: any) and its permissions."""

    user_id: str
    workspace_id: str | None = None
    permissions: frozenset[str] = frozenset({CHAT_ACCESS})

    @classmethod
    def of(cls, auth: AuthLike) -> AuthContext:
        if isinstance(auth, AuthContext):
            return auth
        if isinstance(auth, Mapping):
            return cls(
                user_id=str(auth.get("user_id") or "anonymous"),
                workspace_id=auth.get("workspace_id"),
                permissions=frozenset(auth.get("permissions") or ()),
            )
        # a spec `Auth` (scenarios) or any object with the three attributes
        return cls(
            user_id=str(getattr(auth, "user_id", "anonymous")),
            workspace_id=getattr(auth, "workspace_id", None),
            permissions=frozenset(getattr(auth, "permissions", ()) or ()),
        )

    @classmethod
    def operator(cls, who: str, *, workspace_id: str | None) -> AuthContext:
        """An operator acting on a session of `workspace_id` (chat access only)."""
        return cls(user_id=who, workspace_id=workspace_id, permissions=frozenset({CHAT_ACCESS}))


AuthLike = AuthContext | Mapping[str, Any] | Any


def check_auth(auth: AuthLike) -> AuthContext:
    """`auth` as an AuthContext; PermissionDeniedError without `chat:access`."""
    ctx = AuthContext.of(auth)
    if CHAT_ACCESS not in ctx.permissions:
        raise PermissionDeniedError(
            f"user {ctx.user_id!r} lacks the {CHAT_ACCESS!r} permission needed for sessions"
        )
    return ctx
