"""Live member availability: operators' overrides of the spec's `availability`, durable.

Role: the runtime's composition root builds one `MemberAvailability` per runtime from the
operator store (`runner.state.operators.AvailabilityStore`) and gives each team router the live
mapping of its team (`of`), so a router sees an operator's change at once. The operator API
(`runner.runtime.operators`) changes it through `set`, which validates and writes through.

Invariants:
  - A team's mapping (agent -> status) is one object for the runtime's life: routers rebuilt
    on reload get the same mapping back.
  - Only `AVAILABILITY` values for members of the team are ever stored.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from runner.runtime.errors import LifecycleError
from runner.spec.models import Team
from runner.spec.vocabulary import AVAILABILITY
from runner.state.operators import AvailabilityStore

__all__ = ["MemberAvailability"]


class MemberAvailability:
    """The availability board of one environment (see the module docstring)."""

    def __init__(self, env: str, store: AvailabilityStore) -> None:
        self._env = env
        self._store = store
        self._teams: dict[str, dict[str, str]] = store.availability(env)

    def of(self, team: str) -> MutableMapping[str, str]:
        """The live overrides of `team` (agent -> status)."""
        return self._teams.setdefault(team, {})

    def set(self, team: Team, agent: str, status: str, *, at: float) -> None:
        """Override `agent`'s availability in `team` (durable)."""
        if status not in AVAILABILITY:
            raise LifecycleError(f"availability {status!r} is not one of {', '.join(AVAILABILITY)}")
        if agent not in {m.agent for m in team.members}:
            raise LifecycleError(f"agent.{agent} is not a member of team.{team.name}")
        self.of(team.name)[agent] = status
        self._store.set_availability(self._env, team.name, agent, status, at=at)

    def effective(self, team: Team) -> dict[str, str]:
        """Every member's availability now: the override, else the spec's."""
        live = self._teams.get(team.name, {})
        return {m.agent: live.get(m.agent, m.availability) for m in team.members}
