"""REST: the operator side — the human queue, pending escalations and their decisions, claim,
answer, hand back, and member availability.

Role: thin handlers over the operator adapter (`runner.serve.operator_calls`, written for the
issue-9 signatures). Every call needs `operator`; a session's workspace is checked before the
runtime is called (another workspace's session is a 404). Listings cover every workspace the
caller holds (`*`: all), one runtime call per workspace.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runner.runtime.auth import AuthContext
from runner.serve import operator_calls, runtime_lookups
from runner.serve.deps import Caller, Context, session_auth
from runner.serve.identity import OPERATOR, Identity, NotVisible, runtime_auth
from runner.serve.routes_sessions import ERRORS
from runner.serve.schemas import (
    AnswerIn,
    AvailabilityIn,
    EscalationOut,
    QueueItemOut,
    RejectIn,
    TranscriptEntryOut,
    escalation_out,
    queue_item_out,
    transcript_out,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/agent-lifecycle", tags=["operators"], responses=ERRORS)


def _per_workspace(identity: Identity) -> list[AuthContext]:
    """One runtime auth per workspace to list (workspace None: every workspace)."""
    listed = identity.listed_workspaces()
    if listed is None:
        return [runtime_auth(identity, None)]
    return [runtime_auth(identity, w) for w in listed]


@router.get("/human-queue")
async def human_queue(context: Context, identity: Caller) -> dict[str, list[QueueItemOut]]:
    """Sessions waiting for (or held by) a person in your workspaces: most urgent first."""
    identity.require(OPERATOR)
    items = []
    for auth in _per_workspace(identity):
        items.extend(operator_calls.human_queue(context.lc, auth=auth))
    order = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
    items.sort(key=lambda i: (order.get(i.priority or "medium", 2), i.enqueued_at))
    return {"items": [queue_item_out(i) for i in items]}


@router.get("/escalations")
async def escalations(context: Context, identity: Caller) -> dict[str, list[EscalationOut]]:
    """Escalations waiting for an operator (pending approval or suggested)."""
    identity.require(OPERATOR)
    found = []
    for auth in _per_workspace(identity):
        found.extend(operator_calls.pending_escalations(context.lc, auth=auth))
    return {"escalations": [escalation_out(e) for e in found]}


def _decided(session_id: str, escalation: Any) -> dict[str, Any]:
    return {"session_id": session_id, "escalation": escalation.as_dict()}


@router.post("/sessions/{session_id}/escalation/approve")
async def approve(session_id: str, context: Context, identity: Caller) -> dict[str, Any]:
    auth = session_auth(context, identity, session_id, OPERATOR)
    return _decided(
        session_id, await operator_calls.approve_escalation(context.lc, session_id, auth=auth)
    )


@router.post("/sessions/{session_id}/escalation/reject")
async def reject(
    session_id: str, context: Context, identity: Caller, body: RejectIn | None = None
) -> dict[str, Any]:
    auth = session_auth(context, identity, session_id, OPERATOR)
    reason = None if body is None else body.reason
    done = await operator_calls.reject_escalation(context.lc, session_id, auth=auth, reason=reason)
    return _decided(session_id, done)


@router.post("/sessions/{session_id}/escalation/accept")
async def accept(session_id: str, context: Context, identity: Caller) -> dict[str, Any]:
    auth = session_auth(context, identity, session_id, OPERATOR)
    return _decided(
        session_id, await operator_calls.accept_escalation(context.lc, session_id, auth=auth)
    )


@router.post("/sessions/{session_id}/claim", response_model=QueueItemOut)
async def claim(session_id: str, context: Context, identity: Caller) -> QueueItemOut:
    auth = session_auth(context, identity, session_id, OPERATOR)
    return queue_item_out(await operator_calls.claim(context.lc, session_id, auth=auth))


@router.post("/sessions/{session_id}/answer", response_model=TranscriptEntryOut)
async def answer(
    session_id: str, body: AnswerIn, context: Context, identity: Caller
) -> TranscriptEntryOut:
    auth = session_auth(context, identity, session_id, OPERATOR)
    entry = await operator_calls.answer(context.lc, session_id, auth=auth, text=body.text)
    return transcript_out(entry)


@router.post("/sessions/{session_id}/hand-back")
async def hand_back(session_id: str, context: Context, identity: Caller) -> dict[str, str]:
    auth = session_auth(context, identity, session_id, OPERATOR)
    back = await operator_calls.hand_back(context.lc, session_id, auth=auth)
    return {"session_id": session_id, "agent": back}


@router.put("/teams/{team}/members/{agent}/availability")
async def set_availability(
    team: str, agent: str, body: AvailabilityIn, context: Context, identity: Caller
) -> dict[str, str]:
    """A member's live availability (`available`, `busy`, `offline`); durable."""
    identity.require(OPERATOR)
    known, workspace = runtime_lookups.team_workspace(context.lc, team)
    if not known or (workspace is not None and not identity.covers(workspace)):
        raise NotVisible(f"team {team!r}")
    auth = runtime_auth(identity, workspace)
    operator_calls.set_member_availability(context.lc, team, agent, body.status, auth=auth)
    return {"team": team, "agent": agent, "status": body.status}
