"""Resource pools: concurrent-session slots (refusal, release, waiting by priority), token
budgets on a sliding 60 s window, and `resource:warning` once per threshold crossing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runtime_support import AUTH

from runner.runtime.clock import FakeClock
from runner.runtime.errors import PoolLimitError, TokenBudgetError

SMALL_POOL = """
apiVersion: runner/v1
kind: ResourcePool
name: research
agents: [market-analyst, tech-advisor]
limits:
  max_concurrent_sessions: 2
  max_tokens_per_minute: 100
  max_memory_mb: 512
monitoring:
  alert_thresholds: {sessions: 0.5, tokens: 0.8, memory: 0.9}
"""


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_full_pool_refuses_naming_pool_and_limit_and_frees_on_end(open_lc: Any) -> None:
    async with open_lc(SMALL_POOL) as lc:
        first = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await lc.create_agent_session(agent="market-analyst", auth=AUTH)
        with pytest.raises(PoolLimitError) as refused:
            await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert refused.value.pool == "research" and refused.value.limit == 2
        assert "pool.research" in str(refused.value) and "2" in str(refused.value)
        await first.end("done")
        third = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert third.state == "active"
        figures = lc.get_system_analytics()["resources"]["pools"]["research"]
        assert figures["active_sessions"] == 2 and figures["refused_sessions"] == 1
        assert "limits.max_memory_mb" in figures["reported"]


async def test_waiting_for_a_slot_is_served_by_priority(open_lc: Any, clock: FakeClock) -> None:
    async with open_lc(SMALL_POOL) as lc:
        a = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        low = asyncio.create_task(
            lc.create_agent_session(agent="tech-advisor", auth=AUTH, wait=30, priority="low")
        )
        await settle()
        urgent = asyncio.create_task(
            lc.create_agent_session(agent="tech-advisor", auth=AUTH, wait=30, priority="urgent")
        )
        await settle()
        assert not low.done() and not urgent.done()
        await a.end("done")
        await settle()
        assert urgent.done() and not low.done()
        clock.advance(31)
        await settle()
        with pytest.raises(PoolLimitError, match="after waiting"):
            await low
        assert (await urgent).state == "active"


async def test_resource_warning_once_per_crossing(open_lc: Any) -> None:
    async with open_lc(SMALL_POOL) as lc:
        warnings: list[dict[str, Any]] = []
        lc.on("resource:warning", lambda e: warnings.append(dict(e.data)))
        one = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)  # 1/2 >= 0.5
        two = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)  # still above
        assert [(w["pool"], w["metric"]) for w in warnings] == [("research", "sessions")]
        await one.end("done")
        await two.end("done")  # 0/2: back under, re-armed
        await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert len(warnings) == 2
        assert warnings[0]["limit"] == 2 and warnings[0]["threshold"] == 0.5


async def test_token_budget_refuses_then_recovers_as_the_window_slides(
    open_lc: Any, clock: FakeClock
) -> None:
    async with open_lc(SMALL_POOL) as lc:
        warnings: list[str] = []
        lc.on("resource:warning", lambda e: warnings.append(e.data["metric"]))
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        used = 0
        sent = 0
        with pytest.raises(TokenBudgetError) as refused:
            while True:
                reply = await session.send("please compare these two storage engines for me")
                used += reply.total_tokens
                sent += 1
                clock.advance(1)
        assert used >= 100 and sent >= 2
        assert refused.value.pool == "research" and refused.value.limit == 100
        assert 0 < refused.value.retry_after <= 60
        assert warnings.count("tokens") == 1
        # the turn that was refused did not count
        assert session.turns == sent
        clock.advance(refused.value.retry_after)
        reply = await session.send("and now?")
        assert reply.agent == "tech-advisor"


async def test_token_budget_wait_sends_once_the_window_allows(
    open_lc: Any, clock: FakeClock
) -> None:
    async with open_lc(SMALL_POOL) as lc:
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        for _ in range(50):
            if lc.pools.token_wait(["research"]) is not None:
                break
            await session.send("one two three four five six seven eight nine ten")
        blocked = lc.pools.token_wait(["research"])
        assert blocked is not None
        task = asyncio.create_task(session.send("waiting for budget", wait=120))
        await settle()
        assert not task.done()
        clock.advance(blocked[3] + 0.01)
        await settle()
        reply = await asyncio.wait_for(task, 5)
        assert reply.agent == "tech-advisor"


async def test_default_session_limit_per_agent(open_lc: Any) -> None:
    async with open_lc(environ={"AGENT_DEFAULT_SESSION_LIMIT": "1"}) as lc:
        # tech-advisor's pool (research) limits sessions: the default does not apply to it
        await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        # an agent outside every pool is held to AGENT_DEFAULT_SESSION_LIMIT
    extra = """
apiVersion: runner/v1
kind: Agent
name: loner
model: gpt-4o-mini
instructions: You work alone.
"""
    async with open_lc(extra, environ={"AGENT_DEFAULT_SESSION_LIMIT": "1"}) as lc:
        from runner.runtime.errors import AgentLimitError

        s = await lc.create_agent_session(agent="loner", auth=AUTH)
        with pytest.raises(AgentLimitError, match="AGENT_DEFAULT_SESSION_LIMIT"):
            await lc.create_agent_session(agent="loner", auth=AUTH)
        await s.end("done")
        await lc.create_agent_session(agent="loner", auth=AUTH)
