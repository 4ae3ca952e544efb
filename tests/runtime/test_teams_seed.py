"""Seed 000 parity (multi-agent coordinator) through the Lifecycle's own methods: create a team
from code, trigger and requested handoffs, human in the loop, load balancing, availability."""

from __future__ import annotations

from typing import Any

from runtime_support import ADMIN, AUTH, OPS, operator

from runner.runtime.events import Event
from runner.runtime.lifecycle import Lifecycle

SEED_TEAM: dict[str, Any] = {
    "name": "customer-support-team",
    "description": "Specialized customer support agents",
    "workspace": "workspace-123",
    "members": [
        {
            "agent": "general-agent-1",
            "role": "primary",
            "specialization": "customer_service",
            "priority": 1,
            "availability": "available",
            "max_workload": 10,
            "capabilities": ["billing", "account_management"],
            "handoff_triggers": [
                {
                    "name": "technical-handoff",
                    "when": {"keywords": ["error", "bug", "technical"]},
                    "target": "technical_support",
                    "priority": 1,
                    "active": True,
                }
            ],
        },
        {"agent": "tech-agent-1", "specialization": "technical_support", "max_workload": 2},
        {"agent": "tech-advisor", "specialization": "technical_support", "max_workload": 2},
    ],
    "workflow": {"escalation_path": "support-escalation"},
}


async def test_seed_coordinator_flow_on_the_lifecycle(lc: Lifecycle) -> None:
    team = await lc.create_team(SEED_TEAM, auth=ADMIN)
    assert team.name == "customer-support-team"
    seen: list[Event] = []
    lc.on("*", seen.append)

    # handoff on a trigger, load balanced across the two technical members
    first = await lc.create_agent_session(team=team.name, auth=AUTH)
    second = await lc.create_agent_session(team=team.name, auth=AUTH)
    assert (await first.send("I hit a technical problem")).agent == "tech-agent-1"
    assert (await second.send("another bug")).agent == "tech-advisor"

    # availability: tech-agent-1 goes offline, the next handoff avoids it
    lc.set_member_availability(team.name, "tech-agent-1", "offline", auth=OPS)
    third = await lc.create_agent_session(team=team.name, auth=AUTH)
    assert (await third.send("an error")).agent == "tech-advisor"

    # a handoff on request, back to customer service
    result = await lc.handle_agent_handoff(
        first.id,
        target_specialization="customer_service",
        reason="User asked about billing",
        urgency="medium",
        auth=OPS,
    )
    assert (result.status, result.to) == ("completed", "general-agent-1")

    # human in the loop: requested, queued, claimed, answered, handed back
    await lc.handle_agent_handoff(
        third.id, target_specialization="human", reason="angry customer", auth=OPS
    )
    assert [q.session_id for q in lc.human_queue("workspace-123", auth=OPS)] == [third.id]
    await lc.claim(third.id, auth=operator("dana"))
    await lc.answer(third.id, auth=operator("dana"), text="I am on it")
    assert await lc.hand_back(third.id, auth=operator("dana")) == "tech-advisor"
    assert lc.human_queue(auth=OPS) == []
    assert (await third.send("thanks")).agent == "tech-advisor"

    kinds = [e.type for e in seen]
    for expected in (
        "handoff:initiated",
        "handoff:completed",
        "handoff:requested",
        "team:availability-changed",
        "human:claimed",
        "human:answered",
        "human:handed-back",
    ):
        assert expected in kinds


async def test_escalation_decisions_on_the_lifecycle_survive_a_restart(open_lc: Any) -> None:
    quick = """
apiVersion: runner/v1
kind: EscalationPath
name: support-escalation
levels:
  - {level: 2, target: human, when: {turns_above: 1}, requires_approval: true}
"""
    async with open_lc(quick) as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await session.send("one")
        await session.send("two")
        sid = session.id
    async with open_lc(quick) as again:
        [pending] = again.pending_escalations(auth=OPS)
        assert pending.session_id == sid and pending.status == "pending_approval"
        esc = await again.approve_escalation(sid, auth=operator("supervisor-1"))
        assert esc.decided_by == "supervisor-1"
        assert [q.session_id for q in again.human_queue(auth=OPS)] == [sid]
