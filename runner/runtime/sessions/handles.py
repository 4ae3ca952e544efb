"""What callers of the runtime hold: agent handles, turn replies and `Session` handles.

Role: the value types of the session API. `AgentHandle` names an applied agent version;
`TurnReply` is what a turn returns, `TurnChunk` a piece of a streamed one; `Session` is a
handle on one session, bound to the auth it was obtained with, that calls back into what owns
the session (`SessionOwner`: the session service, `runner.runtime.sessions.service`).

Invariants:
  - Value types are frozen; `Session` holds no state of its own beyond its id, auth and the
    last row it saw: it reads the runtime's in-memory row when the session is live.
  - Every call of a `Session` passes the auth it was bound to; the owner checks it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from runner.runtime.auth import AuthContext
from runner.runtime.events import Event
from runner.runtime.teams import Handoff
from runner.spec.vocabulary import SessionState
from runner.state.sessions import SessionRow

__all__ = ["AgentHandle", "Session", "SessionOwner", "TurnChunk", "TurnReply"]


@dataclass(frozen=True, slots=True)
class AgentHandle:
    name: str
    foundry_name: str
    version: str


@dataclass(frozen=True, slots=True)
class TurnReply:
    """What `Session.send` returns. `agent` is the answering agent's spec name (None: nobody
    answered, e.g. the session ended on max_turns or waits for a human)."""

    text: str
    agent: str | None
    session_id: str
    turn: int
    state: SessionState
    agent_version: str | None = None
    foundry_name: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    response_time_ms: float = 0.0
    handoffs: tuple[Handoff, ...] = ()
    reason: str | None = None
    cost: float | None = None
    """What the turn cost at the environment's `pricing` (None: no price for its model)."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def ended(self) -> bool:
        return self.state == "ended"


@dataclass(frozen=True, slots=True)
class TurnChunk:
    """One piece of a streamed turn (`Session.stream`): `text` (a piece of reply text), `tool`
    (`event`: the session's `tool:*` event) or, last, `reply` (the `TurnReply`)."""

    type: Literal["text", "tool", "reply"]
    text: str = ""
    event: Event | None = None
    reply: TurnReply | None = None


class SessionOwner(Protocol):
    """What a `Session` handle needs from the runtime that holds the session."""

    def live_row(self, session_id: str) -> SessionRow | None:
        """The in-memory row while the session is live here (None: not live here)."""
        ...

    async def send(
        self, session_id: str, text: str, *, auth: AuthContext, wait: float | None
    ) -> TurnReply: ...

    def stream(
        self, session_id: str, text: str, *, auth: AuthContext, wait: float | None
    ) -> AsyncIterator[TurnChunk]: ...

    async def pause(self, session_id: str, *, auth: AuthContext) -> None: ...

    async def resume(self, session_id: str, *, auth: AuthContext) -> None: ...

    async def end(self, session_id: str, *, reason: str, auth: AuthContext) -> None: ...


class Session:
    """A handle on one session, bound to the auth it was obtained with (checked on each call)."""

    __slots__ = ("_auth", "_owner", "_row")

    def __init__(self, owner: SessionOwner, row: SessionRow, auth: AuthContext) -> None:
        self._owner = owner
        self._row = row
        self._auth = auth

    def _fresh(self) -> SessionRow:
        row = self._owner.live_row(self._row.id)
        if row is not None:
            self._row = row
        return self._row

    @property
    def id(self) -> str:
        return self._row.id

    @property
    def session_id(self) -> str:
        return self._row.id

    @property
    def state(self) -> SessionState:
        return self._fresh().state

    @property
    def reason(self) -> str | None:
        return self._fresh().reason

    @property
    def conversation_id(self) -> str:
        return self._row.conversation_id

    @property
    def agent(self) -> str | None:
        """The member that answers next (for an agent session: that agent)."""
        return self._fresh().current_agent

    @property
    def team(self) -> str | None:
        return self._row.target if self._row.kind == "team" else None

    @property
    def turns(self) -> int:
        return self._fresh().turns

    @property
    def max_turns(self) -> int | None:
        return self._row.max_turns

    @property
    def workspace_id(self) -> str | None:
        return self._row.workspace_id

    @property
    def escalation(self) -> Mapping[str, Any] | None:
        return self._fresh().escalation

    @property
    def versions(self) -> dict[str, str]:
        """Agent spec name -> the pinned Foundry version."""
        return {name: pin[1] for name, pin in self._fresh().pins.items()}

    @property
    def tokens(self) -> int:
        row = self._fresh()
        return row.input_tokens + row.output_tokens

    @property
    def row(self) -> SessionRow:
        """The stored row (read-only by convention; for tests, tools and the teams coordinator)."""
        return self._fresh()

    async def send(self, text: str, *, wait: float | None = None) -> TurnReply:
        return await self._owner.send(self._row.id, text, auth=self._auth, wait=wait)

    def stream(self, text: str, *, wait: float | None = None) -> AsyncIterator[TurnChunk]:
        """`send`, streamed: `async for chunk in session.stream(text)` yields text pieces as
        they arrive and the turn's tool events, then the `TurnReply` (`chunk.reply`)."""
        return self._owner.stream(self._row.id, text, auth=self._auth, wait=wait)

    async def pause(self) -> None:
        await self._owner.pause(self._row.id, auth=self._auth)

    async def resume(self) -> None:
        await self._owner.resume(self._row.id, auth=self._auth)

    async def end(self, reason: str = "ended") -> None:
        await self._owner.end(self._row.id, reason=reason, auth=self._auth)

    def __repr__(self) -> str:
        row = self._fresh()
        return f"<Session {row.id} {row.kind}.{row.target} {row.state} turns={row.turns}>"
