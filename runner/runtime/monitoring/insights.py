"""What one subject's figures say: the figures reported per agent, and recommendations.

Role: behind `Lifecycle.get_performance_insights` and the analytics (`runner.runtime.status`):
`subject_figures` summarises a `Series`, `recommend` turns those figures into insights and
optimisation recommendations against the slow-response threshold.

Invariant: reading changes nothing.
"""

from __future__ import annotations

from typing import TypedDict

from runner.runtime.monitoring.series import DEFAULT_WINDOW_S, Series, WindowFigures, quantile

__all__ = ["SubjectFigures", "recommend", "subject_figures"]


class SubjectFigures(TypedDict):
    turns: int
    errors: int
    error_rate: float
    average_response_time_ms: float | None
    p95_response_time_ms: float | None
    tokens: int
    tokens_per_turn: float | None
    handoffs: int
    escalations: int
    sessions: int
    window: WindowFigures


def subject_figures(series: Series, now: float) -> SubjectFigures:
    times = sorted(ms for _, ms in series.recent)
    turns = series.turns
    return {
        "turns": turns,
        "errors": series.errors,
        "error_rate": (series.errors / turns) if turns else 0.0,
        "average_response_time_ms": (series.ms_total / turns) if turns else None,
        "p95_response_time_ms": quantile(times, 0.95),
        "tokens": series.tokens,
        "tokens_per_turn": (series.tokens / turns) if turns else None,
        "handoffs": series.handoffs,
        "escalations": series.escalations,
        "sessions": series.sessions,
        "window": series.figures(DEFAULT_WINDOW_S, now),
    }


def recommend(figures: SubjectFigures, *, name: str, slow_ms: float) -> tuple[list[str], list[str]]:
    """(insights, optimisation recommendations) drawn from one subject's figures."""
    insights: list[str] = []
    recs: list[str] = []
    turns = figures["turns"]
    if not turns:
        insights.append(f"{name} has answered no turn yet: no figures to judge")
        return insights, recs
    avg = figures["average_response_time_ms"] or 0.0
    p95 = figures["p95_response_time_ms"] or 0.0
    insights.append(
        f"{turns} turns in {figures['sessions']} sessions; average response {avg:.0f} ms, "
        f"p95 {p95:.0f} ms; error rate {figures['error_rate']:.1%}"
    )
    if avg > slow_ms:
        insights.append(f"responses average {avg:.0f} ms, above the {slow_ms:.0f} ms threshold")
        recs.append(
            "use a faster model deployment, shorten the instructions or trim tools to cut "
            "response time"
        )
    elif p95 > slow_ms:
        insights.append(f"p95 response {p95:.0f} ms is above the {slow_ms:.0f} ms threshold")
        recs.append("tail latency is high: look for slow tool calls or long conversations")
    if avg and p95 > 3 * avg and p95 > 100:
        insights.append("response times vary widely (p95 above 3x the average)")
    if figures["error_rate"] > 0.05:
        insights.append(f"{figures['error_rate']:.1%} of turns failed")
        recs.append(
            "check provider errors (quota 429s, content filters); add retries or a backup member"
        )
    per_turn = figures["tokens_per_turn"] or 0.0
    if per_turn > 2000:
        insights.append(f"{per_turn:.0f} tokens per turn")
        recs.append("long conversations are costly: lower max_turns or summarise and start over")
    if figures["handoffs"] and figures["handoffs"] / turns > 0.3:
        insights.append(f"{figures['handoffs']} handoffs in {turns} turns")
        recs.append(
            "frequent handoffs: review handoff triggers, or make the specialist the primary member"
        )
    window = figures["window"]
    if window["cost"]:
        insights.append(f"{window['cost']:.4f} spent in the last {window['window_s']:.0f} s")
    rate = window["resolution_rate"]
    if rate is not None:
        insights.append(
            f"{rate:.0%} of the {window['sessions_ended']} sessions that ended in the last "
            f"{window['window_s']:.0f} s were resolved"
        )
        if rate < 0.5:
            recs.append(
                "most sessions end unresolved: read a few with analyze_conversation_quality, "
                "then review instructions, handoff triggers and escalation paths"
            )
    if not recs:
        insights.append("figures are within thresholds")
    return insights, recs
