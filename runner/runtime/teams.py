"""Teams at run time: the router a team session asks on every user message (handoffs, escalation).

Role: `Lifecycle` builds one `TeamRouter` per team through `build_team_router` (found by
`runner.runtime.decisions.default_router_factory`) and asks it, on each user message, which
member answers. The router composes the two pure engines:

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
the whole conversation goes along); `Lifecycle` emits `handoff:initiated` before and
`handoff:completed` after that reply, and the `escalation:*` events this router returns.

A handoff whose specialization has no free member is never dropped: with `escalate` the path is
evaluated with `no_free_member=True`; when no level takes the session elsewhere at once (or with
`wait`) the handoff is queued in `router_state["waiting"]` (event `handoff:queued`; `since`
records when, kept while the session waits for the same specialization). It completes as soon
as a member of that specialization is free: the runtime serves waiting sessions when capacity
frees up (`serve_waiting`, driven by `runner.runtime.waiting`: oldest first, one per free
slot), and each following message of the session re-tries it too. The completed handoff
carries `queued_for_s`.

Invariants:
  - Pure with respect to the runtime: reads `TurnContext` (plus the availability overrides and
    clock it was given), returns a `RouteDecision`; per-session memory lives in `router_state`,
    so a restarted process routes the same way. Side effects of decisions (notifications, the
    durable human queue, the escalations table) belong to `runner.runtime.operators`, which
    reacts to the events.
  - Compiled matchers are cached per team revision (a hash of the team spec), so rebuilding
    routers on reload compiles only teams that changed.
  - The common turn (no trigger, no level) allocates one small mapping and one RouteDecision.

Modules: this one keeps the router (`TeamRouter`: `route` and the operators' entry points),
`build_team_router` and `check_team`; the router inherits its queued-handoff blocks from
`runner.runtime.team_waiting` and its escalation-level blocks from
`runner.runtime.team_escalation`, and builds its outcome in `runner.runtime.team_outcome`. Every
name that lived here is still importable from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal

from runner.runtime.clock import Clock, SystemClock
from runner.runtime.decisions import HUMAN, Handoff, RouteDecision, TurnContext, primary_member
from runner.runtime.escalation import RUNNER_ACTOR as RUNNER_ACTOR
from runner.runtime.escalation import Escalation, next_level
from runner.runtime.escalation import escalation_event_data as escalation_event_data
from runner.runtime.escalation import escalation_id as escalation_id
from runner.runtime.routing import (
    HandoffDecision,
    MatcherCache,
    TriggerMatcher,
    decide_handoff,
)
from runner.runtime.team_escalation import _EscalationLevels as _EscalationLevels
from runner.runtime.team_outcome import _Outcome as _Outcome
from runner.runtime.team_outcome import _Workloads as _Workloads
from runner.runtime.team_waiting import _WaitingHandoffs as _WaitingHandoffs
from runner.spec.models import EscalationPath, Team

__all__ = [
    "AVAILABILITY",
    "RUNNER_ACTOR",
    "Availability",
    "TeamRouter",
    "build_team_router",
    "check_team",
    "escalation_event_data",
    "escalation_id",
    "team_revision",
]

Availability = Literal["available", "busy", "offline"]
AVAILABILITY: tuple[Availability, ...] = ("available", "busy", "offline")

_MATCHERS = MatcherCache(size=128)


def team_revision(team: Team) -> str:
    """A content hash of the team spec: the key compiled matchers are cached under."""
    return hashlib.sha1(team.model_dump_json().encode(), usedforsecurity=False).hexdigest()


class TeamRouter(_EscalationLevels):
    """Routes the messages of one team's sessions (see the module docstring)."""

    def __init__(
        self,
        team: Team,
        escalation_path: EscalationPath | None = None,
        *,
        clock: Clock | None = None,
        availability: MutableMapping[str, str] | None = None,
    ) -> None:
        self.team = team
        self.escalation_path = escalation_path
        self.clock: Clock = clock or SystemClock()
        # live availability overrides (agent -> status); shared with the operators' board
        self.availability: MutableMapping[str, str] = (
            availability if availability is not None else {}
        )
        self.matchers: Mapping[str, TriggerMatcher] = _MATCHERS.get(
            team, revision=team_revision(team)
        )
        self.primary = primary_member(team)
        self._agents = tuple(dict.fromkeys(m.agent for m in team.members))
        self._specialization = {m.agent: m.specialization for m in team.members}
        levels = escalation_path.levels if escalation_path is not None else []
        # what can make a level hold, to skip the evaluation on most messages
        self._level_triggers = frozenset(lv.when.trigger for lv in levels if lv.when.trigger)
        self._level_min_turns = min(
            (lv.when.turns_above for lv in levels if lv.when.turns_above is not None),
            default=None,
        )
        self._level_text = any(lv.when.keywords or lv.when.pattern is not None for lv in levels)

    # ------------------------------------------------------------ the seam

    def route(self, turn: TurnContext) -> RouteDecision:
        if turn.state == "awaiting_human":
            # A person has the conversation: no agent answers; the message is recorded for them.
            return RouteDecision(
                agent=None,
                events=(("human:message-received", {"text": turn.text, "turn": turn.turn}),),
            )
        current = turn.current_agent or self.primary
        workloads = _Workloads(turn.workload, self._agents)
        out: _Outcome | None = None
        if turn.router_state.get("waiting"):
            out = _Outcome(agent=current, base_state=turn.router_state)
            self._retry_waiting(out, workloads)
            assert out.agent is not None
            current = out.agent
        decision = decide_handoff(
            self.team,
            current_agent=current,
            text=turn.text,
            turn=turn.turn,
            workloads=workloads,
            availability=self.availability,
            matchers=self.matchers,
        )
        if (
            out is None
            and decision.action == "stay"
            and not self._may_escalate(decision.trigger_name, turn.turn)
        ):
            return RouteDecision(agent=current)  # the common turn: nothing else to build
        if out is None:
            out = _Outcome(agent=current, base_state=turn.router_state)
        self._apply_handoff_decision(out, decision, workloads)
        escalate_nfm = decision.no_free_member and decision.on_no_free_member == "escalate"
        handled = False
        if self.escalation_path is not None:
            level = next_level(
                self.escalation_path,
                opened=out.get("opened") or (),
                fired_trigger=decision.trigger_name,
                turn=turn.turn,
                text=turn.text,
                no_free_member=escalate_nfm,
            )
            if level is not None:
                esc = self._open(
                    out,
                    level,
                    session_id=turn.session_id,
                    current=turn.escalation,
                    workloads=workloads,
                )
                handled = escalate_nfm and esc.status == "in_effect"
        if decision.no_free_member and not handled:
            assert decision.target is not None
            self._queue(
                out,
                target=decision.target,
                trigger=decision.trigger_name,
                reason=(
                    "no free member; waiting for one"
                    if decision.on_no_free_member == "wait"
                    else "no free member and no escalation took the session; waiting for one"
                ),
            )
        if not out.handoffs and not out.events and out.router_state is None and not out.state:
            return RouteDecision(agent=out.agent)
        return out.decision()

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
        workload: Callable[[str], int],
    ) -> RouteDecision:
        """The same flow as a fired trigger, asked for by an agent or a tool (no message)."""
        current = current_agent or self.primary
        workloads = _Workloads(workload, self._agents)
        out = _Outcome(agent=current, base_state=router_state)
        if target == HUMAN:
            self._to_human(out, trigger=None, reason=reason)
            return out.decision()
        if target not in self._specialization.values():
            raise ValueError(
                f"team.{self.team.name} has no member with specialization {target!r} "
                f"(known: {', '.join(sorted(set(self._specialization.values())))}, or human)"
            )
        if self._specialization.get(current) == target:
            return out.decision()  # already there
        member = self._free_member(target, workloads=workloads, current=current)
        if member is not None:
            out.handoffs.append(Handoff(current, member.agent, None, reason))
            out.agent = member.agent
            if out.get("waiting"):  # a newer handoff replaces the queued one (as on a trigger)
                out.rs().pop("waiting", None)
            return out.decision()
        policy = self.team.workflow.on_no_free_member
        handled = False
        if policy == "escalate" and self.escalation_path is not None:
            level = next_level(
                self.escalation_path,
                opened=out.get("opened") or (),
                fired_trigger=None,
                turn=turn,
                text="",
                no_free_member=True,
            )
            if level is not None:
                esc = self._open(
                    out, level, session_id=session_id, current=escalation, workloads=workloads
                )
                handled = esc.status == "in_effect"
        if not handled:
            self._queue(out, target=target, trigger=None, reason=reason)
        return out.decision()

    def serve_waiting(
        self,
        *,
        current_agent: str | None,
        router_state: Mapping[str, Any],
        workload: Callable[[str], int],
    ) -> RouteDecision | None:
        """The session's queued handoff, completed now if a member of its specialization is free
        (`select_member`, as on a message); None while none is. A queue entry that no longer
        makes sense (no target, already with that specialization) is cleared."""
        out = _Outcome(agent=current_agent or self.primary, base_state=router_state)
        if not self._retry_waiting(out, _Workloads(workload, self._agents)):
            return None
        return out.decision()

    def effect_decision(
        self,
        esc: Escalation,
        *,
        current_agent: str | None,
        router_state: Mapping[str, Any],
        workload: Callable[[str], int],
        events: tuple[tuple[str, Mapping[str, Any]], ...] = (),
    ) -> RouteDecision:
        """What an escalation that just became effective (approved) does to the session."""
        out = _Outcome(agent=current_agent or self.primary, base_state=router_state)
        out.escalation = esc.as_dict()
        out.events.extend(events)
        self._effect(out, esc, _Workloads(workload, self._agents))
        return out.decision()

    # ------------------------------------------------------------ building blocks

    def _apply_handoff_decision(
        self, out: _Outcome, decision: HandoffDecision, workloads: _Workloads
    ) -> None:
        if decision.action == "handoff":
            assert decision.member is not None
            out.handoffs.append(
                Handoff(out.agent, decision.member.agent, decision.trigger_name, None)
            )
            out.agent = decision.member.agent
            if out.get("waiting"):  # a newer handoff replaces the queued one
                out.rs().pop("waiting", None)
        elif decision.action == "human":
            self._to_human(out, trigger=decision.trigger_name, reason=None)

    def _to_human(self, out: _Outcome, *, trigger: str | None, reason: str | None) -> None:
        if out.state == "awaiting_human":
            return
        out.handoffs.append(Handoff(out.agent, HUMAN, trigger, reason))
        out.rs()["before_human"] = out.agent
        out.agent = None
        out.state = "awaiting_human"


def build_team_router(
    team: Team,
    *,
    escalation_path: EscalationPath | None,
    clock: Clock | None = None,
    availability: MutableMapping[str, str] | None = None,
) -> TeamRouter:
    """The router of `team` (what `default_router_factory` looks up)."""
    return TeamRouter(team, escalation_path, clock=clock, availability=availability)


def check_team(
    team: Team,
    *,
    agents: Mapping[str, Any] | set[str] | frozenset[str],
    escalation_paths: Mapping[str, EscalationPath],
) -> list[str]:
    """Reference problems of a team (for teams created from code): members that are agents,
    trigger and level targets that are specializations of the team or `human`, a known path."""
    problems: list[str] = []
    specializations = {m.specialization for m in team.members}
    seen: set[str] = set()
    for i, member in enumerate(team.members):
        if member.agent not in agents:
            problems.append(f"members[{i}].agent: agent {member.agent!r} is not declared")
        if member.agent in seen:
            problems.append(f"members[{i}].agent: agent {member.agent!r} is listed twice")
        seen.add(member.agent)
        names: set[str] = set()
        for j, trig in enumerate(member.handoff_triggers):
            where = f"members[{i}].handoff_triggers[{j}]"
            if trig.target != HUMAN and trig.target not in specializations:
                problems.append(
                    f"{where}.target: {trig.target!r} is neither a specialization of the team "
                    f"({', '.join(sorted(specializations))}) nor 'human'"
                )
            if trig.name in names:
                problems.append(f"{where}.name: trigger {trig.name!r} is declared twice")
            names.add(trig.name)
    path_name = team.workflow.escalation_path
    if path_name is not None:
        path = escalation_paths.get(path_name)
        if path is None:
            problems.append(f"workflow.escalation_path: escalation path {path_name!r} not found")
        else:
            for k, level in enumerate(path.levels):
                if level.target != HUMAN and level.target not in specializations:
                    problems.append(
                        f"escalation_path.{path_name}.levels[{k}].target: {level.target!r} is "
                        "neither a specialization of the team nor 'human'"
                    )
    return problems
