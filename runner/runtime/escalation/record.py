"""One escalation as it is stored and reported: its record, statuses and event data.

Role: the data half of the escalation engine. The team router opens escalations and stores
`Escalation.as_dict()` in the session row (the one place an escalation's current state lives);
operators read it back with `read_escalation` (None for what another router stored), and every
`escalation:*` event carries `escalation_event_data` (the escalations table and notifications
are derived from those events).

Invariants:
  - `as_dict` / `from_dict` round-trip; `from_dict` raises `EscalationStateError` for an
    unknown status.
  - An escalation's id is deterministic per (session, level) (`escalation_id`): a level opens
    at most once per session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "ACTIVE",
    "AWAITING_OPERATOR",
    "IN_EFFECT",
    "RUNNER_ACTOR",
    "STATUSES",
    "TERMINAL",
    "Escalation",
    "EscalationStateError",
    "EscalationStatus",
    "escalation_event_data",
    "escalation_id",
    "read_escalation",
]

EscalationStatus = Literal[
    "suggested",
    "pending_approval",
    "approved",
    "rejected",
    "in_effect",
    "claimed",
    "resolved",
    "handed_back",
]

STATUSES: tuple[EscalationStatus, ...] = get_args(EscalationStatus)
TERMINAL: frozenset[EscalationStatus] = frozenset({"rejected", "handed_back", "resolved"})
AWAITING_OPERATOR: frozenset[EscalationStatus] = frozenset({"pending_approval", "suggested"})
IN_EFFECT: frozenset[EscalationStatus] = frozenset({"in_effect", "approved"})  # acted on now
ACTIVE: frozenset[EscalationStatus] = IN_EFFECT | {"claimed"}  # a person may hold it

RUNNER_ACTOR = "runner"  # who closes an escalation superseded by a higher level


class EscalationStateError(ValueError):
    """A transition that the escalation's status (or target, or operator) does not allow."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """One escalation of a session to a level of its team's escalation path."""

    id: str
    session_id: str
    level: int
    target: str  # a specialization, or "human"
    status: EscalationStatus
    opened_at: float
    notify: tuple[str, ...] = ()
    decided_by: str | None = None  # who approved, rejected or accepted it
    decided_at: float | None = None
    reason: str | None = None  # why it was rejected
    operator: str | None = None  # who claimed it (human target)
    claimed_at: float | None = None
    closed_by: str | None = None  # who resolved or handed it back
    closed_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (what a session stores), inverse of `from_dict`."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "level": self.level,
            "target": self.target,
            "status": self.status,
            "opened_at": self.opened_at,
            "notify": list(self.notify),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "reason": self.reason,
            "operator": self.operator,
            "claimed_at": self.claimed_at,
            "closed_by": self.closed_by,
            "closed_at": self.closed_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        status = data["status"]
        if status not in STATUSES:
            raise EscalationStateError(f"unknown escalation status {status!r}")
        return cls(
            id=str(data["id"]),
            session_id=str(data["session_id"]),
            level=int(data["level"]),
            target=str(data["target"]),
            status=status,
            opened_at=float(data["opened_at"]),
            notify=tuple(data.get("notify") or ()),
            decided_by=data.get("decided_by"),
            decided_at=data.get("decided_at"),
            reason=data.get("reason"),
            operator=data.get("operator"),
            claimed_at=data.get("claimed_at"),
            closed_by=data.get("closed_by"),
            closed_at=data.get("closed_at"),
        )


def read_escalation(data: Any) -> Escalation | None:
    """`data` as an Escalation if it is one as the team router writes it, else None (other
    routers may store anything in a session's escalation)."""
    if not isinstance(data, Mapping):
        return None
    try:
        return Escalation.from_dict(data)
    except (EscalationStateError, KeyError, TypeError, ValueError):
        return None


def escalation_id(session_id: str, level: int) -> str:
    """Deterministic: a level opens at most once per session."""
    return f"esc_{session_id.removeprefix('sess_')}_{level}"


def escalation_event_data(
    esc: Escalation, *, body: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """The data of an `escalation:*` event (the runtime adds the session id)."""
    data: dict[str, Any] = {
        "escalation_id": esc.id,
        "level": esc.level,
        "target": esc.target,
        "status": esc.status,
        "notify": list(esc.notify),
        "escalation": body if body is not None else esc.as_dict(),
    }
    data.update(extra)
    return data
