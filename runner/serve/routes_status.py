"""REST: health, analytics, agent figures, and the admin calls (reload, cleanup, create_team).

Role: `GET /health` needs no credentials and carries no per-workspace data or secret: the
overall status, each component's status and detail, the count of active sessions and the
uptime (503 when critical or draining, so a load balancer takes the instance out).
`GET /metrics` is the runtime's JSON analytics (`metrics:read`); Prometheus scrapes `/metrics`
at the root instead (`runner.serve.app`). Admin calls need `admin`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from runner.runtime.assembly.opening import load_specs
from runner.runtime.auth import ADMIN, METRICS_READ, require
from runner.serve.deps import Caller, Context
from runner.serve.identity import NotVisible
from runner.serve.routes_sessions import ERRORS

__all__ = ["router"]

router = APIRouter(prefix="/api/agent-lifecycle", tags=["status"], responses=ERRORS)


@router.get("/health", responses={503: {"description": "critical, or shutting down"}})
async def health(context: Context, response: Response) -> dict[str, Any]:
    status = context.lc.get_system_status()
    components = {
        name: {"status": c.get("status", "healthy"), "detail": c.get("detail", "")}
        for name, c in status["components"].items()
    }
    overall = "draining" if context.draining else status["status"]
    if overall in ("critical", "draining"):
        response.status_code = 503
    return {
        "status": overall,
        "components": components,
        "active_sessions": status["active_sessions"],
        "uptime_s": round(status["uptime_s"], 3),
    }


@router.get("/metrics")
async def analytics(context: Context, caller: Caller) -> dict[str, Any]:
    """The runtime's analytics: sessions, performance, resources, health."""
    require(caller, METRICS_READ)
    return dict(context.lc.get_system_analytics())


@router.get("/agents/stats")
async def agent_stats(context: Context, caller: Caller) -> dict[str, Any]:
    require(caller, METRICS_READ)
    return dict(context.lc.get_agent_stats())


@router.get("/agents/{name}/insights")
async def insights(name: str, context: Context, caller: Caller) -> dict[str, Any]:
    require(caller, METRICS_READ)
    lc = context.lc
    if name not in lc.declared.agents and name not in lc.get_agent_stats()["agents"]:
        raise NotVisible(f"agent {name!r}")
    return dict(lc.get_performance_insights(name))


@router.post("/reload")
async def reload(context: Context, caller: Caller) -> dict[str, Any]:
    """Re-read the specs serve was started with into the running runtime (live sessions
    are kept). 422 with every problem at file:line:col when they do not load."""
    require(caller, ADMIN)
    if not context.spec_paths:
        raise NotVisible("spec folder (serve was started without one)")
    project = await run_in_threadpool(load_specs, [str(p) for p in context.spec_paths])
    context.lc.reload(project)
    return {"reloaded": True, "documents": len(list(project))}


@router.delete("/agents/{name}")
async def cleanup(name: str, context: Context, caller: Caller) -> dict[str, Any]:
    """End the agent's sessions and delete it (if runner manages it in this environment)."""
    result = await context.lc.cleanup_agent(name, auth=caller)
    return dict(result)


@router.post("/teams", status_code=201)
async def create_team(body: dict[str, Any], context: Context, caller: Caller) -> dict[str, Any]:
    """Create or replace a team, checked like a spec file (the Team kind's fields)."""
    team = await context.lc.create_team(body, auth=caller)
    return {"team": team.name, "members": [m.agent for m in team.members]}
