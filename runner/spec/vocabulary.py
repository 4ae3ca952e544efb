"""The closed words of the spec format that later layers share: one home for each.

Role: the spec format names a few fixed values that the checks, the runtime (routing, teams,
pools, sessions) and the runtime's stores all compare against. Each is defined here once, as a
constant or a `Literal` with the tuple of its values, so no layer spells it again.

  HUMAN            the handoff / escalation target that means a person, not a specialization
  Priority         a session's priority; PRIORITY_RANK orders them (urgent first) and
                   `priority_rank` ranks a session without one (or an unknown one) as `medium`
  Availability     a team member's availability (the spec's default, or an operator's override)
  SessionState     the states of a runtime session
  Permission       what an identity may do (an Environment's `auth:` grants them; the runtime
                   and `runner serve` check them); ALL_WORKSPACES (`*`) grants every workspace

Invariant: no imports from runner; nothing here changes at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

__all__ = [
    "ALL_WORKSPACES",
    "AVAILABILITY",
    "HUMAN",
    "PERMISSIONS",
    "PRIORITIES",
    "PRIORITY_RANK",
    "SESSION_STATES",
    "Availability",
    "Permission",
    "Priority",
    "SessionState",
    "priority_rank",
]

HUMAN = "human"

Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
PRIORITY_RANK: Mapping[str, int] = {"urgent": 0, "high": 1, "medium": 2, "low": 3}

Availability = Literal["available", "busy", "offline"]
AVAILABILITY: tuple[Availability, ...] = get_args(Availability)

SessionState = Literal["active", "paused", "awaiting_human", "ended"]
SESSION_STATES: tuple[SessionState, ...] = get_args(SessionState)


Permission = Literal["chat:access", "operator", "admin", "metrics:read"]
PERMISSIONS: tuple[Permission, ...] = get_args(Permission)
ALL_WORKSPACES = "*"


def priority_rank(priority: str | None) -> int:
    """The serving rank of a priority: 0 (urgent) to 3 (low); none or unknown ranks `medium`."""
    return PRIORITY_RANK.get(priority or "", PRIORITY_RANK["medium"])
