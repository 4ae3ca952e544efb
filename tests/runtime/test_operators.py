"""Operators: every escalation path (auto, approval approved and rejected, suggested), the
durable human queue (claim, answer, hand back), restart with a pending escalation,
notifications to a real local HTTP receiver (a failing channel never breaks the session),
requested handoffs and teams created from code."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from runtime_support import ADMIN, AUTH, OPS, operator

from runner.runtime.errors import LifecycleError, SessionNotFoundError
from runner.runtime.events import Event
from runner.runtime.lifecycle import Lifecycle
from runner.runtime.operators import EscalationNotPendingError, HumanQueueError


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 recording JSON posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.posts.append({"path": self.path, "json": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# level 2 after 2 turns (not 20), level 3 suggests billing on "refund policy"
PATH = """
apiVersion: runner/v1
kind: EscalationPath
name: support-escalation
levels:
  - {level: 1, target: technical_support, when: {trigger: technical-issue-detected},
     auto_escalate: true, notify: [slack]}
  - {level: 2, target: human, when: {turns_above: 2}, requires_approval: true,
     notify: [slack, email]}
"""

SUGGEST = """
apiVersion: runner/v1
kind: EscalationPath
name: support-escalation
levels:
  - {level: 1, target: billing, when: {keywords: [overcharged]}}
  - {level: 2, target: human, when: {keywords: [lawyer]}}
"""


def esc_of(session: Any) -> tuple[Any, ...]:
    e = session.escalation
    return (e["level"], e["target"], e["status"]) if e else ()


async def test_auto_escalation_is_recorded_and_notifies_a_real_channel(
    open_lc: Any, receiver: Receiver
) -> None:
    environ = {"SLACK_WEBHOOK_URL": receiver.url + "/slack"}
    async with open_lc(environ=environ) as lc:
        ops = lc.operators
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await session.send("I see an error")
        assert esc_of(session) == (1, "technical_support", "in_effect")
        await lc.drain()
        assert len(receiver.posts) == 1
        post = receiver.posts[0]
        assert post["path"] == "/slack"
        assert post["json"]["runner"]["level"] == 1
        assert post["json"]["runner"]["session_id"] == session.id
        assert "level 1" in post["json"]["text"]
        history = ops.escalation_history(session.id, auth=OPS)
        assert [(h.escalation["level"], h.status) for h in history] == [(1, "in_effect")]
        assert ops.pending_escalations(auth=OPS) == []


async def test_approval_approved_hands_to_a_person_and_a_failing_channel_is_harmless(
    open_lc: Any, receiver: Receiver
) -> None:
    # slack works; email points at a closed port: a failed delivery, the session carries on
    environ = {"SLACK_WEBHOOK_URL": receiver.url + "/slack", "SMTP_URL": "smtp://127.0.0.1:9"}
    async with open_lc(PATH, environ=environ) as lc:
        ops = lc.operators
        failures: list[Event] = []
        lc.on("channel:delivery-failed", failures.append)
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        for _ in range(3):
            reply = await session.send("a question about my plan")
        assert reply.agent == "general-agent-1" and session.state == "active"
        assert esc_of(session) == (2, "human", "pending_approval")
        assert [p.session_id for p in ops.pending_escalations(auth=OPS)] == [session.id]
        assert (await session.send("still there?")).agent == "general-agent-1"
        await lc.drain()
        assert [e.data["channel"] for e in failures] == ["email"]
        assert [p["path"] for p in receiver.posts] == ["/slack"]
        seen: list[Event] = []
        lc.on("*", seen.append)
        approved = await ops.approve_escalation(session.id, auth=operator("supervisor-1"))
        assert (approved.status, approved.decided_by) == ("approved", "supervisor-1")
        assert esc_of(session) == (2, "human", "approved")
        assert session.state == "awaiting_human" and session.agent is None
        assert [e.type for e in seen if e.type.startswith(("handoff", "escalation"))] == [
            "handoff:initiated",
            "escalation:approved",
            "handoff:completed",
        ]
        queue = ops.human_queue(auth=OPS)
        assert [(q.session_id, q.level, q.previous_agent) for q in queue] == [
            (session.id, 2, "general-agent-1")
        ]
        assert ops.pending_escalations(auth=OPS) == []
        with pytest.raises(EscalationNotPendingError, match="it is approved"):
            await ops.approve_escalation(session.id, auth=operator("supervisor-2"))


async def test_approval_rejected_keeps_the_session_with_its_agent(open_lc: Any) -> None:
    async with open_lc(PATH) as lc:
        ops = lc.operators
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        for _ in range(3):
            await session.send("a question about my plan")
        rejected = await ops.reject_escalation(
            session.id, auth=operator("supervisor-1"), reason="handled"
        )
        assert (rejected.status, rejected.decided_by, rejected.reason) == (
            "rejected",
            "supervisor-1",
            "handled",
        )
        assert esc_of(session) == (2, "human", "rejected")
        assert session.state == "active" and session.agent == "general-agent-1"
        opened: list[Event] = []
        lc.on("escalation:opened", opened.append)
        assert (await session.send("one more")).agent == "general-agent-1"
        assert opened == []  # a rejected level is not re-opened
        assert ops.human_queue(auth=OPS) == []
        assert (
            ops.escalation_history(session.id, auth=OPS)[0].escalation["decided_by"]
            == "supervisor-1"
        )


async def test_a_suggestion_waits_for_an_operator_then_takes_effect(open_lc: Any) -> None:
    async with open_lc(SUGGEST) as lc:
        ops = lc.operators
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        reply = await session.send("I was overcharged last month")
        assert reply.agent == "general-agent-1"
        assert esc_of(session) == (1, "billing", "suggested")
        with pytest.raises(EscalationNotPendingError):
            await ops.approve_escalation(
                session.id, auth=operator("lead")
            )  # a suggestion is accepted
        accepted = await ops.accept_escalation(session.id, auth=operator("lead"))
        assert accepted.status == "approved"
        assert session.agent == "billing-agent-1"
        assert (await session.send("so?")).agent == "billing-agent-1"
        # a higher level supersedes the earlier one
        seen: list[Event] = []
        lc.on("escalation:*", seen.append)
        await session.send("I will call my lawyer")
        assert [e.type for e in seen] == [
            "escalation:resolved",
            "escalation:opened",
            "escalation:suggested",
        ]
        assert esc_of(session) == (2, "human", "suggested")


async def test_human_queue_claim_answer_and_hand_back(lc: Lifecycle) -> None:
    ops = lc.operators
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    await session.send("there is a bug in the export")
    await session.send("I want to talk to a human")
    assert session.state == "awaiting_human"
    [item] = ops.human_queue(auth=OPS)
    assert (item.session_id, item.trigger, item.previous_agent, item.claimed) == (
        session.id,
        "wants-a-person",
        "tech-agent-1",
        False,
    )
    assert ops.human_queue(workspace="other", auth=OPS) == []
    assert len(ops.human_queue(workspace="workspace-123", auth=OPS)) == 1
    await session.send("is anyone there?")
    with pytest.raises(HumanQueueError, match="claimed by nobody"):
        await ops.answer(session.id, auth=operator("op-1"), text="hi")
    claimed = await ops.claim(session.id, auth=operator("op-1"))
    assert claimed.claimed_by == "op-1"
    with pytest.raises(HumanQueueError, match="already claimed by 'op-1'"):
        await ops.claim(session.id, auth=operator("op-2"))
    with pytest.raises(HumanQueueError, match="not 'op-2'"):
        await ops.hand_back(session.id, auth=operator("op-2"))
    await ops.answer(session.id, auth=operator("op-1"), text="Hello, I am Dana from support")
    assert [(t.role, t.author, t.text) for t in ops.transcript(session.id, auth=OPS)] == [
        ("user", None, "is anyone there?"),
        ("operator", "op-1", "Hello, I am Dana from support"),
    ]
    store: Any = lc.provider.store  # type: ignore[attr-defined]
    texts = [i.content for i in store.list_items(session.conversation_id).items]
    assert texts[-2:] == ["is anyone there?", "Hello, I am Dana from support"]
    back = await ops.hand_back(session.id, auth=operator("op-1"))
    assert back == "tech-agent-1"
    assert session.state == "active" and session.agent == "tech-agent-1"
    assert ops.human_queue(auth=OPS) == []
    assert (await session.send("thanks")).agent == "tech-agent-1"
    with pytest.raises(HumanQueueError, match="not waiting for a person"):
        await ops.claim(session.id, auth=operator("op-1"))


async def test_an_escalated_person_claims_and_hands_back_the_escalation(open_lc: Any) -> None:
    async with open_lc(PATH) as lc:
        ops = lc.operators
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        for _ in range(3):
            await session.send("a question")
        await ops.approve_escalation(session.id, auth=operator("lead"))
        await ops.claim(session.id, auth=operator("op-1"))
        assert esc_of(session) == (2, "human", "claimed")
        assert session.escalation is not None and session.escalation["operator"] == "op-1"
        assert await ops.hand_back(session.id, auth=operator("op-1")) == "general-agent-1"
        assert esc_of(session) == (2, "human", "handed_back")
        assert session.state == "active"


async def test_restart_finds_the_pending_escalation_and_the_queue(open_lc: Any) -> None:
    async with open_lc(PATH) as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        for _ in range(3):
            await session.send("a question")
        other = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await other.send("an error")
        await other.send("let me talk to a human")
        pending_id, queued_id = session.id, other.id
    async with open_lc(PATH) as again:
        ops = again.operators
        assert [p.session_id for p in ops.pending_escalations(auth=OPS)] == [pending_id]
        assert [q.session_id for q in ops.human_queue(auth=OPS)] == [queued_id]
        await ops.approve_escalation(pending_id, auth=operator("night-shift"))
        restored = again.get_session(pending_id, auth=AUTH)
        assert restored.state == "awaiting_human"
        assert {q.session_id for q in ops.human_queue(auth=OPS)} == {
            pending_id,
            queued_id,
        }
        await ops.claim(queued_id, auth=operator("op-9"))
    async with open_lc(PATH) as third:
        [claimed] = [q for q in third.operators.human_queue(auth=OPS) if q.session_id == queued_id]
        assert claimed.claimed_by == "op-9"
        assert await third.operators.hand_back(queued_id, auth=operator("op-9")) == "tech-agent-1"


async def test_handle_agent_handoff_on_request(open_lc: Any) -> None:
    nfm = """
apiVersion: runner/v1
kind: Team
name: customer-support
workspace: workspace-123
members:
  - {agent: general-agent-1, role: primary, specialization: customer_service}
  - {agent: tech-agent-1, specialization: technical_support, max_workload: 1}
  - {agent: billing-agent-1, specialization: billing}
workflow: {on_no_free_member: wait}
"""
    async with open_lc(nfm) as lc:
        ops = lc.operators
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        result = await ops.handle_agent_handoff(
            session.id,
            target_specialization="billing",
            reason="User asked about a refund",
            urgency="high",
            auth=OPS,
        )
        assert (result.status, result.from_agent, result.to) == (
            "completed",
            "general-agent-1",
            "billing-agent-1",
        )
        assert (await session.send("so about that refund")).agent == "billing-agent-1"
        again = await ops.handle_agent_handoff(
            session.id, target_specialization="billing", reason="again", auth=OPS
        )
        assert again.status == "unchanged"
        with pytest.raises(LifecycleError, match="no member with specialization 'legal'"):
            await ops.handle_agent_handoff(
                session.id, target_specialization="legal", reason="x", auth=OPS
            )
        with pytest.raises(SessionNotFoundError):
            await ops.handle_agent_handoff(
                session.id,
                target_specialization="billing",
                reason="x",
                auth=operator("ops", "elsewhere"),
            )
        busy = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await ops.handle_agent_handoff(
            busy.id, target_specialization="technical_support", reason="r", auth=OPS
        )
        queued = await ops.handle_agent_handoff(
            session.id, target_specialization="technical_support", reason="r", auth=OPS
        )
        assert queued.status == "queued" and session.agent == "billing-agent-1"
        await busy.end("resolved")
        assert (await session.send("any news?")).agent == "tech-agent-1"
        human = await ops.handle_agent_handoff(
            session.id, target_specialization="human", reason="needs a person", auth=OPS
        )
        assert (human.status, human.to) == ("human", "human")
        assert session.state == "awaiting_human"
        assert ops.human_queue(auth=OPS)[0].reason == "needs a person"


async def test_create_team_from_code_is_validated_and_routes(lc: Lifecycle) -> None:
    ops = lc.operators
    with pytest.raises(LifecycleError) as bad:
        await ops.create_team(
            auth=ADMIN,
            spec={
                "name": "adhoc",
                "members": [
                    {
                        "agent": "nobody",
                        "specialization": "x",
                        "handoff_triggers": [
                            {"name": "t", "when": {"keywords": ["k"]}, "target": "y"}
                        ],
                    }
                ],
            },
        )
    assert "unknown agent 'nobody'" in str(bad.value)
    assert "target 'y' is not a specialization" in str(bad.value)
    with pytest.raises(LifecycleError, match="invalid definition"):
        await ops.create_team(auth=ADMIN, spec={"name": "adhoc", "members": []})
    team = await ops.create_team(
        auth=ADMIN,
        spec={
            "name": "adhoc",
            "members": [
                {
                    "agent": "tech-advisor",
                    "role": "primary",
                    "specialization": "architecture",
                    "handoff_triggers": [
                        {"name": "market", "when": {"keywords": ["market"]}, "target": "research"}
                    ],
                },
                {"agent": "market-analyst", "specialization": "research"},
            ],
        },
    )
    assert team.name == "adhoc"
    session = await lc.create_agent_session(team="adhoc", auth=AUTH)
    assert (await session.send("which database?")).agent == "tech-advisor"
    assert (await session.send("and the market for it?")).agent == "market-analyst"
    ops.set_member_availability("adhoc", "market-analyst", "busy", auth=OPS)
    assert ops.member_availability("adhoc", auth=OPS) == {
        "tech-advisor": "available",
        "market-analyst": "busy",
    }
    with pytest.raises(LifecycleError, match="not a member"):
        ops.set_member_availability("adhoc", "general-agent-1", "busy", auth=OPS)
    with pytest.raises(LifecycleError, match="not one of"):
        ops.set_member_availability("adhoc", "tech-advisor", "asleep", auth=OPS)


async def test_operator_writes_never_make_the_runtime_reread_the_registry(
    open_lc: Any,
) -> None:
    async with open_lc(PATH) as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await session.send("warm up")
        version = lc.store.data_version()
        for text in ("an error", "a question", "let me talk to a human"):
            await session.send(text)
        await lc.claim(session.id, auth=operator("op-1"))
        lc.operators.store.flush()
        assert lc.store.data_version() == version  # same connection: no re-read of applied
        sid = session.id
    async with open_lc(PATH) as again:  # history was written behind, and on close
        history = again.operators.escalation_history(sid, auth=OPS)
        assert [(h.escalation["level"], h.status) for h in history] == [
            (1, "resolved"),
            (2, "pending_approval"),
        ]
