"""Issue 9 finding 9: a message's size is known before the call, so one that cannot fit a
pool's token budget is refused unsent — naming the pool, the limit and the estimate."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import AUTH

from runner.runtime.errors import TokenBudgetError

POOL = """
apiVersion: runner/v1
kind: ResourcePool
name: research
agents: [market-analyst, tech-advisor]
limits:
  max_concurrent_sessions: 5
  max_tokens_per_minute: 20000
"""


def _items(lc: Any, session: Any) -> int:
    return len(lc.provider.store.list_items(session.conversation_id).items)


async def test_a_message_over_the_whole_budget_is_refused_unsent(open_lc: Any) -> None:
    async with open_lc(POOL) as lc:
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        before = _items(lc, session)
        huge = "word " * 1_000_000  # 5 MB: before, it was sent and used 2.5M tokens of 20,000
        with pytest.raises(TokenBudgetError) as refused:
            await session.send(huge)
        message = str(refused.value)
        assert "pool.research" in message and "20,000" in message
        assert "1,250,000 tokens (estimated)" in message and "on its own" in message
        assert refused.value.estimate == 1_250_000
        assert _items(lc, session) == before  # nothing reached the provider
        figures = lc.get_system_analytics()["resources"]["pools"]["research"]
        assert figures["tokens_last_minute"] == 0
        assert session.turns == 0
        # with wait=, a message that can never fit is refused at once, not waited for
        with pytest.raises(TokenBudgetError):
            await session.send(huge, wait=30)
        reply = await session.send("a normal question")
        assert reply.agent == "tech-advisor"


async def test_a_message_over_what_is_left_is_refused_naming_what_is_left(open_lc: Any) -> None:
    async with open_lc(POOL) as lc:
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        lc.pools.record_tokens(["research"], 19_000)  # this minute's use so far
        before = _items(lc, session)
        with pytest.raises(TokenBudgetError) as refused:
            await session.send("x" * 8_000)  # about 2,000 tokens: fits the limit, not what is left
        message = str(refused.value)
        assert "2,000 tokens (estimated)" in message and "1,000 left" in message
        assert refused.value.retry_after > 0
        assert _items(lc, session) == before
        assert (await session.send("short")).agent == "tech-advisor"
