"""The life of one escalation: opening it, operators' decisions, and its effect on the session.

Role: the state machine of the escalation engine. The team router opens a level with
`open_escalation` (and supersedes a lower one with `reject` / `resolve`); operators' decisions
are `approve`, `accept_suggestion`, `reject`, `claim` and `hand_back`. Every transition returns
`(new_escalation, event types)`; the caller stores the escalation and emits the events in
order. `effect_of` / `handoff_target` say what the session does because of an escalation.
Nothing here does I/O or reads a clock: `now` is passed in.

Statuses and transitions (anything else raises EscalationStateError):

    open -> in_effect         auto_escalate and not requires_approval (takes effect at once)
    open -> pending_approval  requires_approval (whatever auto_escalate says)
    open -> suggested         otherwise (waits for an operator to accept it)
    pending_approval -> approved | rejected        approve / reject
    suggested -> approved | rejected               accept_suggestion / reject
    in_effect | approved -> claimed                claim (target human only)
    claimed -> handed_back                         hand_back (by the operator who claimed)
    in_effect | approved | claimed -> resolved     resolve
  Terminal: rejected, handed_back, resolved.

Effect on the session (`effect_of`): target human and in_effect/approved/claimed ->
`awaiting_human`; a specialization and in_effect/approved -> `handoff` to a member of it;
otherwise `none`. A level that fires on the same trigger as the message's handoff (contract:
level 1, trigger technical-issue-detected -> technical_support) coincides with that handoff:
the escalation records it and `handoff_target` returns None because the session is already
with the specialization, so the router never hands off twice.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Literal

from runner.runtime.escalation.record import (
    ACTIVE,
    AWAITING_OPERATOR,
    IN_EFFECT,
    STATUSES,
    Escalation,
    EscalationStateError,
    EscalationStatus,
)
from runner.spec.models import EscalationLevel
from runner.spec.vocabulary import HUMAN

__all__ = [
    "EscalationEffect",
    "EscalationEventType",
    "Transition",
    "accept_suggestion",
    "approve",
    "claim",
    "effect_of",
    "hand_back",
    "handoff_target",
    "open_escalation",
    "reject",
    "resolve",
]

EscalationEffect = Literal["none", "handoff", "awaiting_human"]
EscalationEventType = Literal[
    "escalation:opened",
    "escalation:pending_approval",
    "escalation:approved",
    "escalation:rejected",
    "escalation:suggested",
    "escalation:claimed",
    "escalation:handed_back",
    "escalation:resolved",
]

Transition = tuple[Escalation, tuple[EscalationEventType, ...]]


def _require(esc: Escalation, action: str, allowed: Collection[str]) -> None:
    if esc.status not in allowed:
        wanted = " or ".join(s for s in STATUSES if s in allowed)
        raise EscalationStateError(
            f"cannot {action} escalation {esc.id} (level {esc.level}, session "
            f"{esc.session_id}): it is {esc.status}, expected {wanted}"
        )


def open_escalation(
    level: EscalationLevel, *, session_id: str, now: float, escalation_id: str
) -> Transition:
    """Open `level` for a session; the status follows the level's flags (see module doc)."""
    status: EscalationStatus
    if level.requires_approval:
        status = "pending_approval"
    elif level.auto_escalate:
        status = "in_effect"
    else:
        status = "suggested"
    esc = Escalation(
        id=escalation_id,
        session_id=session_id,
        level=level.level,
        target=level.target,
        status=status,
        opened_at=now,
        notify=tuple(level.notify),
    )
    events: tuple[EscalationEventType, ...]
    if status == "pending_approval":
        events = ("escalation:opened", "escalation:pending_approval")
    elif status == "suggested":
        events = ("escalation:opened", "escalation:suggested")
    else:
        events = ("escalation:opened",)
    return esc, events


def approve(esc: Escalation, *, by: str, now: float) -> Transition:
    """pending_approval -> approved."""
    _require(esc, "approve", ("pending_approval",))
    return replace(esc, status="approved", decided_by=by, decided_at=now), ("escalation:approved",)


def accept_suggestion(esc: Escalation, *, by: str, now: float) -> Transition:
    """suggested -> approved (an operator accepted the suggestion)."""
    _require(esc, "accept", ("suggested",))
    return replace(esc, status="approved", decided_by=by, decided_at=now), ("escalation:approved",)


def reject(esc: Escalation, *, by: str, now: float, reason: str | None = None) -> Transition:
    """pending_approval or suggested -> rejected."""
    _require(esc, "reject", AWAITING_OPERATOR)
    return replace(esc, status="rejected", decided_by=by, decided_at=now, reason=reason), (
        "escalation:rejected",
    )


def claim(esc: Escalation, *, operator: str, now: float) -> Transition:
    """in_effect or approved -> claimed: an operator takes a human escalation."""
    if esc.target != HUMAN:
        raise EscalationStateError(
            f"cannot claim escalation {esc.id} (level {esc.level}): its target is "
            f"{esc.target!r}, not a human"
        )
    _require(esc, "claim", IN_EFFECT)
    return replace(esc, status="claimed", operator=operator, claimed_at=now), (
        "escalation:claimed",
    )


def hand_back(esc: Escalation, *, operator: str, now: float) -> Transition:
    """claimed -> handed_back: the operator who claimed it returns the session to the agents."""
    _require(esc, "hand back", ("claimed",))
    if operator != esc.operator:
        raise EscalationStateError(
            f"cannot hand back escalation {esc.id}: it was claimed by {esc.operator!r}, "
            f"not {operator!r}"
        )
    return replace(esc, status="handed_back", closed_by=operator, closed_at=now), (
        "escalation:handed_back",
    )


def resolve(esc: Escalation, *, by: str, now: float) -> Transition:
    """in_effect, approved or claimed -> resolved."""
    _require(esc, "resolve", ACTIVE)
    return replace(esc, status="resolved", closed_by=by, closed_at=now), ("escalation:resolved",)


# ---------------------------------------------------------------- effect on the session


def effect_of(esc: Escalation) -> EscalationEffect:
    """What the session should do now because of this escalation."""
    if esc.target == HUMAN:
        return "awaiting_human" if esc.status in ACTIVE else "none"
    return "handoff" if esc.status in IN_EFFECT else "none"


def handoff_target(esc: Escalation, *, current_specialization: str | None) -> str | None:
    """The specialization to hand the session to because of `esc`, None when there is nothing
    to do: no handoff effect, or the session is already answered by that specialization (the
    message's own handoff already moved it there)."""
    if effect_of(esc) != "handoff" or current_specialization == esc.target:
        return None
    return esc.target
