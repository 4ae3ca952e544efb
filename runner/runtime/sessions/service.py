"""The session API of one runtime: start, find, talk to, change and end sessions, with auth.

Role: what the `Lifecycle` facade's session methods and every `Session` handle call
(`SessionService` is the handles' `SessionOwner`); the operator side uses it too
(`session_row`, `open_rows`, `workload`, `apply_decision`, `serve_waiting_handoffs`). Each call
checks its auth (`chat:access` — or `operator` for reading, pausing, resuming and ending —
and a workspace the caller covers) and delegates: admission starts a
session, the turn path answers a message, the session changes apply decisions and end sessions,
the table holds what is live.

Invariants:
  - A session of another workspace looks exactly like a missing one (`SessionNotFoundError`).
  - Ending an ended session does nothing; changing one raises `SessionStateError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from runner.providers.base import TextSink
from runner.runtime.auth import CHAT_ACCESS, OPERATOR, AuthContext, AuthLike, check_auth, require
from runner.runtime.clock import Clock
from runner.runtime.errors import SessionStateError
from runner.runtime.sessions.admission import Admission
from runner.runtime.sessions.applied import AppliedState
from runner.runtime.sessions.changes import SessionChanges
from runner.runtime.sessions.handles import Session, TurnChunk, TurnReply
from runner.runtime.sessions.leases import SessionLeases
from runner.runtime.sessions.streaming import stream_turn
from runner.runtime.sessions.table import LiveSessions
from runner.runtime.sessions.turns import Turns
from runner.runtime.teams import RouteDecision, primary_member
from runner.spec.vocabulary import Priority
from runner.state.sessions import SessionRow

__all__ = ["SessionService"]


def _session_reader(auth: AuthLike) -> AuthContext:
    """Reading, pausing, resuming or ending a session: its user (`chat:access`) or an operator
    (`operator`) of its workspace. Starting one and sending messages need `chat:access`."""
    return require(auth, CHAT_ACCESS, OPERATOR)


class SessionService:
    """The session API (see the module docstring)."""

    def __init__(
        self,
        *,
        table: LiveSessions,
        changes: SessionChanges,
        admission: Admission,
        turns: Turns,
        applied: AppliedState,
        clock: Clock,
        leases: SessionLeases,
    ) -> None:
        self._leases = leases
        self._clock = clock
        self._table = table
        self._changes = changes
        self._admission = admission
        self._turns = turns
        self._applied = applied

    # ------------------------------------------------------------ sessions

    async def create(
        self,
        *,
        agent: str | None,
        team: str | None,
        auth: AuthLike,
        max_turns: int | None,
        idle_timeout: float | str | None,
        preferences: Mapping[str, Any] | None,
        priority: Priority | None,
        wait: float | None,
        features: Mapping[str, Any] | None = None,
    ) -> Session:
        checked = check_auth(auth)
        row = await self._admission.start(
            checked,
            agent=agent,
            team=team,
            max_turns=max_turns,
            idle_timeout=idle_timeout,
            preferences=preferences,
            priority=priority,
            wait=wait,
            features=features,
        )
        return Session(self, row, checked.acting_in(row.workspace_id))

    def get(self, session_id: str, *, auth: AuthLike) -> Session:
        checked = _session_reader(auth)
        row = self._table.visible(session_id, checked)
        return Session(self, row, checked.acting_in(row.workspace_id))

    def list_sessions(self, *, auth: AuthLike) -> list[Session]:
        """The live sessions held here in the caller's workspaces (in the one it acts in, when it
        names one)."""
        checked = _session_reader(auth)
        named = checked.workspace_id
        return [
            Session(self, row, checked.acting_in(row.workspace_id))
            for row in self._table.rows()
            if checked.covers(row.workspace_id) and (named is None or row.workspace_id == named)
        ]

    async def send(
        self, session_id: str, text: str, *, auth: AuthLike, wait: float | None
    ) -> TurnReply:
        checked = auth if isinstance(auth, AuthContext) else check_auth(auth)  # turns checks it
        return await self._turns.send(session_id, text, auth=checked, wait=wait)

    def stream(
        self, session_id: str, text: str, *, auth: AuthLike, wait: float | None
    ) -> AsyncIterator[TurnChunk]:
        """`send`, streamed: text pieces and tool events as they come, then the reply."""
        checked = auth if isinstance(auth, AuthContext) else check_auth(auth)

        def send(on_text: TextSink) -> Any:
            return self._turns.send(session_id, text, auth=checked, wait=wait, on_text=on_text)

        return stream_turn(send, self._turns.events, session_id)

    async def apply_decision(
        self, session_id: str, decision: RouteDecision, *, auth: AuthLike
    ) -> Session:
        checked = _session_reader(auth)
        live = self._table.live_or_raise(session_id, checked)
        async with self._leases.hold(live):
            self._changes.apply_outside(live, decision)
        return Session(self, live.row, checked)

    async def end(self, session_id: str, *, reason: str, auth: AuthLike) -> None:
        checked = _session_reader(auth)
        if self._table.visible(session_id, checked).state == "ended":
            return
        live = self._table.live_or_raise(session_id, checked)
        async with self._leases.hold(live):
            if live.row.state != "ended":  # another instance may have ended it meanwhile
                self._changes.end(live, reason)

    async def pause(self, session_id: str, *, auth: AuthLike) -> None:
        live = self._table.live_or_raise(session_id, _session_reader(auth))
        async with self._leases.hold(live):
            if live.row.state not in ("active", "paused"):
                raise SessionStateError(session_id, live.row.state, "only an active session pauses")
            self._table.transition(live, "paused", reason=None)

    async def resume(self, session_id: str, *, auth: AuthLike) -> None:
        """Active again; a session a person had goes back to its team's primary (or agent)."""
        checked = _session_reader(auth)
        row = self._table.visible(session_id, checked)
        team = self._applied.declared.teams.get(row.target) if row.kind == "team" else None
        live = self._table.live_or_raise(session_id, checked)
        async with self._leases.hold(live):
            row = live.row
            if row.state == "active":
                return
            if row.state == "ended":
                raise SessionStateError(session_id, "ended", "an ended session cannot resume")
            if row.current_agent is None:  # a person had it: the team's primary takes it back
                self._table.set_current(live, primary_member(team) if team else row.target)
            row.last_activity_at = self._clock.now()
            self._table.transition(live, "active", reason=None)

    async def await_human(self, session_id: str, *, auth: AuthLike, reason: str | None) -> None:
        live = self._table.live_or_raise(session_id, _session_reader(auth))
        async with self._leases.hold(live):
            if live.row.state == "ended":
                raise SessionStateError(session_id, "ended", "it cannot wait for a human")
            self._table.transition(live, "awaiting_human", reason=reason)

    # ------------------------------------------------------------ reading sessions

    def live_row(self, session_id: str) -> SessionRow | None:
        live = self._table.live.get(session_id)
        return None if live is None else live.row

    def session_row(self, session_id: str) -> SessionRow | None:
        """The in-memory row of a live session, else the stored one (None: unknown)."""
        return self._table.row(session_id)

    def open_rows(self) -> list[SessionRow]:
        """Every open session of the environment, the in-memory row when held here."""
        return self._table.open_rows()

    def workload(self, agent: str) -> int:
        """Live sessions whose current member is `agent`."""
        return self._table.workload(agent)

    @property
    def active_sessions(self) -> int:
        return len(self._table.live)

    # ------------------------------------------------------------ queued handoffs

    def serve_waiting_handoffs(
        self, team: str | None = None, specialization: str | None = None
    ) -> int:
        """Complete the queued handoffs of `team` / `specialization` (default: all) for which a
        member is free now, oldest first; how many completed."""
        waiting = self._table.waiting
        if not waiting.by_key:
            return 0
        return self._changes.request(waiting.keys(team, specialization))
