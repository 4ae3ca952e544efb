"""Agent reuse: which applied version a session talks to, applying agents on demand, cleanup.

Role: `AgentCatalog` answers "which version of agent X do new sessions use" (`pin`), applying
a declared but never applied agent through the executor's own path (`ensure_agent`: same
planner and ownership rules as `runner apply`, under the environment lock) when the
environment allows it. It also serves `get_or_create_agent` (agents declared in the specs or
defined in code), the per-agent usage figures, and `cleanup_agent` / `cleanup_all`.

Invariants:
  - A protected environment runs only what was applied: nothing is created or deleted here.
  - An agent is rendered and planned at most once per spec hash by this runtime; concurrent
    ensures of one agent are serialised (thread lock here, the registry lock across processes).
  - Cleanup deletes only agents runner manages in this environment, after ending the
    sessions pinned to them.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import ValidationError

from runner.providers.base import ENVIRONMENT_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE, Provider
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import LifecycleError, NotAppliedError, UnknownAgentError
from runner.runtime.sessions.applied import AppliedState, Pin
from runner.runtime.sessions.changes import SessionChanges
from runner.runtime.sessions.handles import AgentHandle
from runner.spec.models import API_VERSION, Agent, address_of
from runner.spec.project import Project
from runner.state.base import AppliedResource, Registry

__all__ = [
    "LOCK_TIMEOUT_S",
    "AgentCatalog",
    "AgentStat",
    "AgentStats",
    "CleanupAllResult",
    "CleanupResult",
    "UsageStat",
]

LOCK_TIMEOUT_S = 60.0


class AgentStat(TypedDict):
    use_count: int
    sessions: int
    created_at: float | None
    last_used_at: float | None
    version: str
    foundry_name: str


class AgentStats(TypedDict):
    total_agents: int
    agents: dict[str, AgentStat]


class CleanupResult(TypedDict):
    agent: str
    deleted: bool
    reason: str
    ended_sessions: int


class CleanupAllResult(TypedDict):
    deleted: list[str]
    skipped: dict[str, str]


@dataclass
class UsageStat:
    """How one agent version was used by this runtime (reset when the version changes)."""

    foundry_name: str
    version: str
    created_at: float | None
    use_count: int = 0
    sessions: int = 0
    last_used_at: float | None = None


class AgentCatalog:
    """Applied agent versions for sessions, on-demand apply, usage figures and cleanup."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        provider: Provider,
        registry: Registry,
        applied: AppliedState,
        changes: SessionChanges,
    ) -> None:
        self._ctx = ctx
        self._provider = provider
        self._registry = registry
        self._applied = applied
        self._changes = changes
        self.stats: dict[str, UsageStat] = {}
        self._ensure_locks: dict[str, threading.Lock] = {}
        self._ensure_guard = threading.Lock()
        self._ensured: dict[str, str] = {}  # agent -> hash ensured by this runtime

    # ------------------------------------------------------------ versions for sessions

    async def pin(self, name: str) -> Pin:
        """The version new sessions of agent `name` use (applying it on demand if allowed)."""
        applied = self._applied
        applied.refresh()
        pin = applied.agents.get(name)
        if pin is not None:
            return pin
        env = self._ctx.env
        if env.protected:
            raise NotAppliedError(
                f"agent.{name} is not applied in protected environment {env.name!r}; "
                "a protected environment runs only what was applied (run `runner apply`)"
            )
        if name not in applied.declared.agents:
            raise UnknownAgentError(
                f"agent.{name} is neither applied in environment {env.name!r} nor declared"
            )
        handle = await self._ensure(name, applied.project_with(None))
        return applied.agents.get(name) or Pin(handle.foundry_name, handle.version)

    async def _ensure(self, name: str, project: Project) -> AgentHandle:
        """Plan and apply agent `name` from `project` through the executor (cross-process safe)."""
        from runner.apply.executor import ensure_agent
        from runner.plan.desired import compute_desired

        ctx = self._ctx
        applied_state = self._applied
        solo = Project()
        for doc in project:
            if doc.kind != "Agent" or doc.spec.name == name:
                solo.add(doc)
        try:
            # the project that applied this environment here owns what the runtime writes too
            owner = self._registry.project_of(ctx.env.name) or ""
            desired = compute_desired(solo, ctx.env, owner=owner)
        except Exception as exc:  # RenderError and friends name the document
            raise LifecycleError(f"agent.{name}: cannot render: {exc}") from exc
        desired_agent = next(a for a in desired.agents if a.name == name)
        if self._ensured.get(name) == desired_agent.hash and name in applied_state.agents:
            pin = applied_state.agents[name]
            return AgentHandle(name, pin.foundry_name, pin.version)

        with self._ensure_guard:
            lock = self._ensure_locks.setdefault(name, threading.Lock())

        def run() -> AppliedResource:
            with lock:
                return ensure_agent(
                    provider=self._provider,
                    registry=self._registry,
                    env=ctx.env.name,
                    desired_agent=desired_agent,
                    lock_timeout=LOCK_TIMEOUT_S,
                )

        previous = applied_state.agents.get(name)
        try:
            applied = await asyncio.to_thread(run)
        except LifecycleError:
            raise
        except Exception as exc:
            raise LifecycleError(f"agent.{name}: could not be applied: {exc}") from exc
        assert applied.foundry_name is not None and applied.foundry_version is not None
        pin = Pin(applied.foundry_name, applied.foundry_version, applied.applied_at)
        applied_state.agents[name] = pin
        self._ensured[name] = desired_agent.hash
        applied_state.seen_own_write()
        if previous is None or previous.version != pin.version:
            ctx.emit(
                "agent:created",
                {"agent": name, "foundry_name": pin.foundry_name, "version": pin.version},
            )
        return AgentHandle(name, pin.foundry_name, pin.version)

    # ------------------------------------------------------------ agent reuse (seed 001)

    async def get_or_create(
        self,
        name: str,
        *,
        model: str | None,
        instructions: str | None,
        tools: Sequence[Mapping[str, Any]] | None,
        fields: Mapping[str, Any],
    ) -> AgentHandle:
        """See `Lifecycle.get_or_create_agent`."""
        env = self._ctx.env
        applied = self._applied
        in_code = model is not None or instructions is not None or tools is not None or fields
        if in_code:
            if name in applied.project.agents:
                raise LifecycleError(
                    f"agent.{name} is declared in the specs; call get_or_create_agent({name!r}) "
                    "without fields, or give the agent defined in code another name"
                )
            body: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "Agent", "name": name}
            for key, value in (("model", model), ("instructions", instructions)):
                if value is not None:
                    body[key] = value
            if tools is not None:
                body["tools"] = [dict(t) for t in tools]
            body.update(fields)
            try:
                agent = Agent.model_validate(body)
            except ValidationError as exc:
                raise LifecycleError(f"agent.{name}: invalid definition: {exc}") from exc
            if env.protected:
                raise NotAppliedError(
                    f"agent.{name}: protected environment {env.name!r} runs only what was "
                    "applied; agents defined in code cannot be created there"
                )
            handle = await self._ensure(name, applied.project_with(agent))
            applied.declared.agents[name] = agent
        elif env.protected or name not in applied.declared.agents:
            pin = await self.pin(name)
            handle = AgentHandle(name, pin.foundry_name, pin.version)
        else:
            handle = await self._ensure(name, applied.project_with(None))
        stat = self.stat(name, handle)
        stat.use_count += 1
        stat.last_used_at = self._ctx.clock.now()
        return handle

    # ------------------------------------------------------------ usage figures

    def stat(self, name: str, handle: AgentHandle | Pin) -> UsageStat:
        """The usage figures of `name` at `handle`'s version (new figures for a new version)."""
        stat = self.stats.get(name)
        if stat is None or stat.version != handle.version:
            created = getattr(handle, "applied_at", None) or self._ctx.clock.now()
            old = stat
            stat = UsageStat(
                foundry_name=handle.foundry_name, version=handle.version, created_at=created
            )
            if old is not None:
                stat.use_count, stat.sessions = old.use_count, old.sessions
            self.stats[name] = stat
        return stat

    def agent_stats(self) -> AgentStats:
        agents: dict[str, AgentStat] = {
            name: {
                "use_count": s.use_count,
                "sessions": s.sessions,
                "created_at": s.created_at,
                "last_used_at": s.last_used_at,
                "version": s.version,
                "foundry_name": s.foundry_name,
            }
            for name, s in sorted(self.stats.items())
        }
        return {"total_agents": len(agents), "agents": agents}

    # ------------------------------------------------------------ cleanup

    async def cleanup(self, name: str) -> CleanupResult:
        """See `Lifecycle.cleanup_agent`."""
        ctx = self._ctx
        env = ctx.env
        provider, registry = self._provider, self._registry
        if env.protected:
            raise LifecycleError(
                f"agent.{name}: protected environment {env.name!r}: agents are removed by "
                "`runner apply` with confirmation, not by the runtime"
            )
        ended = self._changes.end_using(name, "agent_cleanup")
        self._applied.refresh()
        pin = self._applied.agents.get(name)
        foundry_name = pin.foundry_name if pin else (env.name_prefix + name)

        def delete() -> tuple[bool, str]:
            current = provider.get_agent(foundry_name)
            if current is None:
                return False, "not found in the provider"
            managed = current.metadata.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE
            if not managed or current.metadata.get(ENVIRONMENT_KEY, env.name) != env.name:
                return False, "not managed by runner in this environment; left alone"
            owner = registry.project_of(env.name)
            if current.project is not None and owner is not None and current.project != owner:
                return False, f"belongs to runner project {current.project!r}; left alone"
            apply_id = f"runtime-{uuid.uuid4().hex[:12]}"
            with registry.lock(
                env.name, holder=f"runtime cleanup_agent({name})", timeout=LOCK_TIMEOUT_S
            ):
                provider.delete_agent(foundry_name)
                if registry.get(env.name, address_of("Agent", name)) is not None:
                    registry.record_deleted(env.name, address_of("Agent", name), apply_id=apply_id)
            return True, "deleted"

        try:
            deleted, reason = await asyncio.to_thread(delete)
        except Exception as exc:
            raise LifecycleError(f"agent.{name}: cleanup failed: {exc}") from exc
        self._applied.agents.pop(name, None)
        self._ensured.pop(name, None)
        self.stats.pop(name, None)
        self._applied.seen_own_write()
        ctx.emit("agent:cleaned-up", {"agent": name, "deleted": deleted, "reason": reason})
        return {"agent": name, "deleted": deleted, "reason": reason, "ended_sessions": ended}

    async def cleanup_all(self) -> CleanupAllResult:
        """See `Lifecycle.cleanup_all`."""
        self._applied.refresh()
        names = sorted(set(self._applied.agents) | set(self.stats))
        out: CleanupAllResult = {"deleted": [], "skipped": {}}
        for name in names:
            result = await self.cleanup(name)
            if result["deleted"]:
                out["deleted"].append(name)
            else:
                out["skipped"][name] = result["reason"]
        return out
