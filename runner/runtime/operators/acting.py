"""How the operator side reads and changes sessions: open rows, decisions applied as operators.

Role: the escalation desk, the human queue and the operator API (`runner.runtime.operators`)
find a session through `OperatorSessions.open_row` (open, of this environment, of a team when
it must be) and change it only through `apply_as`: the session service's `apply_decision`, as
an operator of the session's workspace, so every change has the same order of events and the
same persistence as a routed turn.

Invariant: nothing on the operator side writes a session row itself.
"""

from __future__ import annotations

from runner.runtime.auth import CHAT_ACCESS, OPERATOR, AuthContext
from runner.runtime.errors import LifecycleError, SessionNotFoundError, SessionStateError
from runner.runtime.sessions import SessionService
from runner.runtime.teams import RouteDecision
from runner.state.sessions import SessionRow

__all__ = ["OperatorSessions"]


class OperatorSessions:
    """The sessions of one environment as operators see and change them."""

    def __init__(self, *, env: str, sessions: SessionService) -> None:
        self._env = env
        self.sessions = sessions

    def row(self, session_id: str) -> SessionRow | None:
        """The session's row (live, else stored; None: unknown)."""
        return self.sessions.session_row(session_id)

    def open_rows(self) -> list[SessionRow]:
        return self.sessions.open_rows()

    def workload(self, agent: str) -> int:
        return self.sessions.workload(agent)

    def visible_row(self, session_id: str, auth: AuthContext) -> SessionRow:
        """The row of a session of this environment in a workspace `auth` covers (ended ones
        too); another workspace's session looks exactly like a missing one."""
        row = self.sessions.session_row(session_id)
        if row is None or row.env != self._env or not auth.covers(row.workspace_id):
            raise SessionNotFoundError(session_id)
        return row

    def open_row(self, session_id: str, *, team_only: bool) -> SessionRow:
        """The row of an open session of this environment (of a team session if `team_only`)."""
        row = self.sessions.session_row(session_id)
        if row is None or row.env != self._env:
            raise SessionNotFoundError(session_id)
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
        if team_only and row.kind != "team":
            raise LifecycleError(f"session {session_id!r} is with an agent, not a team")
        return row

    async def apply_as(self, row: SessionRow, decision: RouteDecision, *, who: str) -> None:
        """Apply `decision` to the session as operator `who` (who was checked to cover the
        session's workspace)."""
        auth = AuthContext(
            user_id=who,
            workspace_id=row.workspace_id,
            permissions=frozenset({CHAT_ACCESS, OPERATOR}),
        )
        await self.sessions.apply_decision(row.id, decision, auth=auth)
