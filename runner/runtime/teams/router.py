"""Teams at run time: the router a team session asks on every user message (handoffs, escalation).

Role: the runtime builds one `TeamRouter` per team (through the factory its composition root
picks, `team_router_factory`, with the runtime's clock and the team's live availability) and
asks it, on each user message, which member answers. The router is composed of a `Roster`
(who is free), a `HandoffQueue` (queued handoffs) and `EscalationLevels`, and runs the pure
engines in this order:

  1. a handoff queued earlier (`on_no_free_member: wait`) and not yet served is re-tried
     first;
  2. `routing.decide_handoff` evaluates the answering member's triggers (lowest priority number
     wins); the target specialization is served by `routing.select_member` (most room under
     `max_workload`, then lowest priority) with the live workloads of `TurnContext.workload`;
     a `human` target puts the session in `awaiting_human`;
  3. `escalation.next_level` opens at most one level of the team's escalation path (levels are
     never re-opened: the opened numbers live in `router_state["opened"]`); `auto_escalate`
     without approval takes effect at once (`effect_of` / `handoff_target`), `requires_approval`
     waits in `pending_approval`, anything else is `suggested` to an operator.

The new member answers the same message (the session keeps its one provider conversation, so
the whole conversation goes along); the runtime emits `handoff:initiated` before and
`handoff:completed` after that reply, and the `escalation:*` events this router returns.

A handoff whose specialization has no free member is never dropped: with `escalate` the path is
evaluated with `no_free_member=True`; when no level takes the session elsewhere at once (or with
`wait`) the handoff is queued in `router_state["waiting"]` (event `handoff:queued`; `since`
records when, kept while the session waits for the same specialization). It completes as soon
as a member of that specialization is free: the runtime serves waiting sessions when capacity
frees up (`serve_waiting`: oldest first, one per free slot), and each following message of the
session re-tries it too. The completed handoff carries `queued_for_s`.

Invariants:
  - Pure with respect to the runtime: reads `TurnContext` (plus the availability overrides and
    clock it was built with), returns a `RouteDecision`; per-session memory lives in
    `router_state`, so a restarted process routes the same way. Side effects of decisions
    (notifications, the durable human queue, the escalation history) belong to
    `runner.runtime.operators`, which reacts to the events.
  - Compiled matchers are cached per team revision (a hash of the team spec), so rebuilding
    routers on reload compiles only teams that changed.
  - The common turn (no trigger, no level) allocates one small mapping and one RouteDecision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from runner.runtime.clock import Clock
from runner.runtime.escalation import Escalation
from runner.runtime.routing import HandoffDecision, MatcherCache, TriggerMatcher, decide_handoff
from runner.runtime.teams.draft import RouteDraft, Workloads
from runner.runtime.teams.escalating import EscalationLevels
from runner.runtime.teams.queued import HandoffQueue
from runner.runtime.teams.roster import Roster
from runner.runtime.teams.seam import RouteDecision, RouterFactory, TurnContext, Workload
from runner.spec.models import EscalationPath, Team
from runner.spec.vocabulary import HUMAN

__all__ = ["TeamRouter", "build_team_router", "team_revision", "team_router_factory"]

_MATCHERS = MatcherCache(size=128)


def team_revision(team: Team) -> str:
    """A content hash of the team spec: the key compiled matchers are cached under."""
    return hashlib.sha1(team.model_dump_json().encode(), usedforsecurity=False).hexdigest()


class TeamRouter:
    """Routes the messages of one team's sessions (see the module docstring)."""

    def __init__(
        self,
        team: Team,
        escalation_path: EscalationPath | None,
        *,
        clock: Clock,
        availability: Mapping[str, str],
    ) -> None:
        self.team = team
        self.escalation_path = escalation_path
        self.matchers: Mapping[str, TriggerMatcher] = _MATCHERS.get(
            team, revision=team_revision(team)
        )
        self.roster = roster = Roster(team, availability)
        self.queue = HandoffQueue(roster, clock=clock)
        self.levels = EscalationLevels(
            escalation_path, roster=roster, queue=self.queue, clock=clock
        )
        self.primary = roster.primary

    # ------------------------------------------------------------ the seam

    def route(self, turn: TurnContext) -> RouteDecision:
        if turn.state == "awaiting_human":
            # A person has the conversation: no agent answers; the message is recorded for them.
            return RouteDecision(
                agent=None,
                events=(("human:message-received", {"text": turn.text, "turn": turn.turn}),),
            )
        current = turn.current_agent or self.primary
        workloads = Workloads(turn.workload, self.roster.agents)
        draft: RouteDraft | None = None
        if turn.router_state.get("waiting"):
            draft = RouteDraft(agent=current, base_state=turn.router_state)
            self.queue.retry(draft, workloads)
            assert draft.agent is not None
            current = draft.agent
        decision = decide_handoff(
            self.team,
            current_agent=current,
            text=turn.text,
            turn=turn.turn,
            workloads=workloads,
            availability=self.roster.availability,
            matchers=self.matchers,
        )
        levels = self.levels
        if (
            draft is None
            and decision.action == "stay"
            and not levels.may_escalate(decision.trigger_name, turn.turn)
        ):
            return RouteDecision(agent=current)  # the common turn: nothing else to build
        if draft is None:
            draft = RouteDraft(agent=current, base_state=turn.router_state)
        self._follow(draft, decision)
        escalate_nfm = decision.no_free_member and decision.on_no_free_member == "escalate"
        handled = False
        level = levels.next(
            draft,
            fired_trigger=decision.trigger_name,
            turn=turn.turn,
            text=turn.text,
            no_free_member=escalate_nfm,
        )
        if level is not None:
            esc = levels.open(
                draft,
                level,
                session_id=turn.session_id,
                current=turn.escalation,
                workloads=workloads,
            )
            handled = escalate_nfm and esc.status == "in_effect"
        if decision.no_free_member and not handled:
            assert decision.target is not None
            self.queue.queue(
                draft,
                target=decision.target,
                trigger=decision.trigger_name,
                reason=(
                    "no free member; waiting for one"
                    if decision.on_no_free_member == "wait"
                    else "no free member and no escalation took the session; waiting for one"
                ),
            )
        if (
            not draft.handoffs
            and not draft.events
            and draft.router_state is None
            and not draft.state
        ):
            return RouteDecision(agent=draft.agent)
        return draft.decision()

    def _follow(self, draft: RouteDraft, decision: HandoffDecision) -> None:
        """Carry out the message's handoff decision (a member, or a person)."""
        if decision.action == "handoff":
            assert decision.member is not None
            draft.hand_off(decision.member.agent, trigger=decision.trigger_name, reason=None)
            draft.drop_queued()
        elif decision.action == "human":
            draft.to_human(trigger=decision.trigger_name, reason=None)

    # ------------------------------------------------------------ operators' entry points

    def request_handoff(
        self,
        *,
        session_id: str,
        current_agent: str | None,
        router_state: Mapping[str, Any],
        escalation: Mapping[str, Any] | None,
        target: str,
        reason: str,
        turn: int,
        workload: Workload,
    ) -> RouteDecision:
        """The same flow as a fired trigger, asked for by an agent or a tool (no message)."""
        roster = self.roster
        current = current_agent or self.primary
        workloads = Workloads(workload, roster.agents)
        draft = RouteDraft(agent=current, base_state=router_state)
        if target == HUMAN:
            draft.to_human(trigger=None, reason=reason)
            return draft.decision()
        specializations = set(roster.specialization.values())
        if target not in specializations:
            raise ValueError(
                f"team.{self.team.name} has no member with specialization {target!r} "
                f"(known: {', '.join(sorted(specializations))}, or human)"
            )
        if roster.specialization.get(current) == target:
            return draft.decision()  # already there
        member = roster.free_member(target, workloads=workloads, current=current)
        if member is not None:
            draft.hand_off(member.agent, trigger=None, reason=reason)
            draft.drop_queued()  # a newer handoff replaces the queued one (as on a trigger)
            return draft.decision()
        handled = False
        if self.team.workflow.on_no_free_member == "escalate":
            level = self.levels.next(
                draft, fired_trigger=None, turn=turn, text="", no_free_member=True
            )
            if level is not None:
                esc = self.levels.open(
                    draft, level, session_id=session_id, current=escalation, workloads=workloads
                )
                handled = esc.status == "in_effect"
        if not handled:
            self.queue.queue(draft, target=target, trigger=None, reason=reason)
        return draft.decision()

    def serve_waiting(
        self,
        *,
        current_agent: str | None,
        router_state: Mapping[str, Any],
        workload: Workload,
    ) -> RouteDecision | None:
        """The session's queued handoff, completed now if a member of its specialization is free
        (`select_member`, as on a message); None while none is. A queue entry that no longer
        makes sense (no target, already with that specialization) is cleared."""
        draft = RouteDraft(agent=current_agent or self.primary, base_state=router_state)
        if not self.queue.retry(draft, Workloads(workload, self.roster.agents)):
            return None
        return draft.decision()

    def effect_decision(
        self,
        esc: Escalation,
        *,
        current_agent: str | None,
        router_state: Mapping[str, Any],
        workload: Workload,
        events: tuple[tuple[str, Mapping[str, Any]], ...] = (),
    ) -> RouteDecision:
        """What an escalation that just became effective (approved) does to the session."""
        draft = RouteDraft(agent=current_agent or self.primary, base_state=router_state)
        draft.escalation = esc.as_dict()
        draft.events.extend(events)
        self.levels.effect(draft, esc, Workloads(workload, self.roster.agents))
        return draft.decision()


def build_team_router(
    team: Team,
    *,
    escalation_path: EscalationPath | None,
    clock: Clock,
    availability: Mapping[str, str],
) -> TeamRouter:
    """The router of `team`, reading time from `clock` and member overrides from
    `availability` (agent -> status, a live mapping)."""
    return TeamRouter(team, escalation_path, clock=clock, availability=availability)


def team_router_factory(
    *, clock: Clock, availability: Callable[[str], MutableMapping[str, str]]
) -> RouterFactory:
    """The runtime's default `RouterFactory`: a `TeamRouter` per team, on the runtime's clock
    and the team's live availability (`availability(team_name)`)."""

    def build(team: Team, escalation_path: EscalationPath | None) -> TeamRouter:
        return TeamRouter(team, escalation_path, clock=clock, availability=availability(team.name))

    return build
