"""The seam between sessions and team routing: what a router is asked and what it decides.

Role: a team session asks its team's `Router` on every user message which member answers.
`TeamRouter` (`runner.runtime.teams.router`) implements handoff triggers, queued handoffs and
escalation; `PrimaryRouter` keeps the current member (it answers when a router cannot be
built); a caller of `Lifecycle.open` may pass its own `RouterFactory`. The runtime
(`runner.runtime.sessions`) applies a `RouteDecision` the same way whether it comes from a turn
or from outside one (`Lifecycle.apply_decision`, e.g. an approved escalation).

Applying a decision (in this order): `router_state` and `escalation` are stored; for each
handoff `handoff:initiated` is emitted; `agent` becomes the session's current member (None: no
agent answers, e.g. a human has the conversation); `state` (if set) is entered with
`session:state-changed`; `events` are emitted verbatim (`escalation:*` ...); after the answering
agent replied (or at once when none answers) `handoff:completed` follows for each handoff.

A handoff the router could not complete (no free member, `on_no_free_member: wait`) is queued
in `router_state["waiting"]`; it is completed by whichever comes first: the session's next
message (the router re-tries it) or a member of that specialization freeing up (a session of
theirs ends, is handed off away or goes to a person, they become `available` again, a reload
raises `max_workload`, or at open after a restart). The latter is a decision outside a turn
(`QueueServingRouter.serve_waiting`, asked by the runtime's session changes):
`handoff:completed` carries `queued_for_s`, and the session's next message is answered by the
new member.

Invariant: routers are pure with respect to the runtime: they read `TurnContext`, return a
decision, and keep per-session memory only in `router_state` (persisted with the session, so a
restarted process routes the same way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from runner.spec.models import EscalationPath, Team
from runner.spec.vocabulary import SessionState

__all__ = [
    "Handoff",
    "PrimaryRouter",
    "QueueServingRouter",
    "RouteDecision",
    "Router",
    "RouterFactory",
    "TurnContext",
    "Workload",
    "primary_member",
]

Workload = Callable[[str], int]  # live sessions whose current member is this agent


@dataclass(frozen=True, slots=True)
class Handoff:
    from_agent: str | None
    to: str  # an agent's spec name, or "human"
    trigger: str | None = None
    reason: str | None = None
    queued_for_s: float | None = None  # a queued handoff: how long it waited for a member

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "from": self.from_agent,
            "to": self.to,
            "trigger": self.trigger,
            "reason": self.reason,
        }
        if self.queued_for_s is not None:
            data["queued_for_s"] = self.queued_for_s
        return data


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What a router sees of a session when a user message arrives."""

    session_id: str
    team: Team
    escalation_path: EscalationPath | None
    text: str
    turn: int  # 1-based number of this user message
    current_agent: str | None
    state: SessionState
    escalation: Mapping[str, Any] | None
    router_state: Mapping[str, Any]
    preferences: Mapping[str, Any]
    priority: str | None
    workload: Workload


@dataclass(frozen=True, slots=True)
class RouteDecision:
    agent: str | None  # the member that answers; None: no agent answers this message
    handoffs: tuple[Handoff, ...] = ()
    state: SessionState | None = None
    escalation: Mapping[str, Any] | None = None
    clear_escalation: bool = False
    router_state: Mapping[str, Any] | None = None
    events: tuple[tuple[str, Mapping[str, Any]], ...] = field(default=())


class Router(Protocol):
    """What a team session asks on every user message (sync or async)."""

    def route(self, turn: TurnContext) -> RouteDecision | Awaitable[RouteDecision]: ...


@runtime_checkable
class QueueServingRouter(Router, Protocol):
    """A router that queues handoffs (`router_state["waiting"]`) and completes them outside a
    turn when a member frees up."""

    def serve_waiting(
        self, *, current_agent: str | None, router_state: Mapping[str, Any], workload: Workload
    ) -> RouteDecision | None:
        """The session's queued handoff completed now, None while no member is free."""
        ...


RouterFactory = Callable[[Team, EscalationPath | None], Router]


def primary_member(team: Team) -> str:
    """The member a team session starts with: the first `primary`, else the best priority."""
    for member in team.members:
        if member.role == "primary":
            return member.agent
    return min(team.members, key=lambda m: m.priority).agent


class PrimaryRouter:
    """No routing: the current member answers every message (a human keeps what it has)."""

    def __init__(self, team: Team, escalation_path: EscalationPath | None = None) -> None:
        self.team = team

    def route(self, turn: TurnContext) -> RouteDecision:
        if turn.state == "awaiting_human":
            return RouteDecision(agent=None)
        return RouteDecision(agent=turn.current_agent or primary_member(self.team))
