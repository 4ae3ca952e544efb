"""REST: the operator side — the human queue, pending escalations and their decisions, claim,
answer, hand back, and member availability.

Role: thin handlers over the facade's operator methods, each given the caller as `auth=`: the
runtime checks `operator` and the workspace (another workspace's session is a 404). Listings
cover every workspace the caller holds (`*`: all), or the one named by `workspace_id`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runner.serve.deps import Caller, Context, in_workspace
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


@router.get("/human-queue")
async def human_queue(
    context: Context, caller: Caller, workspace_id: str | None = None
) -> dict[str, list[QueueItemOut]]:
    """Sessions waiting for (or held by) a person in your workspaces: most urgent first."""
    items = context.lc.human_queue(workspace_id, auth=in_workspace(caller, workspace_id))
    return {"items": [queue_item_out(i) for i in items]}


@router.get("/escalations")
async def escalations(
    context: Context, caller: Caller, workspace_id: str | None = None
) -> dict[str, list[EscalationOut]]:
    """Escalations waiting for an operator (pending approval or suggested)."""
    found = context.lc.pending_escalations(
        auth=in_workspace(caller, workspace_id), workspace=workspace_id
    )
    return {"escalations": [escalation_out(e) for e in found]}


def _decided(session_id: str, escalation: Any) -> dict[str, Any]:
    return {"session_id": session_id, "escalation": escalation.as_dict()}


@router.post("/sessions/{session_id}/escalation/approve")
async def approve(session_id: str, context: Context, caller: Caller) -> dict[str, Any]:
    return _decided(session_id, await context.lc.approve_escalation(session_id, auth=caller))


@router.post("/sessions/{session_id}/escalation/reject")
async def reject(
    session_id: str, context: Context, caller: Caller, body: RejectIn | None = None
) -> dict[str, Any]:
    reason = None if body is None else body.reason
    done = await context.lc.reject_escalation(session_id, auth=caller, reason=reason)
    return _decided(session_id, done)


@router.post("/sessions/{session_id}/escalation/accept")
async def accept(session_id: str, context: Context, caller: Caller) -> dict[str, Any]:
    return _decided(session_id, await context.lc.accept_escalation(session_id, auth=caller))


@router.post("/sessions/{session_id}/claim", response_model=QueueItemOut)
async def claim(session_id: str, context: Context, caller: Caller) -> QueueItemOut:
    return queue_item_out(await context.lc.claim(session_id, auth=caller))


@router.post("/sessions/{session_id}/answer", response_model=TranscriptEntryOut)
async def answer(
    session_id: str, body: AnswerIn, context: Context, caller: Caller
) -> TranscriptEntryOut:
    entry = await context.lc.answer(session_id, auth=caller, text=body.text)
    return transcript_out(entry)


@router.post("/sessions/{session_id}/hand-back")
async def hand_back(session_id: str, context: Context, caller: Caller) -> dict[str, str]:
    back = await context.lc.hand_back(session_id, auth=caller)
    return {"session_id": session_id, "agent": back}


@router.put("/teams/{team}/members/{agent}/availability")
async def set_availability(
    team: str, agent: str, body: AvailabilityIn, context: Context, caller: Caller
) -> dict[str, str]:
    """A member's live availability (`available`, `busy`, `offline`); durable."""
    context.lc.set_member_availability(team, agent, body.status, auth=caller)
    return {"team": team, "agent": agent, "status": body.status}
