"""Escalation engine: which level of an EscalationPath holds, and the life of one escalation.

Role: the pure escalation half of "teams at run time". After `routing.decide_handoff` the
coordinator asks `next_level` whether a level of the team's escalation path should open for
this message, opens it with `open_escalation`, and later applies operator decisions with the
transition functions. Every transition returns `(new_escalation, events)`; the caller stores
the escalation (`as_dict` / `from_dict` round-trip) and emits the events in order. Nothing here
does I/O or reads a clock: `now` is passed in (seconds since the epoch, from runtime.clock).

Level semantics (`EscalationLevel.when`), the same word/regex semantics as routing:
  - `trigger: NAME` holds when the handoff trigger that fired on this message is NAME;
  - `turns_above: N` holds when the session's turn count (this message included) is > N;
  - `keywords` are whole words, case-insensitive; `pattern` is a Python regex searched in the
    text (case-sensitive unless it says `(?i)`);
  - `no_free_member: true` holds when the handoff found no free member (`no_free_member: false`
    is not a condition);
  - several keys hold when ANY of them holds (as for handoff triggers).
  When several levels hold, the HIGHEST-numbered wins: the most severe applicable escalation.
  Escalation only goes up: `next_level` never opens a level at or below one already opened for
  the session (opened includes rejected and resolved ones), so a level is opened at most once.

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
with the specialization, so the coordinator never hands off twice.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from runner.runtime.routing import TriggerMatcher, compile_triggers
from runner.spec.models import EscalationLevel, EscalationPath, HandoffTrigger, TriggerWhen
from runner.spec.vocabulary import HUMAN

EscalationStatus = Literal[
    "suggested",
    "pending_approval",
    "approved",
    "rejected",
    "in_effect",
    "claimed",
    "resolved",
    "handed_back",
]
EscalationEffect = Literal["none", "handoff", "awaiting_human"]
EscalationEvent = Literal[
    "escalation:opened",
    "escalation:pending_approval",
    "escalation:approved",
    "escalation:rejected",
    "escalation:suggested",
    "escalation:claimed",
    "escalation:handed_back",
    "escalation:resolved",
]

STATUSES: tuple[EscalationStatus, ...] = get_args(EscalationStatus)
TERMINAL: frozenset[EscalationStatus] = frozenset({"rejected", "handed_back", "resolved"})
ACTIVE: frozenset[EscalationStatus] = frozenset({"in_effect", "approved", "claimed"})

__all__ = [
    "ACTIVE",
    "STATUSES",
    "TERMINAL",
    "Escalation",
    "EscalationEffect",
    "EscalationEvent",
    "EscalationStateError",
    "EscalationStatus",
    "Transition",
    "accept_suggestion",
    "approve",
    "claim",
    "effect_of",
    "evaluate_levels",
    "hand_back",
    "handoff_target",
    "holding_levels",
    "level_holds",
    "next_level",
    "open_escalation",
    "reject",
    "resolve",
]


class EscalationStateError(ValueError):
    """A transition that the escalation's status (or target, or operator) does not allow."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """One escalation of a session to a level of its team's escalation path."""

    id: str
    session_id: str
    level: int
    target: str  # a specialization, or "human"
    status: EscalationStatus
    opened_at: float
    notify: tuple[str, ...] = ()
    decided_by: str | None = None  # who approved, rejected or accepted it
    decided_at: float | None = None
    reason: str | None = None  # why it was rejected
    operator: str | None = None  # who claimed it (human target)
    claimed_at: float | None = None
    closed_by: str | None = None  # who resolved or handed it back
    closed_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (what a session stores), inverse of `from_dict`."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "level": self.level,
            "target": self.target,
            "status": self.status,
            "opened_at": self.opened_at,
            "notify": list(self.notify),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "reason": self.reason,
            "operator": self.operator,
            "claimed_at": self.claimed_at,
            "closed_by": self.closed_by,
            "closed_at": self.closed_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        status = data["status"]
        if status not in STATUSES:
            raise EscalationStateError(f"unknown escalation status {status!r}")
        return cls(
            id=str(data["id"]),
            session_id=str(data["session_id"]),
            level=int(data["level"]),
            target=str(data["target"]),
            status=status,
            opened_at=float(data["opened_at"]),
            notify=tuple(data.get("notify") or ()),
            decided_by=data.get("decided_by"),
            decided_at=data.get("decided_at"),
            reason=data.get("reason"),
            operator=data.get("operator"),
            claimed_at=data.get("claimed_at"),
            closed_by=data.get("closed_by"),
            closed_at=data.get("closed_at"),
        )


Transition = tuple[Escalation, tuple[EscalationEvent, ...]]


# ---------------------------------------------------------------- which level holds


@functools.lru_cache(maxsize=512)
def _text_matcher(keywords: tuple[str, ...] | None, pattern: str | None) -> TriggerMatcher:
    """Routing's compiled matcher for a level's keywords/pattern (memoised: pure, immutable)."""
    return compile_triggers(
        [
            HandoffTrigger(
                name="escalation-level",
                when=TriggerWhen(keywords=list(keywords) if keywords else None, pattern=pattern),
                target=HUMAN,
            )
        ]
    )


def level_holds(
    level: EscalationLevel,
    *,
    fired_trigger: str | None,
    turn: int,
    text: str,
    no_free_member: bool,
) -> bool:
    """Whether any condition of `level.when` holds for this message."""
    when = level.when
    if when.trigger is not None and fired_trigger == when.trigger:
        return True
    if when.turns_above is not None and turn > when.turns_above:
        return True
    if when.no_free_member and no_free_member:
        return True
    if when.keywords or when.pattern is not None:
        keywords = tuple(when.keywords) if when.keywords else None
        if _text_matcher(keywords, when.pattern).best(text, turn=turn) is not None:
            return True
    return False


def holding_levels(
    path: EscalationPath,
    *,
    fired_trigger: str | None,
    turn: int,
    text: str,
    no_free_member: bool,
) -> tuple[EscalationLevel, ...]:
    """Every level whose `when` holds, most severe (highest number) first."""
    held = [
        lv
        for lv in path.levels
        if level_holds(
            lv, fired_trigger=fired_trigger, turn=turn, text=text, no_free_member=no_free_member
        )
    ]
    return tuple(sorted(held, key=lambda lv: -lv.level))


def evaluate_levels(
    path: EscalationPath,
    *,
    fired_trigger: str | None,
    turn: int,
    text: str,
    no_free_member: bool,
) -> EscalationLevel | None:
    """The highest-numbered level whose `when` holds, None when none holds."""
    held = holding_levels(
        path, fired_trigger=fired_trigger, turn=turn, text=text, no_free_member=no_free_member
    )
    return held[0] if held else None


def next_level(
    path: EscalationPath,
    *,
    opened: Collection[int],
    fired_trigger: str | None,
    turn: int,
    text: str,
    no_free_member: bool,
) -> EscalationLevel | None:
    """The level to open now: the highest holding level above every level in `opened`.

    `opened` holds the level numbers already opened for the session (whatever became of
    them), so a level is not re-opened on every message and escalation never goes down.
    """
    floor = max(opened, default=0)
    for lv in holding_levels(
        path, fired_trigger=fired_trigger, turn=turn, text=text, no_free_member=no_free_member
    ):
        if lv.level > floor and lv.level not in opened:
            return lv
    return None


# ---------------------------------------------------------------- transitions


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
    events: tuple[EscalationEvent, ...]
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
    _require(esc, "reject", ("pending_approval", "suggested"))
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
    _require(esc, "claim", ("in_effect", "approved"))
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
    _require(esc, "resolve", ("in_effect", "approved", "claimed"))
    return replace(esc, status="resolved", closed_by=by, closed_at=now), ("escalation:resolved",)


# ---------------------------------------------------------------- effect on the session


def effect_of(esc: Escalation) -> EscalationEffect:
    """What the session should do now because of this escalation."""
    if esc.target == HUMAN:
        return "awaiting_human" if esc.status in ACTIVE else "none"
    return "handoff" if esc.status in ("in_effect", "approved") else "none"


def handoff_target(esc: Escalation, *, current_specialization: str | None) -> str | None:
    """The specialization to hand the session to because of `esc`, None when there is nothing
    to do: no handoff effect, or the session is already answered by that specialization (the
    message's own handoff already moved it there)."""
    if effect_of(esc) != "handoff" or current_specialization == esc.target:
        return None
    return esc.target
