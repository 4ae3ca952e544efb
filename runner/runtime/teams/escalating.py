"""Escalation levels inside the team router: when a level may hold, opening it, its effect.

Role: part of `TeamRouter` (`runner.runtime.teams.router`). `EscalationLevels.next` asks the
escalation engine (`runner.runtime.escalation.next_level`) which level of the team's path
opens; `open` opens it (`open_escalation`), superseding the session's current escalation
(rejected or resolved by `RUNNER_ACTOR`); an escalation in effect is carried out at once
(`effect`: a handoff to the level's target, queued when no member is free, or the session goes
to a person). `may_escalate` lets the common turn skip the path's evaluation.

Invariants:
  - A level opens at most once per session: the opened numbers live in
    `router_state["opened"]` and the escalation id is deterministic (`escalation_id`).
  - Pure: returns events (`escalation:*`, data from `escalation_event_data`) in the draft;
    notifications and the escalation history belong to `runner.runtime.operators`, which
    reacts to the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.runtime.clock import Clock
from runner.runtime.escalation import (
    AWAITING_OPERATOR,
    IN_EFFECT,
    RUNNER_ACTOR,
    Escalation,
    EscalationStateError,
    effect_of,
    escalation_event_data,
    escalation_id,
    handoff_target,
    next_level,
    open_escalation,
    read_escalation,
    reject,
    resolve,
)
from runner.runtime.teams.draft import RouteDraft, Workloads
from runner.runtime.teams.queued import HandoffQueue
from runner.runtime.teams.roster import Roster
from runner.spec.models import EscalationLevel, EscalationPath

__all__ = ["EscalationLevels"]


class EscalationLevels:
    """Opens and carries out one team's escalation levels (see the module docstring)."""

    __slots__ = ("_clock", "_min_turns", "_path", "_queue", "_roster", "_text", "_triggers")

    def __init__(
        self,
        path: EscalationPath | None,
        *,
        roster: Roster,
        queue: HandoffQueue,
        clock: Clock,
    ) -> None:
        self._path = path
        self._roster = roster
        self._queue = queue
        self._clock = clock
        levels = path.levels if path is not None else []
        # what can make a level hold, to skip the evaluation on most messages
        self._triggers = frozenset(lv.when.trigger for lv in levels if lv.when.trigger)
        self._min_turns = min(
            (lv.when.turns_above for lv in levels if lv.when.turns_above is not None),
            default=None,
        )
        self._text = any(lv.when.keywords or lv.when.pattern is not None for lv in levels)

    def may_escalate(self, fired_trigger: str | None, turn: int) -> bool:
        """False when no level of the path can hold for a message without a handoff problem."""
        if self._path is None:
            return False
        return (
            self._text
            or (fired_trigger is not None and fired_trigger in self._triggers)
            or (self._min_turns is not None and turn > self._min_turns)
        )

    def next(
        self,
        draft: RouteDraft,
        *,
        fired_trigger: str | None,
        turn: int,
        text: str,
        no_free_member: bool,
    ) -> EscalationLevel | None:
        """The level that opens now for this session (never one opened before)."""
        if self._path is None:
            return None
        return next_level(
            self._path,
            opened=draft.state_value("opened") or (),
            fired_trigger=fired_trigger,
            turn=turn,
            text=text,
            no_free_member=no_free_member,
        )

    def open(
        self,
        draft: RouteDraft,
        level: EscalationLevel,
        *,
        session_id: str,
        current: Mapping[str, Any] | None,
        workloads: Workloads,
    ) -> Escalation:
        """Open `level` for the session (superseding `current`); in effect: carried out."""
        now = self._clock.now()
        state = draft.edit_state()
        state["opened"] = sorted({*(state.get("opened") or ()), level.level})
        if current is not None:
            self._supersede(draft, current, by_level=level.level, now=now)
        esc, names = open_escalation(
            level,
            session_id=session_id,
            now=now,
            escalation_id=escalation_id(session_id, level.level),
        )
        draft.escalation = body = esc.as_dict()
        team = self._roster.team.name
        for name in names:
            draft.events.append((name, escalation_event_data(esc, body=body, team=team)))
        if esc.status == "in_effect":
            self.effect(draft, esc, workloads)
        return esc

    def _supersede(
        self, draft: RouteDraft, current: Mapping[str, Any], *, by_level: int, now: float
    ) -> None:
        old = read_escalation(current)
        if old is None:
            return
        reason = f"superseded by level {by_level}"
        try:
            if old.status in AWAITING_OPERATOR:
                closed, names = reject(old, by=RUNNER_ACTOR, now=now, reason=reason)
            elif old.status in IN_EFFECT:
                closed, names = resolve(old, by=RUNNER_ACTOR, now=now)
            else:
                return
        except EscalationStateError:
            return
        team = self._roster.team.name
        for name in names:
            draft.events.append((name, escalation_event_data(closed, team=team, note=reason)))

    def effect(self, draft: RouteDraft, esc: Escalation, workloads: Workloads) -> None:
        """Carry out an escalation that is in effect (or was just approved)."""
        effect = effect_of(esc)
        reason = f"escalation level {esc.level}"
        if effect == "awaiting_human":
            draft.to_human(trigger=None, reason=reason)
            return
        if effect != "handoff" or draft.agent is None:
            return
        roster = self._roster
        target = handoff_target(esc, current_specialization=roster.specialization.get(draft.agent))
        if target is None:
            return
        member = roster.free_member(target, workloads=workloads, current=draft.agent)
        if member is None:
            self._queue.queue(
                draft, target=target, trigger=None, reason=reason + ": no free member"
            )
            return
        draft.hand_off(member.agent, trigger=None, reason=reason)
