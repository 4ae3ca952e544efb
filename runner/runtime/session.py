"""What callers of the runtime hold: auth, agent handles, turn replies and `Session` handles.

Role: the value types of the lifecycle API (`runner.runtime.lifecycle`). `AuthContext` is what
every session call is checked against (`check_auth`); `AgentHandle` names an applied agent
version; `TurnReply` is what a turn returns; `Session` is a handle on one session, bound to the
auth it was obtained with.

Invariants:
  - Value types are frozen; `Session` holds no state of its own beyond its id, auth and the
    last row it saw: it reads the runtime's in-memory row when the session is live.
  - `Session.send` goes straight to the turn path (`runner.runtime.turns`) with the auth it
    was bound to; the other calls go through the `Lifecycle` facade, which checks auth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.runtime.errors import PermissionDeniedError
from runner.runtime.teams import Handoff
from runner.spec.vocabulary import SessionState
from runner.state.sessions import SessionRow

if TYPE_CHECKING:
    from runner.runtime.lifecycle import Lifecycle

__all__ = [
    "CHAT_ACCESS",
    "AgentHandle",
    "AuthContext",
    "AuthLike",
    "Session",
    "TurnReply",
    "check_auth",
]

CHAT_ACCESS = "chat:access"


@dataclass(frozen=True, slots=True)
class AuthContext:
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

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def ended(self) -> bool:
        return self.state == "ended"


class Session:
    """A handle on one session, bound to the auth it was obtained with (checked on each call)."""

    __slots__ = ("_auth", "_lc", "_row")

    def __init__(self, lc: Lifecycle, row: SessionRow, auth: AuthContext) -> None:
        self._lc = lc
        self._row = row
        self._auth = auth

    def _fresh(self) -> SessionRow:
        live = self._lc.sessions.live.get(self._row.id)
        if live is not None:
            self._row = live.row
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
        return await self._lc.turns.send(self._row.id, text, auth=self._auth, wait=wait)

    async def pause(self) -> None:
        await self._lc.pause_session(self._row.id, auth=self._auth)

    async def resume(self) -> None:
        await self._lc.resume_session(self._row.id, auth=self._auth)

    async def end(self, reason: str = "ended") -> None:
        await self._lc.end_agent_session(self._row.id, reason=reason, auth=self._auth)

    def __repr__(self) -> str:
        row = self._fresh()
        return f"<Session {row.id} {row.kind}.{row.target} {row.state} turns={row.turns}>"
