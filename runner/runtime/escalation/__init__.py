"""The escalation engine: which level of a team's EscalationPath opens, and the life of one
escalation (pure: no I/O, no clock, `now` is passed in).

Role: the team router (`runner.runtime.teams`) asks `next_level` after each message's handoff
decision, opens the level with `open_escalation` and stores `Escalation.as_dict()` in the
session row; the operator side (`runner.runtime.operators`) applies operators' decisions with
the transition functions. Every transition returns `(new escalation, event types)`.

May import: `runner.spec` (models, vocabulary) and `runner.runtime.routing` (the level's
keywords and patterns are matched with routing's compiled matcher).

Modules: `record` (the Escalation record, statuses, ids, event data), `levels` (which level
holds and which opens), `transitions` (the state machine and each escalation's effect).
"""

from runner.runtime.escalation.levels import (
    evaluate_levels,
    holding_levels,
    level_holds,
    next_level,
)
from runner.runtime.escalation.record import (
    ACTIVE,
    AWAITING_OPERATOR,
    IN_EFFECT,
    RUNNER_ACTOR,
    STATUSES,
    TERMINAL,
    Escalation,
    EscalationStateError,
    EscalationStatus,
    escalation_event_data,
    escalation_id,
    read_escalation,
)
from runner.runtime.escalation.transitions import (
    EscalationEffect,
    EscalationEventType,
    Transition,
    accept_suggestion,
    approve,
    claim,
    effect_of,
    hand_back,
    handoff_target,
    open_escalation,
    reject,
    resolve,
)

__all__ = [
    "ACTIVE",
    "AWAITING_OPERATOR",
    "IN_EFFECT",
    "RUNNER_ACTOR",
    "STATUSES",
    "TERMINAL",
    "Escalation",
    "EscalationEffect",
    "EscalationEventType",
    "EscalationStateError",
    "EscalationStatus",
    "Transition",
    "accept_suggestion",
    "approve",
    "claim",
    "effect_of",
    "escalation_event_data",
    "escalation_id",
    "evaluate_levels",
    "hand_back",
    "handoff_target",
    "holding_levels",
    "level_holds",
    "next_level",
    "open_escalation",
    "read_escalation",
    "reject",
    "resolve",
]
