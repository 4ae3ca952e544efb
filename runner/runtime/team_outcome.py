"""A team route being built: the mutable outcome and the members' live workloads.

Role in the flow: `TeamRouter` (`runner.runtime.teams`) and its building blocks
(`team_waiting`, `team_escalation`) write one `_Outcome` per routed message and read workloads
through `_Workloads`; `_Outcome.decision()` freezes it into the `RouteDecision` the Lifecycle
acts on.

Invariants:
  - `router_state` is copy-on-write: the session's mapping is only read (`base_state`) until a
    block changes it (`rs()`), so the common turn copies nothing.
  - `_Workloads` reads `TurnContext.workload` lazily, per member asked, never all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.runtime.decisions import Handoff, RouteDecision
from runner.spec.vocabulary import SessionState


class _Workloads(Mapping[str, int]):
    """The live workloads of a team's members, read lazily from `TurnContext.workload`."""

    __slots__ = ("_agents", "_fn")

    def __init__(self, fn: Callable[[str], int], agents: tuple[str, ...]) -> None:
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
class _Outcome:
    """A decision being built (mutable), turned into a frozen RouteDecision at the end."""

    agent: str | None
    router_state: dict[str, Any] | None = None  # copy-on-write of the session's router_state
    base_state: Mapping[str, Any] = field(default_factory=dict)
    handoffs: list[Handoff] = field(default_factory=list)
    events: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    state: SessionState | None = None
    escalation: dict[str, Any] | None = None

    def rs(self) -> dict[str, Any]:
        if self.router_state is None:
            self.router_state = dict(self.base_state)
        return self.router_state

    def get(self, key: str) -> Any:
        source = self.router_state if self.router_state is not None else self.base_state
        return source.get(key)

    def decision(self) -> RouteDecision:
        return RouteDecision(
            agent=self.agent,
            handoffs=tuple(self.handoffs),
            state=self.state,
            escalation=self.escalation,
            router_state=self.router_state,
            events=tuple(self.events),
        )
