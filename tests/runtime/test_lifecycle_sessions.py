"""Sessions: states and their events, max turns, idle expiry, auth, persistence across restarts."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import AUTH

from runner.runtime.clock import FakeClock
from runner.runtime.errors import (
    PermissionDeniedError,
    SessionNotFoundError,
    SessionStateError,
)
from runner.runtime.lifecycle import Lifecycle


async def test_agent_session_answers_in_one_conversation(lc: Lifecycle) -> None:
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    first = await session.send("Which database should we pick?")
    second = await session.send("And for caching?")
    assert first.agent == "tech-advisor" and second.agent == "tech-advisor"
    assert first.text.startswith("[tech-advisor v1]")
    assert first.input_tokens > 0 and first.output_tokens > 0
    # the conversation is reused: the second turn's input counts the words of the first
    assert second.input_tokens > first.input_tokens
    assert session.turns == 2
    assert session.conversation_id.startswith("conv")


async def test_team_session_starts_with_the_primary(lc: Lifecycle) -> None:
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    reply = await session.send("Hi, I have a question about my account settings")
    assert reply.agent == "general-agent-1"
    assert session.team == "customer-support"
    assert set(session.versions) == {"general-agent-1", "tech-agent-1", "billing-agent-1"}


async def test_every_state_transition_emits_state_changed(lc: Lifecycle) -> None:
    changes: list[tuple[Any, Any, Any]] = []
    lc.on(
        "session:state-changed",
        lambda e: changes.append((e.data["from"], e.data["to"], e.data["reason"])),
    )
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    await session.pause()
    assert session.state == "paused"
    with pytest.raises(SessionStateError, match="resume it"):
        await session.send("hello?")
    await session.resume()
    assert session.state == "active"
    await lc.await_human(session.id, auth=AUTH, reason="operator took over")
    assert session.state == "awaiting_human"
    waiting = await session.send("is anyone there?")
    assert waiting.agent is None and waiting.text == ""
    await session.resume()
    assert (await session.send("back to the agent")).agent == "tech-advisor"
    await session.end("resolved")
    assert session.state == "ended" and session.reason == "resolved"
    with pytest.raises(SessionStateError, match="ended"):
        await session.send("after the end")
    assert changes == [
        (None, "active", "created"),
        ("active", "paused", None),
        ("paused", "active", None),
        ("active", "awaiting_human", "operator took over"),
        ("awaiting_human", "active", None),
        ("active", "ended", "resolved"),
    ]


async def test_max_turns_ends_gracefully_on_the_turn_past_the_limit(lc: Lifecycle) -> None:
    session = await lc.create_agent_session(team="customer-support", auth=AUTH, max_turns=3)
    for _ in range(3):
        reply = await session.send("hello")
        assert reply.agent == "general-agent-1" and reply.state == "active"
    fourth = await session.send("one more question")
    assert fourth.state == "ended" and fourth.reason == "max_turns" and fourth.agent is None
    assert session.state == "ended" and session.reason == "max_turns"
    assert session.turns == 3


async def test_max_turns_defaults_to_the_agents_template(lc: Lifecycle) -> None:
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    assert session.max_turns == 50  # template customer-service


async def test_idle_sessions_end_on_sweep(lc: Lifecycle, clock: FakeClock) -> None:
    ended: list[str] = []
    lc.on("lifecycle:session_ended", lambda e: ended.append(e.data["reason"]))
    idle = await lc.create_agent_session(agent="tech-advisor", auth=AUTH, idle_timeout="5m")
    busy = await lc.create_agent_session(agent="tech-advisor", auth=AUTH, idle_timeout=300)
    clock.advance(200)
    await busy.send("still here")
    clock.advance(150)
    assert await lc.sweep() == [idle.id]
    assert idle.state == "ended" and idle.reason == "idle_timeout"
    assert busy.state == "active"
    clock.advance(300)
    await lc.sweep()
    assert busy.reason == "idle_timeout"
    assert ended == ["idle_timeout", "idle_timeout"]


async def test_background_sweeper_expires_idle_sessions(open_lc: Any, clock: FakeClock) -> None:
    environ = {"AGENT_PERFORMANCE_MONITORING_INTERVAL_MS": "1000"}
    async with open_lc(environ=environ, background=True) as lc:
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH, idle_timeout=5)
        for _ in range(8):
            clock.advance(1)
            for _ in range(5):
                await asyncio_yield()
        assert session.reason == "idle_timeout"


async def asyncio_yield() -> None:
    import asyncio

    await asyncio.sleep(0)


async def test_permissions_and_workspace_isolation(lc: Lifecycle) -> None:
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    other = {"user_id": "u2", "workspace_id": "workspace-999", "permissions": ["chat:access"]}
    with pytest.raises(SessionNotFoundError) as hidden:
        lc.get_session(session.id, auth=other)
    with pytest.raises(SessionNotFoundError) as missing:
        lc.get_session("sess_does_not_exist", auth=other)
    assert str(hidden.value).replace(session.id, "X") == str(missing.value).replace(
        "sess_does_not_exist", "X"
    )
    with pytest.raises(SessionNotFoundError):
        await lc.end_agent_session(session.id, reason="nope", auth=other)
    with pytest.raises(SessionNotFoundError):
        await lc.send(session.id, "hi", auth=other)
    no_chat = {**AUTH, "permissions": ["billing:read"]}
    with pytest.raises(PermissionDeniedError, match="chat:access"):
        lc.get_session(session.id, auth=no_chat)
    with pytest.raises(PermissionDeniedError):
        await lc.create_agent_session(agent="tech-advisor", auth=no_chat)
    with pytest.raises(PermissionDeniedError, match="workspace-123"):
        await lc.create_agent_session(team="customer-support", auth=other)
    assert lc.get_session(session.id, auth=AUTH).state == "active"


async def test_a_restarted_runtime_finds_and_continues_its_sessions(open_lc: Any) -> None:
    async with open_lc() as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await session.send("first message")
        await session.send("second message")
        paused = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await paused.pause()
        done = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await done.end("resolved")
        ids = (session.id, session.conversation_id, paused.id, done.id)
    async with open_lc() as lc2:
        again = lc2.get_session(ids[0], auth=AUTH)
        assert again.state == "active" and again.turns == 2
        assert again.conversation_id == ids[1]
        reply = await again.send("third message")
        assert reply.agent == "general-agent-1" and reply.turn == 3
        assert lc2.get_session(ids[2], auth=AUTH).state == "paused"
        ended = lc2.get_session(ids[3], auth=AUTH)
        assert ended.state == "ended" and ended.reason == "resolved"
        assert lc2.active_sessions == 2
