"""Queued handoffs inside the team router: queue a handoff no member can take, complete it later.

Role: part of `TeamRouter` (`runner.runtime.teams.router`). A handoff whose specialization has
no free member is queued in the session's `router_state["waiting"]` (event `handoff:queued`)
by `HandoffQueue.queue`; `retry` completes it when a member of that specialization is free: on
the session's next message, or when the runtime serves waiting sessions
(`TeamRouter.serve_waiting`, asked by `runner.runtime.sessions` as capacity frees up).

Invariants:
  - A queued handoff is never dropped: it waits until served, or is replaced by a newer handoff.
  - `since` records when it was queued and is kept while the session waits for the same
    specialization (its place in the line); the completed handoff carries `queued_for_s`.
  - A queue entry that no longer makes sense (no target, already with that specialization) is
    cleared as served.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.runtime.clock import Clock
from runner.runtime.teams.draft import RouteDraft, Workloads
from runner.runtime.teams.roster import Roster

__all__ = ["HandoffQueue"]


class HandoffQueue:
    """Queues and completes one team's handoffs (see the module docstring)."""

    __slots__ = ("_clock", "_roster")

    def __init__(self, roster: Roster, *, clock: Clock) -> None:
        self._roster = roster
        self._clock = clock

    def retry(self, draft: RouteDraft, workloads: Workloads) -> bool:
        """Complete the queued handoff if a member is free; False while it still waits."""
        waiting = draft.state_value("waiting")
        if not isinstance(waiting, Mapping):
            waiting = {}
        target = waiting.get("target")
        assert draft.agent is not None
        if not target or self._roster.specialization.get(draft.agent) == target:
            draft.edit_state().pop("waiting", None)
            return True
        member = self._roster.free_member(target, workloads=workloads, current=draft.agent)
        if member is None:
            return False
        draft.edit_state().pop("waiting", None)
        since = waiting.get("since")
        waited = (
            max(0.0, round(self._clock.now() - since, 3))
            if isinstance(since, (int, float)) and not isinstance(since, bool)
            else None
        )
        draft.hand_off(
            member.agent,
            trigger=waiting.get("trigger"),
            reason="queued handoff: free now",
            queued_for_s=waited,
        )
        return True

    def queue(self, draft: RouteDraft, *, target: str, trigger: str | None, reason: str) -> None:
        """Queue a handoff to `target` (the session stays with its member meanwhile)."""
        queued = draft.state_value("waiting")
        since = (
            queued.get("since")
            if isinstance(queued, Mapping) and queued.get("target") == target
            else None
        )
        if since is None:
            since = self._clock.now()  # keeps its place in the line while it waits for `target`
        draft.edit_state()["waiting"] = {
            "target": target,
            "trigger": trigger,
            "reason": reason,
            "since": since,
        }
        draft.events.append(
            (
                "handoff:queued",
                {"from": draft.agent, "target": target, "trigger": trigger, "reason": reason},
            )
        )
