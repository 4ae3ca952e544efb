"""ADAPTER — DELETE AT MERGE WITH ISSUE 9: the operator calls in their issue-9 shape.

Role: issue 9 changes the facade's operator methods to take `auth=` instead of a free-text
name. The endpoints (`runner.serve.routes_operators`, `routes_admin`) are written for those
target signatures and call them through the one function per call below, which maps them onto
today's methods (`by=` / `operator=` strings, workspace filters). At merge, replace each
`operator_calls.NAME(lc, ...)` with `lc.NAME(...)` and delete this module.

`auth` is the runtime's auth value for the caller in the object's workspace, built by
`runner.serve.identity.runtime_auth` after the serve layer has checked the permission and the
workspace itself; `auth.workspace_id` None means "every workspace" for the two listings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from runner import Lifecycle
from runner.runtime.auth import AuthContext
from runner.runtime.escalation.record import Escalation
from runner.runtime.operators.api import HandoffResult
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry

__all__ = [
    "accept_escalation",
    "answer",
    "approve_escalation",
    "claim",
    "cleanup_agent",
    "create_team",
    "hand_back",
    "handle_agent_handoff",
    "human_queue",
    "pending_escalations",
    "reject_escalation",
    "set_member_availability",
]

Urgency = Literal["low", "medium", "high", "urgent"]


async def approve_escalation(lc: Lifecycle, session_id: str, *, auth: AuthContext) -> Escalation:
    return await lc.approve_escalation(session_id, by=auth.user_id)


async def reject_escalation(
    lc: Lifecycle, session_id: str, *, auth: AuthContext, reason: str | None = None
) -> Escalation:
    return await lc.reject_escalation(session_id, by=auth.user_id, reason=reason)


async def accept_escalation(lc: Lifecycle, session_id: str, *, auth: AuthContext) -> Escalation:
    return await lc.accept_escalation(session_id, by=auth.user_id)


def pending_escalations(lc: Lifecycle, *, auth: AuthContext) -> list[StoredEscalation]:
    return lc.pending_escalations(workspace=auth.workspace_id)


def human_queue(lc: Lifecycle, *, auth: AuthContext) -> list[QueueItem]:
    return lc.human_queue(auth.workspace_id)


async def claim(lc: Lifecycle, session_id: str, *, auth: AuthContext) -> QueueItem:
    return await lc.claim(session_id, operator=auth.user_id)


async def answer(
    lc: Lifecycle, session_id: str, *, auth: AuthContext, text: str
) -> TranscriptEntry:
    return await lc.answer(session_id, operator=auth.user_id, text=text)


async def hand_back(lc: Lifecycle, session_id: str, *, auth: AuthContext) -> str:
    return await lc.hand_back(session_id, operator=auth.user_id)


def set_member_availability(
    lc: Lifecycle, team: str, agent: str, status: str, *, auth: AuthContext
) -> None:
    lc.set_member_availability(team, agent, status)


async def handle_agent_handoff(
    lc: Lifecycle,
    session_id: str,
    *,
    target_specialization: str,
    reason: str,
    urgency: Urgency,
    auth: AuthContext,
) -> HandoffResult:
    return await lc.handle_agent_handoff(
        session_id,
        target_specialization=target_specialization,
        reason=reason,
        urgency=urgency,
        auth=auth,
    )


async def cleanup_agent(lc: Lifecycle, name: str, *, auth: AuthContext) -> Any:
    return await lc.cleanup_agent(name)


async def create_team(lc: Lifecycle, spec: Mapping[str, Any], *, auth: AuthContext) -> Any:
    return await lc.create_team(spec)
