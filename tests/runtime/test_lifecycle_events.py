"""Events (sync and async callbacks, wildcards, failing callbacks), the team-router seam
(handoffs, awaiting_human, escalation changes), reload, status and analytics."""

from __future__ import annotations

from typing import Any

from runtime_support import AUTH

from runner.runtime.events import Event
from runner.runtime.lifecycle import Lifecycle
from runner.runtime.teams import Handoff, RouteDecision, TurnContext
from runner.spec.models import EscalationPath, Team


async def test_callbacks_sync_async_wildcards_and_failures(lc: Lifecycle) -> None:
    everything: list[str] = []
    async_seen: list[str] = []

    async def slow_listener(event: Event) -> None:
        async_seen.append(event.type)

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    async def broken_async(event: Event) -> None:
        raise RuntimeError("async listener bug")

    lc.on("*", lambda e: everything.append(e.type))
    lc.on("lifecycle:session_created", broken)
    lc.on("lifecycle:session_created", broken_async)
    lc.on("session:*", slow_listener)
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    assert (await session.send("hello")).agent == "tech-advisor"
    await session.end("resolved")
    await lc.drain()
    assert everything[0] == "agent:created"  # applied on demand: never applied before
    assert everything[1:3] == ["lifecycle:session_created", "session:state-changed"]
    assert everything[-2:] == ["session:state-changed", "lifecycle:session_ended"]
    assert async_seen == ["session:state-changed", "session:state-changed"]
    assert lc.events.errors == 2
    assert lc.get_system_status()["components"]["events"]["status"] == "degraded"


class ScriptedRouter:
    """A stand-in for the teams engineer's router: 'error' -> tech, 'human' -> a person."""

    def __init__(self, team: Team, escalation_path: EscalationPath | None) -> None:
        self.team = team

    def route(self, turn: TurnContext) -> RouteDecision:
        text = turn.text.lower()
        if "human" in text:
            return RouteDecision(
                agent=None,
                handoffs=(Handoff(turn.current_agent, "human", "wants-a-person"),),
                state="awaiting_human",
                escalation={"level": 2, "target": "human", "status": "pending_approval"},
                events=(("escalation:requested", {"level": 2}),),
                router_state={"seen": int(turn.router_state.get("seen", 0)) + 1},
            )
        if "error" in text and turn.current_agent != "tech-agent-1":
            return RouteDecision(
                agent="tech-agent-1",
                handoffs=(Handoff(turn.current_agent, "tech-agent-1", "technical-issue-detected"),),
                router_state={"seen": int(turn.router_state.get("seen", 0)) + 1},
            )
        return RouteDecision(agent=turn.current_agent)


async def test_router_decisions_drive_handoffs_humans_and_escalations(open_lc: Any) -> None:
    async with open_lc(router_factory=ScriptedRouter) as lc:
        async with lc.collect() as events:
            session = await lc.create_agent_session(team="customer-support", auth=AUTH)
            first = await session.send("Hi, I have a question about my account settings")
            assert first.agent == "general-agent-1"
            second = await session.send("The dashboard shows an Error every time I log in")
            assert second.agent == "tech-agent-1"
            assert second.text.startswith("[tech-agent-1 v1]")
            assert [h.to for h in second.handoffs] == ["tech-agent-1"]
            third = await session.send("I want to talk to a human")
            assert third.agent is None and third.state == "awaiting_human"
            assert session.escalation == {
                "level": 2,
                "target": "human",
                "status": "pending_approval",
            }
        types = [e.type for e in events]
        i = types.index("handoff:initiated")
        assert types[i + 1 : i + 2] == ["handoff:completed"] or "handoff:completed" in types[i:]
        assert "escalation:requested" in types
        human = [e for e in events if e.type == "handoff:initiated" and e.data["to"] == "human"]
        assert human and human[0].data["trigger"] == "wants-a-person"
        # an operator approves outside a turn
        await lc.apply_decision(
            session.id,
            RouteDecision(
                agent=None,
                escalation={"level": 2, "target": "human", "status": "approved"},
                events=(("escalation:approved", {"by": "supervisor-1"}),),
            ),
            auth=AUTH,
        )
        assert session.escalation is not None and session.escalation["status"] == "approved"
        team = lc.get_system_analytics()["performance"]["teams"]["customer-support"]
        assert team["handoffs"] == 2 and team["escalations"] == 1
        sid = session.id
    async with open_lc(router_factory=ScriptedRouter) as again:
        restored = again.get_session(sid, auth=AUTH)
        assert restored.state == "awaiting_human"
        assert restored.row.router_state == {"seen": 2}
        assert restored.escalation is not None and restored.escalation["status"] == "approved"


async def test_a_failing_router_never_breaks_the_session(open_lc: Any) -> None:
    class Broken:
        def __init__(self, team: Team, escalation_path: EscalationPath | None) -> None:
            pass

        def route(self, turn: TurnContext) -> RouteDecision:
            raise ValueError("router bug")

    async with open_lc(router_factory=Broken) as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        assert (await session.send("hello")).agent == "general-agent-1"


async def test_reload_swaps_pools_and_alerts_without_dropping_sessions(
    lc: Lifecycle, make_project: Any
) -> None:
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    await session.send("hello")
    tighter = """
apiVersion: runner/v1
kind: ResourcePool
name: research
agents: [market-analyst, tech-advisor]
limits: {max_concurrent_sessions: 1}
---
apiVersion: runner/v1
kind: Alert
name: any-turn
agent: tech-advisor
metric: turns
condition: above
threshold: 0
window: 1m
"""
    fired: list[str] = []
    lc.on("performance:alert", lambda e: fired.append(e.data["alert"]))
    lc.reload(make_project(tighter))
    assert session.state == "active"
    assert (await session.send("still here after reload")).agent == "tech-advisor"
    assert fired == ["any-turn"]
    from runner.runtime.errors import PoolLimitError

    try:
        await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    except PoolLimitError as exc:
        assert exc.limit == 1
    else:
        raise AssertionError("the reloaded pool limit was not enforced")


async def test_status_and_analytics_shapes(lc: Lifecycle) -> None:
    status = lc.get_system_status()
    assert status["status"] == "healthy"
    assert set(status) == {"status", "components", "active_sessions", "uptime_s"}
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    await session.send("hello")
    analytics = lc.get_system_analytics()
    assert set(analytics) == {"sessions", "performance", "resources", "costs", "health"}
    assert analytics["sessions"]["active"] == 1
    agents = analytics["performance"]["agents"]
    assert agents["general-agent-1"]["turns"] == 1
    pool = analytics["resources"]["pools"]["high-performance"]
    assert pool["active_sessions"] == 1
    assert "limits.max_cpu_percent" in pool["reported"]
    assert "scaling" in pool["reported"]
    assert any("memory/CPU" in r for r in pool["recommendations"])
    insights = lc.get_performance_insights("general-agent-1")
    assert insights["figures"]["turns"] == 1 and insights["insights"]
    assert lc.get_system_status()["active_sessions"] == 1


async def test_monitoring_can_be_switched_off(open_lc: Any) -> None:
    async with open_lc(environ={"AGENT_LIFECYCLE_MONITORING_ENABLED": "false"}) as lc:
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await session.send("hello")
        assert lc.get_system_analytics()["performance"]["agents"] == {}
