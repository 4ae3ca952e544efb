"""REST: sessions — create, list, read, transcript, send a message (JSON or SSE), pause,
resume, end, and requested handoffs.

Role: thin handlers over the facade (`create_agent_session`, `get_session`, `list_sessions`,
`send`, `pause_session`, `resume_session`, `end_agent_session`, `transcript`,
`handle_agent_handoff`), each given the caller as `auth=`: the runtime checks the permission
and the workspace (another workspace's session is a 404, like a missing one).

Server-sent events: `POST .../messages` with `Accept: text/event-stream` answers
`event: reply` (the whole reply, as the JSON body would be) then `event: done`. When providers
stream, `event: delta` events (`{"text": "..."}`, partial text in order) will come before
`reply`; a client that ignores unknown events keeps working. An error after the stream began is
`event: error` with the usual `{"error": {...}}` body.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from runner.runtime.auth import CHAT_ACCESS, require
from runner.runtime.errors import PermissionDeniedError
from runner.runtime.sessions.handles import TurnReply
from runner.serve.deps import Caller, Context, in_workspace
from runner.serve.identity import NotVisible
from runner.serve.schemas import (
    CreateSessionIn,
    EndIn,
    ErrorOut,
    HandoffIn,
    HandoffOut,
    ReplyOut,
    SendIn,
    SessionOut,
    TranscriptEntryOut,
    session_out,
    transcript_out,
)

__all__ = ["router"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 422, 429, 503)
}
router = APIRouter(prefix="/api/agent-lifecycle", tags=["sessions"], responses=ERRORS)


@router.post("/sessions", status_code=201, response_model=SessionOut)
async def create_session(
    body: CreateSessionIn, context: Context, caller: Caller, response: Response
) -> SessionOut:
    require(caller, CHAT_ACCESS)
    context.refuse_if_draining()
    auth = in_workspace(caller, body.workspace_id)
    try:
        session = await context.lc.create_agent_session(
            agent=body.agent,
            team=body.team,
            auth=auth,
            max_turns=body.max_turns,
            idle_timeout=body.idle_timeout,
            preferences=body.preferences,
            priority=body.priority,
            features=body.features,
        )
    except PermissionDeniedError:  # chat:access was checked: the team is another workspace's
        raise NotVisible(f"team {body.team!r}") from None
    response.headers["Location"] = f"{router.prefix}/sessions/{session.id}"
    return session_out(session)


@router.get("/sessions", response_model=dict[str, list[SessionOut]])
async def list_sessions(
    context: Context, caller: Caller, workspace_id: str | None = None
) -> dict[str, list[SessionOut]]:
    """The live sessions of your workspaces (or of `workspace_id`, one of them)."""
    auth = in_workspace(caller, workspace_id)
    return {"sessions": [session_out(s) for s in context.lc.list_sessions(auth=auth)]}


@router.get("/sessions/{session_id}", response_model=SessionOut)
async def get_session(session_id: str, context: Context, caller: Caller) -> SessionOut:
    return session_out(context.lc.get_session(session_id, auth=caller))


@router.get("/sessions/{session_id}/transcript")
async def get_transcript(
    session_id: str, context: Context, caller: Caller
) -> dict[str, str | list[TranscriptEntryOut]]:
    """What the user and operators wrote while a person had the session."""
    entries = context.lc.transcript(session_id, auth=caller)
    return {"session_id": session_id, "entries": [transcript_out(e) for e in entries]}


@router.post(
    "/sessions/{session_id}/messages",
    response_model=ReplyOut,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "The reply; `event: reply` then `event: done` with "
            "Accept: text/event-stream.",
        }
    },
)
async def send_message(
    session_id: str, body: SendIn, request: Request, context: Context, caller: Caller
) -> Any:
    auth = require(caller, CHAT_ACCESS)
    context.refuse_if_draining()
    lc = context.lc
    started = time.perf_counter()
    reply = await lc.send(session_id, body.text, auth=auth)
    session = lc.get_session(session_id, auth=auth)
    context.metrics.observe_turn(
        agent=reply.agent,
        team=session.team,
        seconds=reply.response_time_ms / 1000.0 if reply.agent else time.perf_counter() - started,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
    )
    out = reply_out(reply, session.escalation)
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            _events(out),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    return out


async def _events(out: ReplyOut) -> AsyncIterator[bytes]:
    yield sse("reply", out.model_dump(mode="json", by_alias=True))
    yield sse("done", {"session_id": out.session_id, "state": out.state})


def sse(event: str, data: Any) -> bytes:
    """One server-sent event (the data is one line of JSON)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def reply_out(reply: TurnReply, escalation: Any) -> ReplyOut:
    return ReplyOut(
        session_id=reply.session_id,
        text=reply.text,
        agent=reply.agent,
        agent_version=reply.agent_version,
        turn=reply.turn,
        state=reply.state,
        reason=reply.reason,
        handoffs=[HandoffOut.model_validate(h.as_dict()) for h in reply.handoffs],
        escalation=None if escalation is None else dict(escalation),
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        total_tokens=reply.total_tokens,
        response_time_ms=reply.response_time_ms,
    )


@router.post("/sessions/{session_id}/pause", response_model=SessionOut)
async def pause(session_id: str, context: Context, caller: Caller) -> SessionOut:
    auth = caller
    await context.lc.pause_session(session_id, auth=auth)
    return session_out(context.lc.get_session(session_id, auth=auth))


@router.post("/sessions/{session_id}/resume", response_model=SessionOut)
async def resume(session_id: str, context: Context, caller: Caller) -> SessionOut:
    auth = caller
    context.refuse_if_draining()
    await context.lc.resume_session(session_id, auth=auth)
    return session_out(context.lc.get_session(session_id, auth=auth))


@router.post("/sessions/{session_id}/end", response_model=SessionOut)
async def end(
    session_id: str, context: Context, caller: Caller, body: EndIn | None = None
) -> SessionOut:
    reason = "ended" if body is None else body.reason
    # the handle, taken while the session is live, follows it to its end: reading it again
    # after the end would load the ended session back from the store
    session = context.lc.get_session(session_id, auth=caller)
    await context.lc.end_agent_session(session_id, reason=reason, auth=caller)
    return session_out(session)


@router.post("/sessions/{session_id}/handoff")
async def handoff(
    session_id: str, body: HandoffIn, context: Context, caller: Caller
) -> dict[str, Any]:
    """Hand a team session to a specialization (or `human`) on request (operators)."""
    result = await context.lc.handle_agent_handoff(
        session_id,
        target_specialization=body.target_specialization,
        reason=body.reason,
        urgency=body.urgency,
        auth=caller,
    )
    return {
        "session_id": session_id,
        "status": result.status,
        "from": result.from_agent,
        "to": result.to,
        "escalation": None if result.escalation is None else dict(result.escalation),
    }
