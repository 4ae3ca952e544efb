"""The session store seam: what the runtime keeps of each session, and the Protocol it writes to.

Role: the runtime (its session table and admission, `runner.runtime.sessions`) writes a
session's row when it is created, when its state changes and when it ends, synchronously; turn
counters and token totals are written behind in batches (`save_counters`), at most
`AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` late and always on close. A new process on the same
store finds every open session with its state, conversation, pinned agent versions and router
state, and can continue it. SQLite first (`runner.state.sessions_sqlite`, in the registry's
file); PostgreSQL can follow by implementing `SessionStore`.

Invariant: a `SessionRow` is plain data (JSON-ready fields): a store persists it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runner.spec.vocabulary import SessionState

__all__ = ["SessionRow", "SessionStore"]


@dataclass(slots=True)
class SessionRow:
    """A session as stored. `pins`: agent spec name -> (foundry name, version)."""

    id: str
    env: str
    kind: Literal["agent", "team"]
    target: str
    user_id: str
    workspace_id: str | None
    state: SessionState
    conversation_id: str
    current_agent: str | None
    pins: dict[str, tuple[str, str]]
    created_at: float
    last_activity_at: float
    reason: str | None = None
    pools: list[str] = field(default_factory=list)
    max_turns: int | None = None
    idle_timeout: float | None = None
    preferences: dict[str, Any] = field(default_factory=dict)
    priority: str | None = None
    features: dict[str, Any] = field(default_factory=dict)
    """The feature toggles the session asked for (as given)."""
    config: dict[str, Any] = field(default_factory=dict)
    """The effective configuration, fixed at creation: workspace, preferences, features and,
    per agent, the function tools switched off and the structured inputs sent every turn.
    Read-only: the runtime gives sessions with the same configuration the same mapping."""
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    ended_at: float | None = None
    escalation: dict[str, Any] | None = None
    router_state: dict[str, Any] = field(default_factory=dict)


class SessionStore(Protocol):
    """Where the runtime's sessions live (one store per runtime, used from its event loop)."""

    def save(self, row: SessionRow) -> None:
        """Write a new session's row."""
        ...

    def save_state(self, row: SessionRow) -> None:
        """Write what changes after creation (state, reason, counters, current member, router
        state, escalation); the fields fixed at creation (pins, pools, preferences, features,
        config) stay."""
        ...

    def save_counters(self, rows: Iterable[SessionRow]) -> None:
        """`save_state` for many rows at once (the write-behind of turn counters)."""
        ...

    def load(self, session_id: str) -> SessionRow | None: ...

    def load_open(self, env: str) -> list[SessionRow]:
        """Every session of `env` that has not ended, oldest first."""
        ...

    def close(self) -> None: ...
