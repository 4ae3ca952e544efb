"""Teams at run time through real sessions: trigger handoffs (the new member answers the same
message, the conversation goes along), load balancing by room then priority, availability,
handoffs to a person, no-free-member escalate and wait, levels never re-opened, restart."""

from __future__ import annotations

from typing import Any

from runtime_support import AUTH, OPS

from runner.runtime.clock import FakeClock
from runner.runtime.events import Event
from runner.runtime.lifecycle import Lifecycle
from runner.runtime.teams import (
    RouteDecision,
    TeamRouter,
    TurnContext,
    build_team_router,
    check_team,
    team_revision,
)
from runner.spec.models import EscalationPath, Team

LB_TEAM = """
apiVersion: runner/v1
kind: Team
name: lb
members:
  - agent: general-agent-1
    role: primary
    specialization: customer_service
    handoff_triggers:
      - {name: tech, when: {keywords: [error]}, target: technical_support, priority: 2}
      - {name: urgent-tech, when: {keywords: [outage]}, target: technical_support, priority: 1}
      - {name: bill, when: {keywords: [invoice, outage]}, target: billing, priority: 3}
  - {agent: tech-agent-1, specialization: technical_support, priority: 2, max_workload: 5}
  - {agent: tech-advisor, specialization: technical_support, priority: 1, max_workload: 3}
  - {agent: billing-agent-1, specialization: billing, max_workload: 1}
workflow: {on_no_free_member: wait}
"""

NFM_TEAM = """
apiVersion: runner/v1
kind: Team
name: small
members:
  - agent: general-agent-1
    role: primary
    specialization: customer_service
    handoff_triggers:
      - {name: tech, when: {keywords: [error]}, target: technical_support}
  - {agent: tech-agent-1, specialization: technical_support, max_workload: 1}
workflow: {on_no_free_member: %s, escalation_path: %s}
---
apiVersion: runner/v1
kind: EscalationPath
name: nobody-free
levels:
  - {level: 3, target: human, when: {no_free_member: true}, auto_escalate: true}
---
apiVersion: runner/v1
kind: EscalationPath
name: unrelated
levels:
  - {level: 1, target: human, when: {keywords: [lawyer]}, requires_approval: true}
"""


def types(events: list[Event], *prefixes: str) -> list[str]:
    return [e.type for e in events if e.type.startswith(prefixes)]


async def test_a_trigger_hands_off_and_the_new_member_answers_the_same_message(
    lc: Lifecycle,
) -> None:
    seen: list[Event] = []
    conversation_at_completion: list[int] = []
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    store: Any = lc.provider.store  # type: ignore[attr-defined]

    def on_completed(event: Event) -> None:
        conversation_at_completion.append(len(store.list_items(session.conversation_id).items))

    lc.on("*", seen.append)
    lc.on("handoff:completed", on_completed)
    first = await session.send("Hi, I have a question about my account settings")
    assert first.agent == "general-agent-1" and not first.handoffs
    second = await session.send("The dashboard shows an Error every time I log in")
    assert second.agent == "tech-agent-1" and second.turn == 2
    assert [(h.from_agent, h.to, h.trigger) for h in second.handoffs] == [
        ("general-agent-1", "tech-agent-1", "technical-issue-detected")
    ]
    # initiated before the reply, completed after it (4 items: both turns are in the one
    # conversation the session kept), the coinciding level-1 escalation in between
    assert types(seen, "handoff:", "escalation:") == [
        "handoff:initiated",
        "escalation:opened",
        "handoff:completed",
    ]
    assert conversation_at_completion == [4]
    assert session.escalation is not None
    assert (session.escalation["level"], session.escalation["status"]) == (1, "in_effect")
    third = await session.send("Thanks, clearing the cache fixed it")
    assert third.agent == "tech-agent-1" and not third.handoffs
    assert store.list_items(session.conversation_id).items[-1].role == "assistant"
    assert len(store.list_items(session.conversation_id).items) == 6


async def test_load_balancing_takes_the_most_room_then_the_lowest_priority(open_lc: Any) -> None:
    async with open_lc(LB_TEAM) as lc:
        answered: list[str | None] = []
        sessions = []
        for _ in range(4):
            session = await lc.create_agent_session(team="lb", auth=AUTH)
            answered.append((await session.send("I get an error")).agent)
            sessions.append(session)
        # rooms (5,3) -> t1; (4,3) -> t1; (3,3) tie -> priority 1 wins; (3,2) -> t1
        assert answered == ["tech-agent-1", "tech-agent-1", "tech-advisor", "tech-agent-1"]
        for session in sessions[:3]:
            await session.end("resolved")
        # tech-agent-1 has 1 left (room 4), tech-advisor 0 (room 3)
        fresh = await lc.create_agent_session(team="lb", auth=AUTH)
        assert (await fresh.send("error again")).agent == "tech-agent-1"


async def test_the_lowest_priority_number_wins_among_fired_triggers(open_lc: Any) -> None:
    async with open_lc(LB_TEAM) as lc:
        session = await lc.create_agent_session(team="lb", auth=AUTH)
        reply = await session.send("there is an outage on my invoice page")
        assert reply.handoffs[0].trigger == "urgent-tech"
        assert reply.agent in ("tech-agent-1", "tech-advisor")


async def test_availability_overrides_the_spec_and_is_durable(
    open_lc: Any, registry_file: Any
) -> None:
    async with open_lc(LB_TEAM) as lc:
        ops = lc.operators
        ops.set_member_availability("lb", "tech-agent-1", "offline", auth=OPS)
        assert ops.member_availability("lb", auth=OPS)["tech-agent-1"] == "offline"
        session = await lc.create_agent_session(team="lb", auth=AUTH)
        assert (await session.send("an error")).agent == "tech-advisor"
    async with open_lc(LB_TEAM) as again:
        assert again.operators.member_availability("lb", auth=OPS)["tech-agent-1"] == "offline"
        session = await again.create_agent_session(team="lb", auth=AUTH)
        assert (await session.send("an error")).agent == "tech-advisor"
        again.operators.set_member_availability("lb", "tech-agent-1", "available", auth=OPS)
        other = await again.create_agent_session(team="lb", auth=AUTH)
        assert (await other.send("an error")).agent == "tech-agent-1"


async def test_a_human_trigger_waits_for_a_person_and_no_agent_answers(lc: Lifecycle) -> None:
    seen: list[Event] = []
    lc.on("*", seen.append)
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    await session.send("I found a bug")
    reply = await session.send("This is not helping, I want to talk to a human")
    assert reply.agent is None and reply.state == "awaiting_human"
    assert [(h.from_agent, h.to, h.trigger) for h in reply.handoffs] == [
        ("tech-agent-1", "human", "wants-a-person")
    ]
    later = await session.send("hello? anyone?")
    assert later.agent is None and later.text == ""
    received = [e.data["text"] for e in seen if e.type == "human:message-received"]
    assert received == ["hello? anyone?"]


async def test_no_free_member_escalates_through_the_path(open_lc: Any) -> None:
    async with open_lc(NFM_TEAM % ("escalate", "nobody-free")) as lc:
        ops = lc.operators
        busy = await lc.create_agent_session(team="small", auth=AUTH)
        assert (await busy.send("error")).agent == "tech-agent-1"
        session = await lc.create_agent_session(team="small", auth=AUTH)
        seen: list[Event] = []
        lc.on("*", seen.append)
        reply = await session.send("I also have an error")
        assert reply.state == "awaiting_human" and reply.agent is None
        assert session.escalation is not None
        assert (session.escalation["level"], session.escalation["status"]) == (3, "in_effect")
        assert "handoff:queued" not in types(seen, "handoff:")
        assert [i.session_id for i in ops.human_queue(auth=OPS)] == [session.id]
        assert ops.human_queue(auth=OPS)[0].level == 3


async def test_escalate_without_a_matching_level_queues_instead_of_dropping(
    open_lc: Any,
) -> None:
    async with open_lc(NFM_TEAM % ("escalate", "unrelated")) as lc:
        busy = await lc.create_agent_session(team="small", auth=AUTH)
        await busy.send("error")
        session = await lc.create_agent_session(team="small", auth=AUTH)
        seen: list[Event] = []
        lc.on("*", seen.append)
        reply = await session.send("error here too")
        assert reply.agent == "general-agent-1" and session.state == "active"
        queued = [e.data for e in seen if e.type == "handoff:queued"]
        assert queued and queued[0]["target"] == "technical_support"
        await busy.end("resolved")  # the member is free: the queued handoff completes at once
        assert session.agent == "tech-agent-1"
        [completed] = [e.data for e in seen if e.type == "handoff:completed"]
        assert completed["reason"] == "queued handoff: free now"
        retried = await session.send("still waiting")
        assert retried.agent == "tech-agent-1" and not retried.handoffs


async def test_wait_keeps_the_current_member_until_one_frees_up(open_lc: Any) -> None:
    async with open_lc(NFM_TEAM % ("wait", "nobody-free")) as lc:
        busy = await lc.create_agent_session(team="small", auth=AUTH)
        await busy.send("error")
        session = await lc.create_agent_session(team="small", auth=AUTH)
        seen: list[Event] = []
        lc.on("*", seen.append)
        reply = await session.send("an error for me as well")
        assert reply.agent == "general-agent-1" and not reply.handoffs
        assert session.escalation is None  # wait never consults no_free_member levels
        assert types(seen, "handoff:") == ["handoff:queued"]
        assert session.row.router_state["waiting"]["target"] == "technical_support"
        assert (await session.send("anything yet?")).agent == "general-agent-1"
        await busy.end("resolved")  # served as soon as the member frees up, not on a message
        completed = [e.data for e in seen if e.type == "handoff:completed"]
        assert [(h["from"], h["to"], h["trigger"]) for h in completed] == [
            ("general-agent-1", "tech-agent-1", "tech")
        ]
        assert "waiting" not in session.row.router_state
        done = await session.send("and now?")
        assert done.agent == "tech-agent-1" and not done.handoffs


async def test_levels_open_once_and_survive_a_restart(open_lc: Any) -> None:
    quick = """
apiVersion: runner/v1
kind: EscalationPath
name: support-escalation
levels:
  - {level: 1, target: technical_support, when: {trigger: technical-issue-detected},
     auto_escalate: true}
  - {level: 2, target: human, when: {turns_above: 2}, requires_approval: true}
"""
    async with open_lc(quick) as lc:
        seen: list[Event] = []
        lc.on("escalation:opened", seen.append)
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        for text in ("hello", "hello", "hello", "hello"):
            await session.send(text)
        assert [e.data["level"] for e in seen] == [2]
        assert session.row.router_state["opened"] == [2]
        sid = session.id
    async with open_lc(quick) as again:
        seen2: list[Event] = []
        again.on("escalation:opened", seen2.append)
        restored = again.get_session(sid, auth=AUTH)
        assert restored.escalation is not None
        assert restored.escalation["status"] == "pending_approval"
        # level 1 is below the opened level 2: escalation never goes down
        await restored.send("now an error")
        assert seen2 == []
        assert restored.agent == "tech-agent-1"


def test_router_is_pure_and_matchers_are_cached_per_revision() -> None:
    from runtime_support import contract_project

    project = contract_project()
    team = project.teams["customer-support"]
    path = project.escalation_paths["support-escalation"]
    clock = FakeClock()
    a = build_team_router(team, escalation_path=path, clock=clock, availability={})
    b = build_team_router(team, escalation_path=path, clock=clock, availability={})
    assert isinstance(a, TeamRouter) and a.matchers is b.matchers
    changed = team.model_copy(update={"description": "other"})
    assert team_revision(changed) != team_revision(team)
    changed_router = build_team_router(changed, escalation_path=path, clock=clock, availability={})
    assert changed_router.matchers is not a.matchers

    def ctx(text: str, turn: int, state: Any = "active", rs: Any = None) -> TurnContext:
        return TurnContext(
            session_id="sess_x",
            team=team,
            escalation_path=path,
            text=text,
            turn=turn,
            current_agent="general-agent-1",
            state=state,
            escalation=None,
            router_state=rs or {},
            preferences={},
            priority=None,
            workload=lambda agent: 0,
        )

    assert a.route(ctx("hello", 1)) == RouteDecision(agent="general-agent-1")
    decision = a.route(ctx("an error", 2))
    assert decision.agent == "tech-agent-1" and decision.router_state == {"opened": [1]}
    assert a.route(ctx("hi", 3, state="awaiting_human")).agent is None


def test_check_team_names_every_reference_problem() -> None:
    team = Team.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Team",
            "name": "t",
            "members": [
                {
                    "agent": "ghost",
                    "specialization": "a",
                    "handoff_triggers": [
                        {"name": "x", "when": {"keywords": ["k"]}, "target": "nowhere"}
                    ],
                }
            ],
            "workflow": {"escalation_path": "missing"},
        }
    )
    problems = check_team(team, agents={"general-agent-1"}, escalation_paths={})
    assert problems == [
        "members[0].agent: agent 'ghost' is not declared",
        "members[0].handoff_triggers[0].target: 'nowhere' is neither a specialization of the "
        "team (a) nor 'human'",
        "workflow.escalation_path: escalation path 'missing' not found",
    ]
    path = EscalationPath.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "EscalationPath",
            "name": "missing",
            "levels": [{"level": 1, "target": "b", "when": {"turns_above": 1}}],
        }
    )
    assert check_team(team, agents={"ghost"}, escalation_paths={"missing": path})[-1] == (
        "escalation_path.missing.levels[0].target: 'b' is neither a specialization of the "
        "team nor 'human'"
    )


async def test_an_automatic_level_hands_off_to_its_specialization(open_lc: Any) -> None:
    path = """
apiVersion: runner/v1
kind: EscalationPath
name: support-escalation
levels:
  - {level: 1, target: billing, when: {keywords: [chargeback]}, auto_escalate: true}
"""
    async with open_lc(path) as lc:
        seen: list[Event] = []
        lc.on("*", seen.append)
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        reply = await session.send("my bank filed a chargeback")
        assert reply.agent == "billing-agent-1"
        assert [(h.from_agent, h.to, h.reason) for h in reply.handoffs] == [
            ("general-agent-1", "billing-agent-1", "escalation level 1")
        ]
        assert types(seen, "handoff:", "escalation:") == [
            "handoff:initiated",
            "escalation:opened",
            "handoff:completed",
        ]
        assert session.escalation is not None and session.escalation["status"] == "in_effect"
