"""The session store seam: what the runtime keeps of each session, and the Protocol it writes to.

Role: the runtime (its session table and admission, `runner.runtime.sessions`) writes a
session's row when it is created, when its state changes and when it ends, synchronously; turn
counters and token totals are written behind in batches (`save_counters`), at most
`AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` late and always on close. A new process on the same
store finds every open session with its state, conversation, pinned agent versions and router
state, and can continue it. On SQLite (`runner.state.sessions_sqlite`, in the registry's file)
or PostgreSQL (`runner.state.pg_sessions`).

Leases (many instances on one store). A store is opened for one `owner` (a runtime instance).
Between turns nobody holds a session, so any instance can serve it; a turn (or an end, a pause,
an expiry) takes the session's lease first (`take_lease`: atomic, across processes and hosts),
and writes the row and gives the lease up in one statement when it is done (`release`). A lease
expires at `until` (wall clock): an instance that died mid-turn holds its sessions only until
then, and its last completed writes are all there is (nothing it wrote is lost). A store never
writes a row another instance holds under an unexpired lease, nor a row another instance wrote
since this one did (its copy is stale: `take_lease` says so and the runtime re-reads it).

Invariant: a `SessionRow` is plain data (JSON-ready fields): a store persists it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runner.spec.vocabulary import SessionState

__all__ = ["Lease", "SessionRow", "SessionStore"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A session's lease, taken. `stale`: another instance wrote the session since this owner
    last did: re-read it before acting on it."""

    stale: bool


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

    @property
    def owner(self) -> str:
        """The instance this store writes for (lease owner, last writer)."""
        ...

    def take_lease(self, session_id: str, *, until: float) -> Lease | None:
        """Hold the session until `until` (wall clock) unless another owner holds an unexpired
        lease on it; None then, or when the session is unknown. Atomic across processes."""
        ...

    def renew_leases(self, session_ids: Iterable[str], *, until: float) -> None:
        """Move the leases this owner holds on `session_ids` to `until` (a long turn)."""
        ...

    def release(self, row: SessionRow) -> bool:
        """Write what `save_state` writes and give the lease up, in one statement; False (and
        nothing written) when this owner no longer held it."""
        ...

    def release_many(self, rows: Iterable[SessionRow]) -> None:
        """`release` for many rows in one transaction (rows whose lease is lost are skipped)."""
        ...

    def written_elsewhere(self, session_ids: Iterable[str]) -> dict[str, str]:
        """Of `session_ids`, those another owner wrote since this one did: id -> stored state."""
        ...

    def save(self, row: SessionRow, *, lease_until: float | None = None) -> None:
        """Write a new session's row (held by this owner until `lease_until` when given: its
        creator acts on it next)."""
        ...

    def save_state(self, row: SessionRow) -> None:
        """Write what changes after creation (state, reason, counters, current member, router
        state, escalation); the fields fixed at creation (pins, pools, preferences, features,
        config) stay. Not written when another owner holds the session or wrote it since."""
        ...

    def save_counters(self, rows: Iterable[SessionRow]) -> None:
        """`save_state` for many rows at once (the write-behind of turn counters)."""
        ...

    def load(self, session_id: str) -> SessionRow | None: ...

    def load_open(self, env: str) -> list[SessionRow]:
        """Every session of `env` that has not ended, oldest first."""
        ...

    def load_expired(self, env: str, *, now: float, max_age: float | None) -> list[SessionRow]:
        """Open sessions of `env` idle past their idle timeout at `now`, or (with `max_age`)
        created more than `max_age` seconds before it."""
        ...

    def close(self) -> None: ...
