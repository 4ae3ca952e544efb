"""Teams at run time: the router seam, the team router and the members' live availability.

Role: a team session asks its team's router on every user message which member answers
(`seam`: `TurnContext` in, `RouteDecision` out). `TeamRouter` (`router`) is composed of a
`Roster` (who is free), a `HandoffQueue` (handoffs waiting for a free member) and
`EscalationLevels`, and drafts each decision in a `RouteDraft`; `MemberAvailability` holds the
operators' overrides of each member's availability. `check_team` checks a team made in code.

May import: `runner.spec`, `runner.state` (the availability store Protocol), the runtime's
neutral modules (clock, errors), `runner.runtime.routing` and `runner.runtime.escalation`.
Nothing here knows sessions: the runtime (`runner.runtime.sessions`) applies decisions, and
the operator side (`runner.runtime.operators`) reacts to their events.
"""

from runner.runtime.teams.availability import MemberAvailability
from runner.runtime.teams.check import check_team
from runner.runtime.teams.router import (
    TeamRouter,
    build_team_router,
    team_revision,
    team_router_factory,
)
from runner.runtime.teams.seam import (
    Handoff,
    PrimaryRouter,
    QueueServingRouter,
    RouteDecision,
    Router,
    RouterFactory,
    TurnContext,
    Workload,
    primary_member,
)

__all__ = [
    "Handoff",
    "MemberAvailability",
    "PrimaryRouter",
    "QueueServingRouter",
    "RouteDecision",
    "Router",
    "RouterFactory",
    "TeamRouter",
    "TurnContext",
    "Workload",
    "build_team_router",
    "check_team",
    "primary_member",
    "team_revision",
    "team_router_factory",
]
