"""A team route being built: the mutable draft of one decision, and the members' live workloads.

Role: `TeamRouter` (`runner.runtime.teams.router`) and the parts it is composed of (the
handoff queue, the escalation levels) write one `RouteDraft` per routed message (or operator
request) and read workloads through `Workloads`; `RouteDraft.decision()` freezes it into the
`RouteDecision` the runtime applies.

Invariants:
  - The session's `router_state` is copy-on-write: the session's mapping is only read
    (`state_value`) until a part changes it (`edit_state`), so the common turn copies nothing.
  - Every handoff is recorded where the answering member changes (`hand_off`, `to_human`), so
    the draft's `agent` is always the member that answers after its handoffs.
  - `Workloads` reads `TurnContext.workload` lazily, per member asked, never all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.runtime.teams.seam import Handoff, RouteDecision, Workload
from runner.spec.vocabulary import HUMAN, SessionState

__all__ = ["RouteDraft", "Workloads"]


class Workloads(Mapping[str, int]):
    """The live workloads of a team's members, read lazily from `TurnContext.workload`."""

    __slots__ = ("_agents", "_fn")

    def __init__(self, fn: Workload, agents: tuple[str, ...]) -> None:
        self._fn = fn
        self._agents = agents

    def __getitem__(self, agent: str) -> int:
        return self._fn(agent)

    def get(self, agent: str, default: Any = None) -> Any:  # every agent has a workload
        return self._fn(agent)

    def __iter__(self) -> Iterator[str]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)


@dataclass
class RouteDraft:
    """A decision being built (mutable), turned into a frozen RouteDecision at the end."""

    agent: str | None
    router_state: dict[str, Any] | None = None  # copy-on-write of the session's router_state
    base_state: Mapping[str, Any] = field(default_factory=dict)
    handoffs: list[Handoff] = field(default_factory=list)
    events: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    state: SessionState | None = None
    escalation: dict[str, Any] | None = None

    def edit_state(self) -> dict[str, Any]:
        """The session's router state, copied on first write."""
        if self.router_state is None:
            self.router_state = dict(self.base_state)
        return self.router_state

    def state_value(self, key: str) -> Any:
        source = self.router_state if self.router_state is not None else self.base_state
        return source.get(key)

    def hand_off(
        self,
        to_agent: str,
        *,
        trigger: str | None,
        reason: str | None,
        queued_for_s: float | None = None,
    ) -> None:
        """The session goes to member `to_agent`."""
        self.handoffs.append(Handoff(self.agent, to_agent, trigger, reason, queued_for_s))
        self.agent = to_agent

    def to_human(self, *, trigger: str | None, reason: str | None) -> None:
        """The session goes to a person (once); the member it leaves is remembered for the
        hand-back (`router_state["before_human"]`)."""
        if self.state == "awaiting_human":
            return
        self.handoffs.append(Handoff(self.agent, HUMAN, trigger, reason))
        self.edit_state()["before_human"] = self.agent
        self.agent = None
        self.state = "awaiting_human"

    def drop_queued(self) -> None:
        """A newer handoff replaces the queued one."""
        if self.state_value("waiting"):
            self.edit_state().pop("waiting", None)

    def decision(self) -> RouteDecision:
        return RouteDecision(
            agent=self.agent,
            handoffs=tuple(self.handoffs),
            state=self.state,
            escalation=self.escalation,
            router_state=self.router_state,
            events=tuple(self.events),
        )
