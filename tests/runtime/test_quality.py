"""Conversation quality on scripted sessions with known answers: resolution by how a session
ended, goal coverage with the reply that covers each goal as evidence, expected outcomes from
what happened, response-time compliance, an evaluator agent's verdict, authority."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import AUTH

from runner.providers.base import Reply
from runner.providers.local import LocalProvider
from runner.runtime.errors import SessionNotFoundError

OTHER_WORKSPACE = {
    "user_id": "eve",
    "workspace_id": "workspace-999",
    "permissions": ["chat:access"],
}


async def test_a_resolved_team_session_scores_its_goals_outcomes_and_timing(lc: Any) -> None:
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    await session.send("Hi, I have a question about my account settings")
    await session.send("The dashboard shows an Error every time I log in")
    await session.end("resolved")
    quality = await lc.analyze_conversation_quality(
        session.id,
        auth=AUTH,
        user_goals=["dashboard error at login", "refund for my broken parcel"],
        expected_outcomes=["resolved", "handed off", "escalated to a person"],
        context={"response_time_target_ms": 60_000},
    )
    scores = quality["scores"]
    assert scores["resolution"]["score"] == 1.0 and scores["resolution"]["outcome"] == "resolved"
    goals = scores["goal_coverage"]
    # the local provider's replies repeat the message, so the second reply covers the first goal
    assert goals["covered"] == ["dashboard error at login"]
    assert goals["missing"] == ["refund for my broken parcel"]
    assert goals["score"] == 0.5
    assert goals["evidence"]["dashboard error at login"].startswith("message 4: '[tech-agent-1")
    outcomes = scores["expected_outcomes"]
    # escalation level 1 opened with the handoff: an escalation happened, as the outcome says
    assert outcomes["met"] == ["resolved", "handed off", "escalated to a person"]
    assert outcomes["score"] == 1.0
    assert scores["response_time"]["answered_turns"] == 2
    assert scores["response_time"]["score"] == 1.0
    assert quality["figures"]["turns"] == 2 and quality["figures"]["handoffs"] == 1
    assert quality["figures"]["messages"] == 4
    assert quality["overall"] == pytest.approx((1.0 + 0.5 + 1.0 + 1.0) / 4)
    assert "judged" not in scores


async def test_an_idle_timeout_is_an_abandoned_session(lc: Any, clock: Any) -> None:
    idle = await lc.create_agent_session(agent="general-agent-1", auth=AUTH, idle_timeout=60)
    await idle.send("Hello")
    clock.advance(120)
    await lc.sweep()
    abandoned = await lc.analyze_conversation_quality(idle.id, auth=AUTH)
    assert abandoned["scores"]["resolution"] == {
        "score": 0.0,
        "outcome": "abandoned (idle timeout)",
        "evidence": "ended (idle_timeout) after 1 turn(s)",
    }


class SlowProvider(LocalProvider):
    """The local store answering after 7 s of the test's fake clock (a slow model)."""

    def __init__(self, store: Any, clock: Any) -> None:
        super().__init__(store, owns_store=True)
        self.clock = clock

    def respond(self, **kwargs: Any) -> Reply:
        self.clock.advance(7)
        return super().respond(**kwargs)


async def test_slow_turns_miss_the_response_target(open_lc: Any, clock: Any, tmp_path: Any) -> None:
    slow = SlowProvider(LocalProvider.open(tmp_path / "slow.db").store, clock)
    async with open_lc(provider=slow) as lc:
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        await session.send("Hello")
        await session.send("Are you there?")
        late = await lc.analyze_conversation_quality(session.id, auth=AUTH)
        patient = await lc.analyze_conversation_quality(
            session.id, auth=AUTH, context={"response_time_target_ms": 8000}
        )
    assert late["scores"]["resolution"]["score"] is None  # still open: no resolution score
    assert late["scores"]["response_time"] == {
        "score": 0.0,
        "target_ms": 5000.0,
        "within": 0,
        "answered_turns": 2,
        "evidence": "0 of 2 answered turns within 5000 ms",
    }
    assert late["overall"] == 0.0
    assert patient["scores"]["response_time"]["score"] == 1.0


async def test_another_workspace_cannot_read_a_sessions_quality(lc: Any) -> None:
    session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
    with pytest.raises(SessionNotFoundError):
        await lc.analyze_conversation_quality(session.id, auth=OTHER_WORKSPACE)


JUDGE = """
apiVersion: runner/v1
kind: Agent
name: quality-judge
model: gpt-4o-mini
instructions: Score support conversations.
"""


class ScoringProvider(LocalProvider):
    """The local store, with a model behind one agent: the judge answers a fixed verdict (what
    a model would do cannot run here)."""

    def respond(self, **kwargs: Any) -> Reply:
        reply = super().respond(**kwargs)
        if kwargs["agent_name"] == "quality-judge":
            assert "User goals: reset my password" in kwargs["text"]
            assert "user: I forgot my password" in kwargs["text"]
            return Reply("SCORE: 4 out of 5. The agent walked the user through it.", 10, 12)
        return reply


async def test_an_evaluator_agent_judges_the_conversation(open_lc: Any, tmp_path: Any) -> None:
    env = f"""
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
data_dir: {tmp_path / "store"}
quality: {{evaluator: quality-judge}}
"""
    provider = ScoringProvider(LocalProvider.open(tmp_path / "judged.db").store, owns_store=True)
    async with open_lc(env, JUDGE, provider=provider) as lc:
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        await session.send("I forgot my password")
        quality = await lc.analyze_conversation_quality(
            session.id, auth=AUTH, user_goals=["reset my password"]
        )
    judged = quality["scores"]["judged"]
    assert judged["score"] == pytest.approx(0.8) and judged["evaluator"] == "quality-judge"
    assert judged["evidence"].startswith("quality-judge: SCORE: 4 out of 5")


async def test_insights_carry_the_resolution_rate_and_advise_when_it_is_low(lc: Any) -> None:
    for reason in ("resolved", "user_ended", "user_ended"):
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        await session.send("Hello, I need help with my account")
        await session.end(reason)
    insights = lc.get_performance_insights("general-agent-1")
    assert insights["figures"]["window"]["resolution_rate"] == pytest.approx(1 / 3)
    assert (
        "33% of the 3 sessions that ended in the last 300 s were resolved" in insights["insights"]
    )
    assert any("most sessions end unresolved" in r for r in insights["optimizations"])
