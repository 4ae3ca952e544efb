"""Queued handoffs inside the team router: queue a handoff no member can take, complete it later.

Role in the flow: `TeamRouter` (`runner.runtime.teams`) inherits these building blocks. A
handoff whose specialization has no free member is queued in `router_state["waiting"]` (event
`handoff:queued`) by `_queue`; `_retry_waiting` completes it when a member of that
specialization is free: on the session's next message, or when the runtime serves waiting
sessions (`TeamRouter.serve_waiting`, driven by `runner.runtime.waiting`).

Invariants:
  - A queued handoff is never dropped: it waits until served, or is replaced by a newer handoff.
  - `since` records when it was queued and is kept while the session waits for the same
    specialization (its place in the line); the completed handoff carries `queued_for_s`.
  - A queue entry that no longer makes sense (no target, already with that specialization) is
    cleared as served.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from runner.runtime.clock import Clock
from runner.runtime.decisions import Handoff
from runner.runtime.routing import select_member
from runner.runtime.team_outcome import _Outcome, _Workloads
from runner.spec.models import Team, TeamMember


class _WaitingHandoffs:
    """The router's queued-handoff blocks (mixed into `TeamRouter`, which sets these)."""

    team: Team
    clock: Clock
    availability: MutableMapping[str, str]
    _specialization: dict[str, str]

    def _free_member(
        self, target: str, *, workloads: _Workloads, current: str | None
    ) -> TeamMember | None:
        """The member of `target` that takes a handoff from `current` now (routing's rule)."""
        return select_member(
            self.team,
            target,
            workloads=workloads,
            availability=self.availability,
            exclude=(current,) if current is not None else (),
        )

    def _retry_waiting(self, out: _Outcome, workloads: _Workloads) -> bool:
        """Complete the queued handoff if a member is free; False while it still waits."""
        waiting = out.get("waiting")
        if not isinstance(waiting, Mapping):
            waiting = {}
        target = waiting.get("target")
        assert out.agent is not None
        if not target or self._specialization.get(out.agent) == target:
            out.rs().pop("waiting", None)
            return True
        member = self._free_member(target, workloads=workloads, current=out.agent)
        if member is None:
            return False
        out.rs().pop("waiting", None)
        since = waiting.get("since")
        waited = (
            max(0.0, round(self.clock.now() - since, 3))
            if isinstance(since, (int, float)) and not isinstance(since, bool)
            else None
        )
        out.handoffs.append(
            Handoff(
                out.agent,
                member.agent,
                waiting.get("trigger"),
                "queued handoff: free now",
                queued_for_s=waited,
            )
        )
        out.agent = member.agent
        return True

    def _queue(self, out: _Outcome, *, target: str, trigger: str | None, reason: str) -> None:
        queued = out.get("waiting")
        since = (
            queued.get("since")
            if isinstance(queued, Mapping) and queued.get("target") == target
            else None
        )
        if since is None:
            since = self.clock.now()  # keeps its place in the line while it waits for `target`
        out.rs()["waiting"] = {
            "target": target,
            "trigger": trigger,
            "reason": reason,
            "since": since,
        }
        out.events.append(
            (
                "handoff:queued",
                {"from": out.agent, "target": target, "trigger": trigger, "reason": reason},
            )
        )
