"""Which level of an EscalationPath holds for a message, and which one opens now.

Role: the evaluation half of the escalation engine. After the message's handoff decision the
team router asks `next_level` whether a level of the team's path should open. Level semantics
(`EscalationLevel.when`), the same word/regex semantics as routing:
  - `trigger: NAME` holds when the handoff trigger that fired on this message is NAME;
  - `turns_above: N` holds when the session's turn count (this message included) is > N;
  - `keywords` are whole words, case-insensitive; `pattern` is an RE2 regex searched in the
    text in linear time (case-sensitive unless it says `(?i)`) -- routing's compiled matcher,
    memoised;
  - `no_free_member: true` holds when the handoff found no free member (`no_free_member: false`
    is not a condition);
  - several keys hold when ANY of them holds (as for handoff triggers).
When several levels hold, the HIGHEST-numbered wins: the most severe applicable escalation.
Escalation only goes up: `next_level` never opens a level at or below one already opened for
the session (opened includes rejected and resolved ones), so a level opens at most once.
"""

from __future__ import annotations

import functools
from collections.abc import Collection

from runner.runtime.routing import TriggerMatcher, compile_triggers
from runner.spec.models import EscalationLevel, EscalationPath, HandoffTrigger, TriggerWhen
from runner.spec.vocabulary import HUMAN

__all__ = ["evaluate_levels", "holding_levels", "level_holds", "next_level"]


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
