"""Function tool events through serve: `tool:called`, `tool:completed`, `tool:failed` (and
`tool:refused`) reach the session's room and nobody else, and feed
`runner_tool_calls_total{agent,tool,outcome}`.

The events are emitted through the runtime's own event bus (`lc.events.emit`, on the server's
loop) with the data the tool runner gives them (session_id, agent, tool, call_id, reason, ms):
what serve does with them does not depend on what emitted them. The last test drives the
runtime's own tool runner over HTTP (offline, the local provider calls `@name` mentions)."""

from __future__ import annotations

import asyncio
from typing import Any

from serve_support import LiveServer, new_session, send
from test_metrics import scrape, value
from test_socketio import Peer

from runner import Lifecycle
from runner.serve.metrics import MAX_TOOL_LABELS


def emit(live: LiveServer, events: list[tuple[str, dict[str, Any]]]) -> None:
    async def run(lc: Lifecycle) -> None:
        for name, data in events:
            lc.events.emit(name, data)

    live.call(run)


def call_events(sid: str, tool: str = "lookup_account") -> list[tuple[str, dict[str, Any]]]:
    base = {"session_id": sid, "agent": "access-agent", "tool": tool}
    return [
        ("tool:called", {**base, "call_id": "c1"}),
        ("tool:completed", {**base, "call_id": "c1", "ms": 3.5}),
        ("tool:called", {**base, "call_id": "c2"}),
        ("tool:failed", {**base, "call_id": "c2", "reason": "timeout", "error": "x", "ms": 9.0}),
        ("tool:failed", {**base, "call_id": "c3", "reason": "bad_arguments", "error": "y"}),
        ("tool:refused", {**base, "call_id": "c4"}),
    ]


async def test_tool_events_reach_the_session_room_only(live: LiveServer) -> None:
    mine = new_session(live)["id"]
    other = new_session(live, "OTHER_KEY", team="other-desk")["id"]
    async with Peer(live, "APP_KEY") as app, Peer(live, "OTHER_KEY") as stranger:
        assert (await app.join(mine))["ok"] is True
        assert (await stranger.join(mine))["ok"] is False  # another workspace's session
        assert (await stranger.join(other))["ok"] is True
        await asyncio.to_thread(emit, live, call_events(mine))
        failed = await app.wait_for("tool:failed", mine)
        await app.wait_for("tool:refused", mine)
        names = app.names_for(mine)
        assert names.count("tool:called") == 2 and names.count("tool:completed") == 1
        assert names.count("tool:failed") == 2
        assert failed["tool"] == "lookup_account" and failed["agent"] == "access-agent"
        completed = await app.wait_for("tool:completed", mine)
        assert completed["call_id"] == "c1" and completed["ms"] == 3.5
        await asyncio.sleep(0.2)
        assert stranger.names_for(mine) == []
        assert app.names_for(other) == []


def test_tool_calls_are_counted_once_each_by_outcome(live: LiveServer) -> None:
    sid = new_session(live)["id"]
    labels = {"agent": "access-agent", "tool": "reset_password"}
    before = scrape(live)
    emit(live, call_events(sid, "reset_password"))
    after = scrape(live)

    def delta(**extra: str) -> float:
        name = "runner_tool_calls_total"
        return value(after, name, **labels, **extra) - value(before, name, **labels, **extra)

    assert delta(outcome="completed") == 1
    assert delta(outcome="timeout") == 1
    assert delta(outcome="bad_arguments") == 1
    assert delta(outcome="refused") == 1
    assert delta() == 4  # tool:called only says a call started
    found = [labels for labels, _ in after["runner_tool_calls_total"]]
    assert all(set(f) == {"agent", "tool", "outcome"} for f in found)
    assert all(sid not in f.values() for f in found)


def test_tool_labels_are_bounded(live: LiveServer) -> None:
    sid = new_session(live)["id"]
    names = [f"made_up_{i}" for i in range(MAX_TOOL_LABELS + 20)]
    emit(
        live,
        [
            (
                "tool:failed",
                {"session_id": sid, "agent": "triage-agent", "tool": n, "reason": "nope"},
            )
            for n in names
        ],
    )
    samples = scrape(live)["runner_tool_calls_total"]
    tools = {labels["tool"] for labels, _ in samples}
    assert len(tools) <= MAX_TOOL_LABELS + 1
    others = value(
        {"x": samples}, "x", agent="triage-agent", tool="other", outcome="failed"
    )  # an unknown failure reason is `failed`; names past the bound are `other`
    assert others >= 20


async def test_a_real_tool_call_over_http_reaches_the_room_and_the_counter(
    live: LiveServer,
) -> None:
    """The runtime's own tool runner (the local provider calls `@name` mentions): a message
    sent over HTTP makes access-agent call lookup_account; the session's room hears it."""
    sid = new_session(live)["id"]
    before = await asyncio.to_thread(scrape, live)
    async with Peer(live, "APP_KEY") as app:
        assert (await app.join(sid))["ok"] is True
        await asyncio.to_thread(
            send, live, sid, "I typed my password wrong and now I am locked out"
        )
        reply = await asyncio.to_thread(
            send, live, sid, 'please check @lookup_account{"employee_id": "E12345"}'
        )
        assert reply["agent"] == "access-agent" and "lookup_account" in reply["text"]
        called = await app.wait_for("tool:called", sid)
        completed = await app.wait_for("tool:completed", sid)
    assert called["tool"] == completed["tool"] == "lookup_account"
    assert completed["agent"] == "access-agent"
    after = await asyncio.to_thread(scrape, live)
    labels = {"agent": "access-agent", "tool": "lookup_account", "outcome": "completed"}
    name = "runner_tool_calls_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1
