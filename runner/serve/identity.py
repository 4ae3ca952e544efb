"""Who is calling: an authenticated identity and the checks every endpoint makes with it.

Role: between authentication (`runner.serve.authn`: token -> `Identity`) and the endpoints.
An identity holds a user id, a set of workspaces (or every workspace, `*`) and permissions:

    chat:access   sessions in one's workspaces
    operator      the human queue, escalations, requested handoffs, member availability
    admin         cleanup, create_team, reload
    metrics:read  the JSON analytics, agent stats and insights

Invariants:
  - A session, queue item or escalation of a workspace the identity does not cover is
    reported exactly like a missing one (`NotVisible` -> 404), never as forbidden.
  - A missing permission is 403 whatever the object: checked before anything is looked up,
    so a 403 never tells whether an object exists.
  - `runtime_auth` is the only place an identity becomes the runtime's auth value (the serve
    layer has already checked the permission and the workspace when it builds one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from runner.runtime.auth import AuthContext
from runner.spec.vocabulary import ALL_WORKSPACES, PERMISSIONS, Permission

__all__ = [
    "ADMIN",
    "CHAT_ACCESS",
    "METRICS_READ",
    "OPERATOR",
    "Forbidden",
    "Identity",
    "NotVisible",
    "WorkspaceRequired",
    "runtime_auth",
]

CHAT_ACCESS: Permission = "chat:access"
OPERATOR: Permission = "operator"
ADMIN: Permission = "admin"
METRICS_READ: Permission = "metrics:read"


class Forbidden(Exception):
    """The identity lacks a permission (403)."""

    def __init__(self, identity: Identity, permission: str) -> None:
        super().__init__(
            f"{identity.user_id!r} lacks the {permission!r} permission needed for this call"
        )


class NotVisible(Exception):
    """An object that does not exist or lies in a workspace the identity does not cover (404)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found (or not visible to your workspaces)")


class WorkspaceRequired(Exception):
    """The caller holds several workspaces and did not say which one (422)."""


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    workspaces: frozenset[str]
    permissions: frozenset[str]
    source: Literal["api_key", "jwt", "generated"] = "api_key"

    @classmethod
    def of(
        cls,
        user_id: str,
        workspaces: Iterable[str],
        permissions: Iterable[str],
        source: Literal["api_key", "jwt", "generated"] = "api_key",
    ) -> Identity:
        known = set(PERMISSIONS)
        return cls(
            user_id=user_id,
            workspaces=frozenset(workspaces),
            permissions=frozenset(p for p in permissions if p in known),
            source=source,
        )

    @property
    def every_workspace(self) -> bool:
        return ALL_WORKSPACES in self.workspaces

    def covers(self, workspace: str | None) -> bool:
        """May this identity see objects of `workspace`? (None: only with every workspace.)"""
        if self.every_workspace:
            return True
        return workspace is not None and workspace in self.workspaces

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, *permissions: str) -> None:
        """Forbidden unless the identity holds at least one of `permissions`."""
        if not any(p in self.permissions for p in permissions):
            raise Forbidden(self, " or ".join(permissions))

    def workspace_for_new(self, requested: str | None, *, default: str | None) -> str | None:
        """The workspace a new session goes to: the one asked for (if covered), else the
        identity's only workspace; an identity of every workspace that names none gets
        `default` (the team's declared workspace; None: no workspace, seen only by such
        identities)."""
        if requested is not None:
            if not self.covers(requested):
                raise NotVisible(f"workspace {requested!r}")
            return requested
        if self.every_workspace:
            return default
        if len(self.workspaces) == 1:
            return next(iter(self.workspaces))
        raise WorkspaceRequired(
            "you hold several workspaces: say which one with workspace_id in the body"
        )

    def listed_workspaces(self) -> list[str] | None:
        """The workspaces to list objects of (None: every workspace)."""
        return None if self.every_workspace else sorted(self.workspaces)


def runtime_auth(identity: Identity, workspace: str | None) -> AuthContext:
    """The runtime's auth value for acting as `identity` on objects of `workspace`.

    The serve layer has checked permission and workspace already; the runtime's own check
    (`chat:access` on session calls) is satisfied for operators acting on a session too."""
    return AuthContext(
        user_id=identity.user_id,
        workspace_id=workspace,
        permissions=frozenset({CHAT_ACCESS, *identity.permissions}),
    )
