"""Who is calling the runtime, and what they may do where.

Role: a neutral module of the runtime. `AuthContext.of(auth)` turns what a caller passes (an
`AuthContext`, a mapping such as `{"user_id", "workspace_id", "workspaces", "permissions"}`, or
any object with those attributes, like a Scenario's `auth`) into an `AuthContext`;
`require(auth, permission)` checks one permission. The session API then checks that the
session's workspace is one the caller covers, the operator API the same with `operator`, and
the admin calls (`cleanup_*`, `create_team`) `admin`.

Permissions (`runner.spec.vocabulary.PERMISSIONS`): `chat:access` (sessions), `operator` (the
human queue, escalation decisions, requested handoffs, member availability), `admin` (cleanup,
teams from code, reload), `metrics:read` (analytics).

Invariants:
  - An `AuthContext` is frozen; a missing permission raises `PermissionDeniedError` before
    anything is read.
  - `workspaces` are every workspace the caller may act in (`*`: all of them); `workspace_id`
    is the one it acts in now (a new session's). A caller that names one workspace covers
    exactly that one.
  - Another workspace's session looks exactly like a missing one to the callers of `covers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from runner.runtime.errors import PermissionDeniedError
from runner.spec.vocabulary import ALL_WORKSPACES

__all__ = [
    "ADMIN",
    "CHAT_ACCESS",
    "METRICS_READ",
    "OPERATOR",
    "AuthContext",
    "AuthLike",
    "check_auth",
    "require",
]

CHAT_ACCESS = "chat:access"
OPERATOR = "operator"
ADMIN = "admin"
METRICS_READ = "metrics:read"


def _names(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(str(v) for v in value if v)


@dataclass(frozen=True, slots=True)
class AuthContext:
    """A caller: its user, the workspace it acts in now, every workspace it covers and its
    permissions."""

    user_id: str
    workspace_id: str | None = None
    permissions: frozenset[str] = frozenset({CHAT_ACCESS})
    workspaces: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.workspace_id is not None and self.workspace_id not in self.workspaces:
            if self.workspaces and ALL_WORKSPACES not in self.workspaces:
                raise PermissionDeniedError(
                    f"user {self.user_id!r} does not work in workspace {self.workspace_id!r}"
                )
            if not self.workspaces:
                object.__setattr__(self, "workspaces", frozenset({self.workspace_id}))

    @classmethod
    def of(cls, auth: AuthLike) -> AuthContext:
        if isinstance(auth, AuthContext):
            return auth
        get = auth.get if isinstance(auth, Mapping) else lambda key: getattr(auth, key, None)
        return cls(
            user_id=str(get("user_id") or "anonymous"),
            workspace_id=get("workspace_id"),
            permissions=_names(get("permissions")),
            workspaces=_names(get("workspaces")),
        )

    @property
    def every_workspace(self) -> bool:
        return ALL_WORKSPACES in self.workspaces

    def covers(self, workspace: str | None) -> bool:
        """Whether this caller may see what belongs to `workspace` (None: to no workspace,
        which only a caller of every workspace sees)."""
        workspaces = self.workspaces
        return ALL_WORKSPACES in workspaces or (workspace is not None and workspace in workspaces)

    def acting_in(self, workspace: str | None) -> AuthContext:
        """The same caller acting in `workspace` (one it covers)."""
        if workspace == self.workspace_id:
            return self
        return replace(self, workspace_id=workspace)

    def with_permissions(self, permissions: Iterable[str]) -> AuthContext:
        return replace(self, permissions=frozenset(permissions))


AuthLike = AuthContext | Mapping[str, Any] | Any


def require(auth: AuthLike, *permissions: str) -> AuthContext:
    """`auth` as an AuthContext; PermissionDeniedError unless it holds one of `permissions`."""
    ctx = AuthContext.of(auth)
    if ctx.permissions.isdisjoint(permissions):
        needed = " or ".join(repr(p) for p in permissions)
        raise PermissionDeniedError(
            f"user {ctx.user_id!r} lacks the {needed} permission this call needs"
        )
    return ctx


def check_auth(auth: AuthLike) -> AuthContext:
    """`auth` as an AuthContext; PermissionDeniedError without `chat:access`."""
    ctx = AuthContext.of(auth)
    if CHAT_ACCESS not in ctx.permissions:
        raise PermissionDeniedError(
            f"user {ctx.user_id!r} lacks the {CHAT_ACCESS!r} permission needed for sessions"
        )
    return ctx
