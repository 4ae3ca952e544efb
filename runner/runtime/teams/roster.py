"""A team's members as its router sees them: the primary, specializations, who is free now.

Role: `TeamRouter` builds one `Roster` per team and shares it with its handoff queue and
escalation levels, so the rule for picking a member (`routing.select_member`: available, below
`max_workload`, most room, then priority, then declaration order) is applied in one place for
a trigger's handoff, a queued handoff and an escalation's handoff.

Invariant: `availability` is the live override mapping of this team (agent -> status) that
operators change (`runner.runtime.teams.availability`); the roster reads it on every pick and
never writes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.runtime.routing import select_member
from runner.runtime.teams.seam import primary_member
from runner.spec.models import Team, TeamMember

__all__ = ["Roster"]


class Roster:
    """Who is in a team and who can take a handoff (see the module docstring)."""

    __slots__ = ("agents", "availability", "primary", "specialization", "team")

    def __init__(self, team: Team, availability: Mapping[str, str]) -> None:
        self.team = team
        self.availability = availability
        self.primary = primary_member(team)
        self.agents = tuple(dict.fromkeys(m.agent for m in team.members))
        self.specialization = {m.agent: m.specialization for m in team.members}

    def free_member(
        self, target: str, *, workloads: Mapping[str, int], current: str | None
    ) -> TeamMember | None:
        """The member of specialization `target` that takes a handoff from `current` now."""
        return select_member(
            self.team,
            target,
            workloads=workloads,
            availability=self.availability,
            exclude=(current,) if current is not None else (),
        )
