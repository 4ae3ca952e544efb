"""The per-message handoff decision and load balancing: which trigger fires, who takes it.

Role: the decision half of routing. The team router (`runner.runtime.teams.router`) calls
`decide_handoff` once per user message with the answering member's compiled `TriggerMatcher`,
the live workloads and availability; it gets back a frozen `HandoffDecision` and builds the
session's route from it. Nothing here does I/O or reads a clock.

Load balancing (`select_member`): members of the specialization that are `available` (live
availability overrides the spec) and below `max_workload`; the most room
(`max_workload - workload`) wins, then the lowest `priority` number, then declaration order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from runner.runtime.routing.matcher import TriggerMatch, TriggerMatcher
from runner.spec.models import Team, TeamMember
from runner.spec.vocabulary import HUMAN

__all__ = ["HandoffAction", "HandoffDecision", "decide_handoff", "select_member"]

HandoffAction = Literal["stay", "handoff", "human", "no_free_member"]


@dataclass(frozen=True, slots=True)
class HandoffDecision:
    """What to do with one user message.

    action:
      - `stay`: no trigger fired, or the fired trigger targets the answering member's own
        specialization (a handoff to the member already answering is not a handoff).
      - `handoff`: hand the session to `member` (of specialization `target`).
      - `human`: the trigger targets `human`; the session waits for an operator.
      - `no_free_member`: the target specialization has no free member; the coordinator
        follows `on_no_free_member` (`escalate`: evaluate the escalation path with
        `no_free_member=True`; `wait`: queue until a member frees up).
    """

    action: HandoffAction
    from_agent: str
    trigger: TriggerMatch | None = None
    target: str | None = None
    member: TeamMember | None = None
    on_no_free_member: Literal["escalate", "wait"] | None = None

    @property
    def no_free_member(self) -> bool:
        return self.action == "no_free_member"

    @property
    def to_agent(self) -> str | None:
        """The agent (or `human`) the session goes to, None when it stays or must wait."""
        if self.action == "handoff" and self.member is not None:
            return self.member.agent
        if self.action == "human":
            return HUMAN
        return None

    @property
    def trigger_name(self) -> str | None:
        return self.trigger.trigger if self.trigger is not None else None


# ---------------------------------------------------------------- load balancing


def select_member(
    team: Team,
    specialization: str,
    *,
    workloads: Mapping[str, int],
    availability: Mapping[str, str] | None = None,
    exclude: Collection[str] = (),
) -> TeamMember | None:
    """The member of `specialization` to take a session, None when none is free.

    Free: not excluded, available (`availability[agent]` overrides the spec's value; anything
    but `available` is not free), and `workloads[agent]` (0 when absent) below `max_workload`.
    Among free members: most room (`max_workload - workload`), then lowest `priority` number,
    then declaration order.
    """
    best: TeamMember | None = None
    best_key: tuple[int, int, int] | None = None
    for index, member in enumerate(team.members):
        if member.specialization != specialization or member.agent in exclude:
            continue
        status = (
            availability.get(member.agent, member.availability)
            if availability is not None
            else member.availability
        )
        if status != "available":
            continue
        room = member.max_workload - workloads.get(member.agent, 0)
        if room <= 0:
            continue
        key = (-room, member.priority, index)
        if best_key is None or key < best_key:
            best, best_key = member, key
    return best


def decide_handoff(
    team: Team,
    *,
    current_agent: str,
    text: str,
    turn: int,
    workloads: Mapping[str, int],
    availability: Mapping[str, str] | None = None,
    matchers: Mapping[str, TriggerMatcher],
) -> HandoffDecision:
    """The per-message decision for a session answered by `current_agent`.

    Only the answering member's triggers are consulted; the best one (priority, then order)
    decides. Target `human` -> `human`. Target equal to the answering member's specialization
    -> `stay`. Otherwise the member chosen by `select_member` (excluding the answering agent)
    -> `handoff`, or `no_free_member` with the team's `workflow.on_no_free_member`.

    Composition with escalation: the coordinator runs this first, hands off, then evaluates
    the escalation path with `fired_trigger=decision.trigger_name`. A level that fires on the
    same trigger (e.g. level 1 -> technical_support) is recorded as an escalation, and its
    handoff is not repeated: `escalation.handoff_target` returns None when the session is
    already with that specialization.
    """
    matcher = matchers.get(current_agent)
    fired = matcher.best(text, turn=turn) if matcher is not None else None
    if fired is None:
        return HandoffDecision(action="stay", from_agent=current_agent)
    if fired.target == HUMAN:
        return HandoffDecision(
            action="human", from_agent=current_agent, trigger=fired, target=HUMAN
        )
    current = next((m for m in team.members if m.agent == current_agent), None)
    if current is not None and current.specialization == fired.target:
        return HandoffDecision(
            action="stay", from_agent=current_agent, trigger=fired, target=fired.target
        )
    member = select_member(
        team,
        fired.target,
        workloads=workloads,
        availability=availability,
        exclude=(current_agent,),
    )
    if member is None:
        return HandoffDecision(
            action="no_free_member",
            from_agent=current_agent,
            trigger=fired,
            target=fired.target,
            on_no_free_member=team.workflow.on_no_free_member,
        )
    return HandoffDecision(
        action="handoff",
        from_agent=current_agent,
        trigger=fired,
        target=fired.target,
        member=member,
    )
