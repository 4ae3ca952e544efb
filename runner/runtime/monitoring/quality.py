"""Conversation quality: scores of one session, each with the evidence it was drawn from.

Role: `Lifecycle.analyze_conversation_quality` gathers a session's facts (its row, the messages
its conversation holds, the per-turn figures of `SessionLedger`, an evaluator agent's verdict
when the Environment names one) and `assess_quality` here turns them into scores. Pure: no I/O,
no clock, so a Scenario with known answers gets known scores.

Scores are in [0, 1]; `overall` is the mean of those that apply:
  - resolution: how the session ended (resolved 1, escalated to a person 0.5, ran out of
    `max_turns` 0.25, abandoned by idle timeout 0; still open: no score);
  - goal_coverage: the share of `user_goals` the agents' replies address (most of a goal's
    words appear in one reply: that reply is the evidence);
  - expected_outcomes: the share of `expected_outcomes` met (one that speaks of escalation,
    a handoff or resolution is matched with what happened; any other like a goal);
  - response_time: the share of answered turns within the target (`context["response_time_
    target_ms"]`, default 5,000 ms);
  - judged: the evaluator agent's own score, when there is one.
Turns, time to resolution, handoffs and escalations are reported as figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

__all__ = ["DEFAULT_RESPONSE_TARGET_MS", "QualityFacts", "assess_quality", "content_words"]

DEFAULT_RESPONSE_TARGET_MS = 5000.0
_COVERED = 0.6  # share of a goal's words one reply must hold
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "that",
        "this",
        "from",
        "have",
        "has",
        "had",
        "are",
        "was",
        "were",
        "will",
        "would",
        "can",
        "could",
        "should",
        "not",
        "but",
        "our",
        "your",
        "you",
        "they",
        "them",
        "their",
        "his",
        "her",
        "its",
        "what",
        "when",
        "where",
        "which",
        "who",
        "how",
        "all",
        "any",
        "get",
        "got",
        "into",
        "out",
        "about",
        "than",
        "then",
        "there",
        "these",
        "those",
        "been",
        "being",
        "also",
        "just",
        "more",
        "most",
        "some",
        "such",
        "only",
        "own",
        "same",
        "very",
        "too",
    ]
)
_RESOLUTION = {
    "resolved": (1.0, "resolved"),
    "user_ended": (0.5, "ended by the user"),
    "max_turns": (0.25, "ran out of max_turns"),
    "idle_timeout": (0.0, "abandoned (idle timeout)"),
}


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (lower case, 3+ letters, no stop words)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


@dataclass(frozen=True, slots=True)
class QualityFacts:
    """What is known of one session when it is assessed."""

    session_id: str
    state: str
    reason: str | None
    turns: int
    created_at: float
    ended_at: float | None
    escalated: bool
    handoffs: int
    response_times_ms: Sequence[float]
    messages: Sequence[tuple[str, str]]  # (role, text), oldest first
    judged: tuple[float | None, str] | None = None  # (score, evidence) from the evaluator
    evaluator: str | None = None
    cost: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _snippet(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _match(goal: str, replies: Sequence[tuple[int, str]]) -> tuple[bool, str]:
    words = content_words(goal)
    if not words:
        return False, "the goal has no content words to look for"
    best, where = 0.0, None
    for index, text in replies:
        share = len(words & content_words(text)) / len(words)
        if share > best:
            best, where = share, (index, text)
    if where is not None and best >= _COVERED:
        return True, f"message {where[0] + 1}: {_snippet(where[1])!r} ({best:.0%} of its words)"
    return False, f"no reply holds {_COVERED:.0%} of its words (best {best:.0%})"


def _resolution(facts: QualityFacts) -> dict[str, Any]:
    if facts.state != "ended":
        if facts.escalated or facts.state == "awaiting_human":
            return {"score": 0.5, "outcome": "escalated", "evidence": f"state {facts.state}"}
        return {"score": None, "outcome": "in_progress", "evidence": f"state {facts.state}"}
    if facts.escalated and facts.reason != "resolved":
        return {"score": 0.5, "outcome": "escalated", "evidence": f"ended ({facts.reason})"}
    score, outcome = _RESOLUTION.get(facts.reason or "", (0.5, facts.reason or "ended"))
    return {
        "score": score,
        "outcome": outcome,
        "evidence": f"ended ({facts.reason}) after {facts.turns} turn(s)",
    }


_RESOLVED_WORDS = frozenset({"resolved", "resolve", "resolution", "solved", "fixed"})
_ESCALATED_WORDS = frozenset({"escalated", "escalate", "escalation"})
_HANDOFF_WORDS = frozenset({"handed", "handoff", "handover", "transferred", "transfer"})


def _happened(outcome: str, facts: QualityFacts, resolution: str) -> bool | None:
    """Whether an outcome about the session itself happened (None: it is about the content)."""
    words = content_words(outcome)
    if words & _ESCALATED_WORDS:
        return facts.escalated
    if words & _HANDOFF_WORDS:
        return facts.handoffs > 0
    if words & _RESOLVED_WORDS:
        return resolution == "resolved"
    return None


def _coverage(
    wanted: Iterable[str],
    replies: Sequence[tuple[int, str]],
    decide: Callable[[str], bool | None] | None = None,
) -> dict[str, Any]:
    met: list[str] = []
    unmet: list[str] = []
    evidence: dict[str, str] = {}
    for item in wanted:
        decided = decide(item) if decide is not None else None
        if decided is not None:
            ok, why = decided, "what happened in the session"
        else:
            ok, why = _match(item, replies)
        (met if ok else unmet).append(item)
        evidence[item] = why
    total = len(met) + len(unmet)
    return {
        "score": len(met) / total if total else None,
        "met": met,
        "unmet": unmet,
        "evidence": evidence,
    }


def assess_quality(
    facts: QualityFacts,
    *,
    user_goals: Sequence[str] = (),
    expected_outcomes: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The scores of one session with their evidence (see the module docstring)."""
    context = dict(context or {})
    replies = [(i, text) for i, (role, text) in enumerate(facts.messages) if role == "assistant"]
    resolution = _resolution(facts)
    scores: dict[str, Any] = {"resolution": resolution}
    if user_goals:
        goals = _coverage(user_goals, replies)
        scores["goal_coverage"] = {
            "score": goals["score"],
            "covered": goals["met"],
            "missing": goals["unmet"],
            "evidence": goals["evidence"],
        }
    if expected_outcomes:
        scores["expected_outcomes"] = _coverage(
            expected_outcomes,
            replies,
            decide=lambda o: _happened(o, facts, resolution["outcome"]),
        )
    target = float(context.get("response_time_target_ms", DEFAULT_RESPONSE_TARGET_MS))
    times = list(facts.response_times_ms)
    within = sum(1 for ms in times if ms <= target)
    scores["response_time"] = {
        "score": within / len(times) if times else None,
        "target_ms": target,
        "within": within,
        "answered_turns": len(times),
        "evidence": f"{within} of {len(times)} answered turns within {target:g} ms",
    }
    if facts.judged is not None:
        judged_score, why = facts.judged
        scores["judged"] = {"score": judged_score, "evaluator": facts.evaluator, "evidence": why}
    applied = [s["score"] for s in scores.values() if s.get("score") is not None]
    duration = (facts.ended_at - facts.created_at) if facts.ended_at is not None else None
    return {
        "session_id": facts.session_id,
        "overall": round(fmean(applied), 4) if applied else None,
        "scores": scores,
        "figures": {
            "turns": facts.turns,
            "time_to_resolution_s": duration if resolution["outcome"] == "resolved" else None,
            "duration_s": duration,
            "handoffs": facts.handoffs,
            "escalated": facts.escalated,
            "cost": facts.cost,
            "messages": len(facts.messages),
        },
        "context": context,
    }
