"""Escalation levels inside the team router: when a level may hold, opening it, its effect.

Role in the flow: `TeamRouter` (`runner.runtime.teams`) inherits these building blocks.
`escalation.next_level` picks the level; `_open` opens it (`escalation.open_escalation`),
superseding the session's current escalation (`_supersede`: rejected or resolved by
`RUNNER_ACTOR`); an escalation in effect is carried out at once (`_effect`: a handoff to the
level's target, queued when no member is free, or `awaiting_human`). `_may_escalate` lets the
common turn skip the path's evaluation.

Invariants:
  - A level opens at most once per session: the opened numbers live in
    `router_state["opened"]` and the escalation id is deterministic (`escalation_id`).
  - Pure: returns events (`escalation:*`, data from `escalation_event_data`) in the outcome;
    notifications and the escalations table belong to `runner.runtime.operators`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runner.runtime.decisions import Handoff
from runner.runtime.escalation import (
    RUNNER_ACTOR,
    Escalation,
    EscalationStateError,
    effect_of,
    escalation_event_data,
    escalation_id,
    handoff_target,
    open_escalation,
    reject,
    resolve,
)
from runner.runtime.team_outcome import _Outcome, _Workloads
from runner.runtime.team_waiting import _WaitingHandoffs
from runner.spec.models import EscalationLevel, EscalationPath


class _EscalationLevels(_WaitingHandoffs):
    """The router's escalation blocks (mixed into `TeamRouter`, which sets these)."""

    escalation_path: EscalationPath | None
    _level_triggers: frozenset[str]
    _level_min_turns: int | None
    _level_text: bool

    if TYPE_CHECKING:  # defined by TeamRouter

        def _to_human(self, out: _Outcome, *, trigger: str | None, reason: str | None) -> None: ...

    def _may_escalate(self, fired_trigger: str | None, turn: int) -> bool:
        """False when no level of the path can hold for a message without a handoff problem."""
        if self.escalation_path is None:
            return False
        return (
            self._level_text
            or (fired_trigger is not None and fired_trigger in self._level_triggers)
            or (self._level_min_turns is not None and turn > self._level_min_turns)
        )

    def _open(
        self,
        out: _Outcome,
        level: EscalationLevel,
        *,
        session_id: str,
        current: Mapping[str, Any] | None,
        workloads: _Workloads,
    ) -> Escalation:
        now = self.clock.now()
        rs = out.rs()
        rs["opened"] = sorted({*(rs.get("opened") or ()), level.level})
        if current is not None:
            self._supersede(out, current, by_level=level.level, now=now)
        esc, names = open_escalation(
            level,
            session_id=session_id,
            now=now,
            escalation_id=escalation_id(session_id, level.level),
        )
        out.escalation = body = esc.as_dict()
        for name in names:
            out.events.append((name, escalation_event_data(esc, body=body, team=self.team.name)))
        if esc.status == "in_effect":
            self._effect(out, esc, workloads)
        return esc

    def _supersede(
        self, out: _Outcome, current: Mapping[str, Any], *, by_level: int, now: float
    ) -> None:
        try:
            old = Escalation.from_dict(current)
        except (EscalationStateError, KeyError, TypeError, ValueError):
            return
        reason = f"superseded by level {by_level}"
        try:
            if old.status in ("pending_approval", "suggested"):
                closed, names = reject(old, by=RUNNER_ACTOR, now=now, reason=reason)
            elif old.status in ("in_effect", "approved"):
                closed, names = resolve(old, by=RUNNER_ACTOR, now=now)
            else:
                return
        except EscalationStateError:
            return
        for name in names:
            out.events.append(
                (name, escalation_event_data(closed, team=self.team.name, note=reason))
            )

    def _effect(self, out: _Outcome, esc: Escalation, workloads: _Workloads) -> None:
        effect = effect_of(esc)
        reason = f"escalation level {esc.level}"
        if effect == "awaiting_human":
            self._to_human(out, trigger=None, reason=reason)
            return
        if effect != "handoff" or out.agent is None:
            return
        target = handoff_target(esc, current_specialization=self._specialization.get(out.agent))
        if target is None:
            return
        member = self._free_member(target, workloads=workloads, current=out.agent)
        if member is None:
            self._queue(out, target=target, trigger=None, reason=reason + ": no free member")
            return
        out.handoffs.append(Handoff(out.agent, member.agent, None, reason))
        out.agent = member.agent
