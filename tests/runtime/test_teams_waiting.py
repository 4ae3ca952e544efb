"""Queued handoffs (`on_no_free_member: wait`) complete as soon as a member frees up: when a
session of that member ends, is handed off away or goes to a person, when the member becomes
`available` again, when a reload raises `max_workload`, and at open after a restart. Waiters are
served oldest first (then by priority), one per free slot; ended sessions and sessions that no
longer wait are skipped. Real SQLite registry, the real local provider, the fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import AUTH, OPS, operator

from runner.runtime.clock import FakeClock
from runner.runtime.events import Event
from runner.runtime.lifecycle import Lifecycle
from runner.runtime.sessions import Session

BILLING = "billing-agent-1"
GENERAL = "general-agent-1"

TEAM = r"""
apiVersion: runner/v1
kind: Team
name: support
workspace: workspace-123
members:
  - agent: general-agent-1
    role: primary
    specialization: customer_service
    handoff_triggers:
      - {name: billing-question, when: {pattern: '\b(invoice|refund)\b'}, target: billing}
  - {agent: tech-agent-1, specialization: technical_support}
  - {agent: billing-agent-1, specialization: billing, max_workload: %d}
workflow: {on_no_free_member: wait}
"""


def team(max_workload: int = 1) -> str:
    return TEAM % max_workload


async def on_billing(lc: Lifecycle) -> Session:
    """A session that billing-agent-1 has (taking one of its slots)."""
    session = await lc.create_agent_session(team="support", auth=AUTH)
    assert (await session.send("I need a refund")).agent == BILLING
    return session


async def waiting(lc: Lifecycle, priority: Any = None) -> Session:
    """A session whose billing handoff is queued (general-agent-1 keeps it meanwhile)."""
    session = await lc.create_agent_session(team="support", auth=AUTH, priority=priority)
    reply = await session.send("where is my refund?")
    assert (reply.agent, reply.handoffs) == (GENERAL, ())
    assert session.row.router_state["waiting"]["target"] == "billing"
    return session


def of(seen: list[Event], session: Session, prefix: str = "handoff:") -> list[str]:
    return [
        e.type for e in seen if e.type.startswith(prefix) and e.data["session_id"] == session.id
    ]


async def free_by_ending(lc: Lifecycle, holder: Session) -> None:
    await holder.end("resolved")


async def free_by_handing_off(lc: Lifecycle, holder: Session) -> None:
    result = await lc.operators.handle_agent_handoff(
        holder.id, target_specialization="technical_support", reason="tech question", auth=OPS
    )
    assert result.status == "completed"


async def free_by_a_person(lc: Lifecycle, holder: Session) -> None:
    result = await lc.operators.handle_agent_handoff(
        holder.id, target_specialization="human", reason="wants a person", auth=OPS
    )
    assert result.status == "human" and holder.state == "awaiting_human"


@pytest.mark.parametrize("free", [free_by_ending, free_by_handing_off, free_by_a_person])
async def test_a_freed_slot_completes_the_waiting_handoff_at_once(
    open_lc: Any, clock: FakeClock, free: Any
) -> None:
    async with open_lc(team()) as lc:
        holder = await on_billing(lc)
        seen: list[Event] = []
        lc.on("*", seen.append)
        waiter = await waiting(lc)
        assert of(seen, waiter) == ["handoff:queued"]
        clock.advance(42)
        await free(lc, holder)
        # completed right away, not on the waiter's next message
        assert of(seen, waiter) == ["handoff:queued", "handoff:initiated", "handoff:completed"]
        completed = [e.data for e in seen if e.type == "handoff:completed"][-1]
        assert completed["session_id"] == waiter.id
        assert (completed["from"], completed["to"], completed["trigger"]) == (
            GENERAL,
            BILLING,
            "billing-question",
        )
        assert completed["queued_for_s"] == 42.0
        # the holder's change came first, then the waiter's handoff
        types = [(e.type, e.data.get("session_id")) for e in seen]
        freed_at = max(i for i, (_, sid) in enumerate(types) if sid == holder.id)
        assert freed_at < types.index(("handoff:initiated", waiter.id))
        assert waiter.agent == BILLING and "waiting" not in waiter.row.router_state
        assert lc.workload(BILLING) == 1
        stored = lc.store.load(waiter.id)
        assert stored is not None and stored.current_agent == BILLING  # saved at once
        assert "waiting" not in stored.router_state
        reply = await waiter.send("so, that refund?")
        assert reply.agent == BILLING and reply.handoffs == () and reply.text


async def test_waiters_are_served_oldest_first_one_per_freed_slot(
    open_lc: Any, clock: FakeClock
) -> None:
    async with open_lc(team()) as lc:
        holder = await on_billing(lc)
        first = await waiting(lc, priority="low")
        clock.advance(5)
        second = await waiting(lc, priority="urgent")  # younger: urgency does not jump the line
        await holder.end("resolved")
        assert (first.agent, second.agent) == (BILLING, GENERAL)
        assert second.row.router_state["waiting"]["target"] == "billing"
        clock.advance(5)
        await first.end("resolved")
        assert second.agent == BILLING
        assert "waiting" not in second.row.router_state


async def test_waiters_queued_at_the_same_time_are_served_by_priority(
    open_lc: Any,
) -> None:
    async with open_lc(team()) as lc:
        holder = await on_billing(lc)
        medium = await waiting(lc)  # no priority: medium
        low = await waiting(lc, priority="low")
        high = await waiting(lc, priority="high")
        seen: list[Event] = []
        lc.on("handoff:completed", seen.append)
        await holder.end("resolved")
        await high.end("resolved")
        await medium.end("resolved")
        assert [e.data["session_id"] for e in seen] == [high.id, medium.id, low.id]
        assert low.agent == BILLING


async def test_availability_back_to_available_serves_a_waiter(open_lc: Any) -> None:
    async with open_lc(team()) as lc:
        ops = lc.operators
        ops.set_member_availability("support", BILLING, "busy", auth=OPS)
        waiter = await waiting(lc)
        seen: list[Event] = []
        lc.on("*", seen.append)
        ops.set_member_availability("support", BILLING, "offline", auth=OPS)
        assert waiter.agent == GENERAL and of(seen, waiter) == []
        ops.set_member_availability("support", BILLING, "available", auth=OPS)
        assert waiter.agent == BILLING
        assert [e.type for e in seen] == [
            "team:availability-changed",
            "team:availability-changed",
            "handoff:initiated",
            "handoff:completed",
        ]
        assert (await waiter.send("hello")).agent == BILLING


async def test_ended_waiters_and_sessions_that_no_longer_wait_are_skipped(
    open_lc: Any, clock: FakeClock
) -> None:
    async with open_lc(team()) as lc:
        holder = await on_billing(lc)
        gone = await waiting(lc)
        clock.advance(1)
        moved = await waiting(lc)
        clock.advance(1)
        served = await waiting(lc)
        await gone.end("abandoned")
        moved_away = await lc.operators.handle_agent_handoff(
            moved.id, target_specialization="technical_support", reason="r", auth=OPS
        )
        assert moved_away.status == "completed" and "waiting" not in moved.row.router_state
        seen: list[Event] = []
        lc.on("handoff:*", seen.append)
        await holder.end("resolved")
        assert [(e.type, e.data["session_id"]) for e in seen] == [
            ("handoff:initiated", served.id),
            ("handoff:completed", served.id),
        ]
        assert (gone.state, moved.agent, served.agent) == ("ended", "tech-agent-1", BILLING)


async def test_a_reload_that_raises_max_workload_serves_one_waiter_per_new_slot(
    open_lc: Any, make_project: Any
) -> None:
    async with open_lc(team()) as lc:
        await on_billing(lc)
        waiters = [await waiting(lc) for _ in range(3)]
        lc.reload(make_project(team(max_workload=3)))
        assert [w.agent for w in waiters] == [BILLING, BILLING, GENERAL]
        assert lc.workload(BILLING) == 3


async def test_a_waiting_handoff_survives_a_restart_and_completes_when_a_member_frees_up(
    open_lc: Any, clock: FakeClock
) -> None:
    async with open_lc(team()) as lc:
        holder_id = (await on_billing(lc)).id
        waiter_id = (await waiting(lc)).id
    clock.advance(60)
    async with open_lc(team()) as again:  # nobody freed up meanwhile: it still waits
        row = again.session_row(waiter_id)
        assert row is not None and row.current_agent == GENERAL
        assert row.router_state["waiting"]["target"] == "billing"
        seen: list[Event] = []
        again.on("handoff:*", seen.append)
        await again.end_agent_session(holder_id, reason="resolved", auth=AUTH)
        assert [(e.type, e.data["session_id"]) for e in seen] == [
            ("handoff:initiated", waiter_id),
            ("handoff:completed", waiter_id),
        ]
        assert seen[-1].data["queued_for_s"] == 60.0
        reply = await again.send(waiter_id, "is billing there now?", auth=AUTH)
        assert reply.agent == BILLING


async def test_at_open_a_waiting_handoff_is_served_when_there_is_room(
    open_lc: Any, clock: FakeClock
) -> None:
    async with open_lc(team()) as lc:
        await on_billing(lc)
        waiter_id = (await waiting(lc)).id
    async with open_lc(team(max_workload=2)) as again:  # more room after the restart
        row = again.session_row(waiter_id)
        assert row is not None and row.current_agent == BILLING
        assert "waiting" not in row.router_state
        assert (await again.send(waiter_id, "hello", auth=AUTH)).agent == BILLING


async def test_a_waiter_a_person_has_keeps_waiting_and_is_served_when_handed_back(
    open_lc: Any,
) -> None:
    async with open_lc(team()) as lc:
        ops = lc.operators
        holder = await on_billing(lc)
        waiter = await waiting(lc)
        await ops.handle_agent_handoff(
            waiter.id, target_specialization="human", reason="wants a person", auth=OPS
        )
        await holder.end("resolved")  # a person has the waiter: the slot stays free
        assert waiter.state == "awaiting_human" and lc.workload(BILLING) == 0
        assert waiter.row.router_state["waiting"]["target"] == "billing"
        seen: list[Event] = []
        lc.on("handoff:completed", seen.append)
        await ops.claim(waiter.id, auth=operator("op-1"))
        assert await ops.hand_back(waiter.id, auth=operator("op-1")) == GENERAL
        assert [(e.data["from"], e.data["to"]) for e in seen] == [
            ("human", GENERAL),
            (GENERAL, BILLING),
        ]
        assert (waiter.state, waiter.agent) == ("active", BILLING)
