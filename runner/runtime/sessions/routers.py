"""The team routers of one runtime: one per declared team, rebuilt on every load.

Role: the turn path asks `for_team(team)` which router routes a team session; the session
changes ask `queue_server(team)` for a router that serves queued handoffs; the operator side
asks `team_router(team)` for the team router itself (its operator entry points). Routers come
from the `RouterFactory` the composition root picked (`runner.runtime.teams.
team_router_factory` unless the caller of `Lifecycle.open` passed one).

Invariant: a team whose router cannot be built is routed by `PrimaryRouter` (the current
member answers), logged; a router bug never breaks a session.
"""

from __future__ import annotations

import logging

from runner.runtime.errors import LifecycleError, UnknownTeamError
from runner.runtime.sessions.applied import Declared
from runner.runtime.teams import (
    PrimaryRouter,
    QueueServingRouter,
    Router,
    RouterFactory,
    TeamRouter,
)

__all__ = ["TeamRouters"]

log = logging.getLogger("runner.runtime")


class TeamRouters:
    """The routers by team (see the module docstring)."""

    def __init__(self, factory: RouterFactory) -> None:
        self._factory = factory
        self.by_team: dict[str, Router] = {}

    def build(self, declared: Declared) -> None:
        """One router per declared team (the primary answers when the factory fails)."""
        routers: dict[str, Router] = {}
        for name, team in declared.teams.items():
            path = declared.escalation_paths.get(team.workflow.escalation_path or "")
            try:
                router = self._factory(team, path)
            except Exception:
                log.exception("team.%s: router could not be built; the primary answers", name)
                router = PrimaryRouter(team, path)
            routers[name] = router
        self.by_team = routers

    def for_team(self, team: str) -> Router | None:
        return self.by_team.get(team)

    def queue_server(self, team: str) -> QueueServingRouter | None:
        """The team's router if it serves queued handoffs."""
        router = self.by_team.get(team)
        return router if isinstance(router, QueueServingRouter) else None

    def team_router(self, team: str) -> TeamRouter:
        """The team's router for operators, who need the team router (not a custom one)."""
        router = self.by_team.get(team)
        if router is None:
            raise UnknownTeamError(f"team.{team} is neither applied nor declared")
        if not isinstance(router, TeamRouter):
            raise LifecycleError(
                f"team.{team} is routed by {type(router).__name__}, not the team router; "
                "operators need runner.runtime.teams.build_team_router"
            )
        return router
