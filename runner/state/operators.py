"""The operator side's durable records, and the store Protocols that keep them.

Role: the runtime's operator side (`runner.runtime.operators`) and the team routers' member
availability (`runner.runtime.teams`) keep here what must survive a restart:

  HumanQueueStore     sessions waiting for a person (one item per session while it is
                      `awaiting_human`, with who claimed it) and the transcript of what the user
                      and the operators wrote meanwhile; written at once
  EscalationHistory   every escalation of every team session, as its status changes; written
                      behind (`flush`), since the current escalation also lives in the session
                      row (the one place it is decided from)
  AvailabilityStore   member availability as operators set it (overrides the spec's)

`OperatorStore` is all three with `close`: on SQLite (`runner.state.operators_sqlite`, in the
registry's file) or PostgreSQL (`runner.state.pg_operators`).

Invariants: records are frozen; `claim` is atomic (two operators, even in two processes, never
both hold a session).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AvailabilityStore",
    "EscalationHistory",
    "HumanQueueStore",
    "OperatorStore",
    "QueueItem",
    "StoredEscalation",
    "TranscriptEntry",
]


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A session waiting for (or held by) a person."""

    session_id: str
    env: str
    team: str | None
    workspace_id: str | None
    user_id: str
    reason: str | None
    trigger: str | None
    escalation_id: str | None
    level: int | None
    previous_agent: str | None  # the member that had the session before the person
    priority: str | None
    enqueued_at: float
    claimed_by: str | None = None
    claimed_at: float | None = None

    @property
    def claimed(self) -> bool:
        return self.claimed_by is not None


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One message written while a person had the session."""

    session_id: str
    role: str  # "user" (while waiting for a person) or "operator"
    author: str | None
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class StoredEscalation:
    """An escalation as the history keeps it (`escalation` is `Escalation.as_dict()`)."""

    env: str
    team: str | None
    session_open: bool
    escalation: Mapping[str, Any]  # `Escalation.as_dict()`

    @property
    def status(self) -> str:
        return str(self.escalation["status"])

    @property
    def session_id(self) -> str:
        return str(self.escalation["session_id"])


class HumanQueueStore(Protocol):
    def enqueue(self, item: QueueItem) -> None:
        """Put a session in the queue; a session already there keeps its place and claim."""
        ...

    def remove(self, session_id: str) -> bool: ...

    def get(self, session_id: str) -> QueueItem | None: ...

    def items(self, env: str, *, workspace: str | None = None) -> list[QueueItem]:
        """The queue of `env` (of one workspace when given): most urgent first, then oldest."""
        ...

    def claim(self, session_id: str, *, operator: str, at: float) -> bool:
        """Claim for `operator`; False when the session is not queued or another holds it."""
        ...

    def add_message(
        self, session_id: str, *, role: str, author: str | None, text: str, at: float
    ) -> None: ...

    def messages(self, session_id: str) -> list[TranscriptEntry]: ...


class EscalationHistory(Protocol):
    def record_escalation(
        self, env: str, escalation: Mapping[str, Any], *, team: str | None, at: float
    ) -> None:
        """Insert or update one escalation (`Escalation.as_dict()`) by its id (buffered)."""
        ...

    def session_closed(self, session_id: str) -> None:
        """The session ended: its escalations stay as history, no longer open (buffered)."""
        ...

    def escalations(
        self,
        env: str,
        *,
        statuses: Iterable[str] | None = None,
        session_id: str | None = None,
        open_sessions_only: bool = False,
    ) -> list[StoredEscalation]: ...

    def flush(self) -> None:
        """Write what `record_escalation` and `session_closed` buffered."""
        ...


class AvailabilityStore(Protocol):
    def set_availability(
        self, env: str, team: str, agent: str, status: str, *, at: float
    ) -> None: ...

    def availability(self, env: str) -> dict[str, dict[str, str]]:
        """team -> agent -> status, as operators last set it."""
        ...


class OperatorStore(HumanQueueStore, EscalationHistory, AvailabilityStore, Protocol):
    def close(self) -> None:
        """Flush, then release the store (not a connection it was given)."""
        ...
