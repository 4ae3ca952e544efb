"""Team routing engine: which handoff trigger fires on a user message, and which member takes it.

Role: the pure decision half of "teams at run time". A team session (runner.runtime.lifecycle,
via a TeamRouter) calls `decide_handoff` once per user message with the answering member's
compiled `TriggerMatcher`, the live workloads and availability; it gets back a frozen
`HandoffDecision` and applies it (events, state). Nothing here does I/O or reads a clock.

Trigger semantics (`HandoffTrigger.when`):
  - `keywords`: whole words, case-insensitive. A keyword matches where it is neither preceded
    nor followed by a word character (letter, digit, underscore): "Error" matches `error`,
    "terror" and "errors" do not; "error-prone" does. A multi-word keyword is a phrase whose
    words may be separated by any run of whitespace ("stack  trace" matches `stack trace`).
  - `requested`: phrases matched case-insensitively at word boundaries; the phrase's words may
    be separated by any run of non-word characters (whitespace and punctuation), and
    punctuation at its ends is ignored: `talk to a human` matches "I want to TALK TO A  human!"
    and "talk to... a human".
  - `pattern`: a Python regular expression searched anywhere in the original text, with the
    flags it carries: case-sensitive unless it says so itself (`(?i)...`).
  - `turns_above: N`: holds when `turn` (user messages so far, this one included) is > N.
  - Several keys in one `when` are alternative detectors: the trigger holds when ANY holds (a
    list of detectors, like the lists inside each key).
  - Case-insensitive means equal after Unicode lowercasing character by character (`str.lower`;
    the one character whose lowercase is longer, U+0130, is compared as itself).
  - Inactive triggers (`active: false`) never match.
  - Ordering: by `priority` ascending (1 beats 2), ties by declaration order.

Module map: runner.runtime.routing_text (case folding, tokenizer tables, keyword/phrase
regexes), runner.runtime.routing_prefilter (pattern literal and token prefilters),
runner.runtime.routing_matcher (`TriggerMatcher`, `compile_triggers`, `MatcherCache`; its
docstring states the speed invariant of `best`, hence of `decide_handoff`). This module keeps
the per-message decision and load balancing, and re-exports the names of the others so that
`runner.runtime.routing` stays the one import for callers.

Load balancing (`select_member`): members of the specialization that are `available` (live
availability overrides the spec) and below `max_workload`; the most room
(`max_workload - workload`) wins, then the lowest `priority` number, then declaration order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

# Every name the module had before its split stays importable from here; the private ones are
# re-exported with `X as X` (no caller should need them but the tests).
from runner.runtime.routing_matcher import _EMPTY as _EMPTY
from runner.runtime.routing_matcher import _LEAF as _LEAF
from runner.runtime.routing_matcher import (
    DetectorKind,
    MatcherCache,
    TriggerMatch,
    TriggerMatcher,
    compile_team,
    compile_triggers,
)
from runner.runtime.routing_matcher import _Lazy as _Lazy
from runner.runtime.routing_prefilter import _MAX_ALTERNATIVES as _MAX_ALTERNATIVES
from runner.runtime.routing_prefilter import _MAX_STARTS as _MAX_STARTS
from runner.runtime.routing_prefilter import _MAX_TOKENS as _MAX_TOKENS
from runner.runtime.routing_prefilter import _UNBOUNDED as _UNBOUNDED
from runner.runtime.routing_prefilter import _exotic as _exotic
from runner.runtime.routing_prefilter import _Found as _Found
from runner.runtime.routing_prefilter import _pattern_fold as _pattern_fold
from runner.runtime.routing_prefilter import _PatternDetector as _PatternDetector
from runner.runtime.routing_prefilter import _required_literals as _required_literals
from runner.runtime.routing_prefilter import _token_requirement as _token_requirement
from runner.runtime.routing_text import _ASCII_WORDS as _ASCII_WORDS
from runner.runtime.routing_text import _MARK_HIGH as _MARK_HIGH
from runner.runtime.routing_text import _MAX_ODD as _MAX_ODD
from runner.runtime.routing_text import _NW as _NW
from runner.runtime.routing_text import _UNIT_RE as _UNIT_RE
from runner.runtime.routing_text import _WORD as _WORD
from runner.runtime.routing_text import _WORDS as _WORDS
from runner.runtime.routing_text import _WS as _WS
from runner.runtime.routing_text import _detector_regex as _detector_regex
from runner.runtime.routing_text import _keyword_units as _keyword_units
from runner.runtime.routing_text import _requested_units as _requested_units
from runner.runtime.routing_text import _unit_words as _unit_words
from runner.runtime.routing_text import _units_source as _units_source
from runner.runtime.routing_text import fold_case, keyword_regex, requested_regex
from runner.spec.models import Team, TeamMember

HUMAN = "human"

HandoffAction = Literal["stay", "handoff", "human", "no_free_member"]

__all__ = [
    "HUMAN",
    "DetectorKind",
    "HandoffAction",
    "HandoffDecision",
    "MatcherCache",
    "TriggerMatch",
    "TriggerMatcher",
    "compile_team",
    "compile_triggers",
    "decide_handoff",
    "fold_case",
    "keyword_regex",
    "requested_regex",
    "select_member",
]


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
