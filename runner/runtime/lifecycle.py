"""The runtime lifecycle API: agents, sessions, teams, pools, monitoring and events over what
was applied.

Flow position: last stop (`... -> apply -> registry -> *runtime*`). `Lifecycle.open(specs, env)`
reads the environment's applied state from the registry (agents' Foundry name and version;
teams, escalation paths, pools, alerts, channels, templates as their spec bodies) and, unless
the environment is protected, the specs: a declaration that was never applied is used from the
specs (agents are then applied on demand through `ensure_agent`, the executor's own path, under
the environment lock). A protected environment runs only what was applied.

`Lifecycle` is the facade: thin public methods over the runtime's parts, which the composition
root (`runner.runtime.assembly`) builds and wires: the session API (`runner.runtime.sessions`),
the operator API (`runner.runtime.operators`; its `OperatorCalls` is a base class), status
(`runner.runtime.status`; its `Reports` is the other), the agent catalog, pools, monitor and
event bus.

Invariants:
  - A session keeps one provider conversation and the agent versions it started with (`pins`):
    an apply during a conversation changes new sessions only.
  - Session rows are written when a session is created, changes state or ends; turn counters
    are written behind (at most `AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` late, always on close), so
    a new process on the same registry file finds and continues every session.
  - Every session call checks `chat:access` and the workspace; a session of another workspace
    raises the same `SessionNotFoundError` as a missing one.
  - Nothing on the turn path touches the registry unless another connection wrote it.
  - Event callbacks, channel deliveries and router bugs never break a session.
  - All time comes from the injected Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from runner.providers.base import Provider
from runner.runtime.assembly import Opener, RuntimeParts, SpecsArg, open_parts
from runner.runtime.auth import ADMIN, AuthLike, require
from runner.runtime.clock import Clock, SystemClock
from runner.runtime.config import RuntimeConfig
from runner.runtime.events import Callback, EventBus
from runner.runtime.monitoring import Notifier, PerformanceMonitor
from runner.runtime.operators import OperatorCalls
from runner.runtime.pools import PoolManager
from runner.runtime.sessions import (
    AgentHandle,
    AgentStats,
    CleanupAllResult,
    CleanupResult,
    Declared,
    Session,
    TurnChunk,
    TurnReply,
)
from runner.runtime.status import Reports
from runner.runtime.teams import RouteDecision, Router, RouterFactory
from runner.runtime.tools import ToolFunction
from runner.spec.models import Environment
from runner.spec.project import Project
from runner.spec.vocabulary import Priority
from runner.state.base import Registry
from runner.state.sessions import SessionRow, SessionStore

__all__ = ["Lifecycle"]


class Lifecycle(Reports, OperatorCalls):
    """The runtime of one environment. Build it with `Lifecycle.open`. Its read side (insights,
    status, analytics, conversation quality, cost optimisation) is `Reports`; what operators do
    (escalations, the human queue, requested handoffs, teams, availability) is `OperatorCalls`."""

    def __init__(self, parts: RuntimeParts) -> None:
        self.parts = parts
        Reports.__init__(
            self,
            status=parts.status,
            analysis=parts.analysis,
            sessions=parts.sessions,
            declared=lambda: parts.applied.declared,
        )
        OperatorCalls.__init__(self, parts.operators)

    @classmethod
    def open(
        cls,
        specs: SpecsArg = None,
        env: str | None = None,
        *,
        clock: Clock | None = None,
        registry_path: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        provider: Provider | None = None,
        router_factory: RouterFactory | None = None,
        background: bool = True,
        notifier: Notifier | None = None,
        notify_backoff: float = 0.5,
    ) -> Opener[Lifecycle]:
        """Open the runtime of environment `env` (default: the project's default environment).

        `specs`: a loaded Project, a path or a list of paths (loaded with `load_project`), or
        None to run only what was applied. `provider` overrides the environment's provider
        (tests, benchmarks). `background=False` starts no sweeper task (call `sweep()`).
        `notifier` delivers notifications instead of the channels' own delivery (e.g. a
        `RecordingNotifier` records them and sends nothing).
        """

        async def build() -> Lifecycle:
            parts = await asyncio.to_thread(
                open_parts,
                specs,
                env,
                clock=clock or SystemClock(),
                registry_path=registry_path,
                environ=os.environ if environ is None else environ,
                provider=provider,
                router_factory=router_factory,
                notifier=notifier,
                notify_backoff=notify_backoff,
            )
            parts.start(background=background)
            await parts.connect()
            return cls(parts)

        return Opener(build)

    def reload(self, project: Project) -> None:
        """Swap teams, pools, alerts, channels (and agent specs) without touching live sessions.

        Live sessions keep their pins, conversation and the pool slots they hold. Queued
        handoffs are served when the new teams have room for them (e.g. a raised `max_workload`).
        """
        self.parts.reload(project)

    async def close(self) -> None:
        await self.parts.close()

    def flush(self) -> None:
        """Write turn counters of sessions changed since the last flush (write-behind)."""
        self.parts.flush()

    async def sweep(self) -> list[str]:
        """End idle (and too old) sessions, slide windows, re-evaluate alerts; ids ended."""
        return await self.parts.sweep()

    # ------------------------------------------------------------ the parts

    @property
    def project(self) -> Project:
        """The specs this runtime was opened (or last reloaded) with."""
        return self.parts.applied.project

    @property
    def declared(self) -> Declared:
        """The specs the runtime runs with (applied bodies, plus specs where allowed)."""
        return self.parts.applied.declared

    @property
    def env(self) -> Environment:
        return self.parts.ctx.env

    @property
    def clock(self) -> Clock:
        return self.parts.ctx.clock

    @property
    def config(self) -> RuntimeConfig:
        return self.parts.ctx.config

    @property
    def environ(self) -> Mapping[str, str]:
        return self.parts.environ

    @property
    def provider(self) -> Provider:
        return self.parts.provider

    @property
    def registry(self) -> Registry:
        return self.parts.registry

    @property
    def store(self) -> SessionStore:
        return self.parts.session_store

    @property
    def events(self) -> EventBus:
        return self.parts.events

    @property
    def pools(self) -> PoolManager:
        return self.parts.pools

    @property
    def monitor(self) -> PerformanceMonitor:
        return self.parts.monitor

    @property
    def notifier(self) -> Notifier:
        return self.parts.notifier

    @property
    def routers(self) -> Mapping[str, Router]:
        """The team routers, by team (rebuilt on every reload)."""
        return self.parts.routers.by_team

    # ------------------------------------------------------------ events

    def on(self, event_type: str, callback: Callback) -> Callable[[], None]:
        """Subscribe to `event_type` (`"*"` for all, `"handoff:*"` for a family); returns `off`."""
        return self.parts.events.on(event_type, callback, remote=True)

    @contextlib.asynccontextmanager
    async def collect(self, pattern: str = "*") -> AsyncIterator[list[Any]]:
        """Collect events matching `pattern` while the block runs."""
        seen: list[Any] = []
        off = self.on(pattern, seen.append)
        try:
            yield seen
        finally:
            off()

    async def drain(self) -> None:
        """Wait for async event callbacks and channel deliveries in flight."""
        await self.parts.drain()

    # ------------------------------------------------------------ agents

    async def get_or_create_agent(
        self,
        name: str,
        *,
        model: str | None = None,
        instructions: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **fields: Any,
    ) -> AgentHandle:
        """The agent `name` as declared (or as defined here by fields), created only when no
        matching version exists, through the executor (same planner and ownership rules as
        apply; safe across threads and processes)."""
        return await self.parts.agents.get_or_create(
            name, model=model, instructions=instructions, tools=tools, fields=fields
        )

    def get_agent_stats(self) -> AgentStats:
        return self.parts.agents.agent_stats()

    async def cleanup_agent(self, name: str, *, auth: AuthLike) -> CleanupResult:
        """End the agent's live sessions and delete it from the provider and the registry, if
        runner manages it in this environment; forget its handle and figures either way.
        Needs `admin`."""
        require(auth, ADMIN)
        return await self.parts.agents.cleanup(name)

    async def cleanup_all(self, *, auth: AuthLike) -> CleanupAllResult:
        """`cleanup_agent` for every agent applied in this environment or used by this runtime;
        only agents runner manages are deleted. Needs `admin`."""
        require(auth, ADMIN)
        return await self.parts.agents.cleanup_all()

    # ------------------------------------------------------------ sessions

    async def create_agent_session(
        self,
        *,
        agent: str | None = None,
        team: str | None = None,
        auth: AuthLike,
        max_turns: int | None = None,
        idle_timeout: float | str | None = None,
        preferences: Mapping[str, Any] | None = None,
        priority: Priority | None = None,
        wait: float | None = None,
        features: Mapping[str, bool] | None = None,
    ) -> Session:
        """Start a session with one agent or with a team (its primary member answers first).

        `preferences` and `features` (toggles) must be declared by the session's agents
        (`SessionConfigError` otherwise); with the workspace's overlay they shape every turn.
        Pool slots are taken for every agent of the session; a full pool raises
        `PoolLimitError` (or waits up to `wait` seconds, served by `priority`).
        """
        return await self.parts.sessions.create(
            agent=agent,
            team=team,
            auth=auth,
            max_turns=max_turns,
            idle_timeout=idle_timeout,
            preferences=preferences,
            priority=priority,
            wait=wait,
            features=features,
        )

    def get_session(self, session_id: str, *, auth: AuthLike) -> Session:
        """The session, if it exists and `auth` may see it (ended sessions too)."""
        return self.parts.sessions.get(session_id, auth=auth)

    def list_sessions(self, *, auth: AuthLike) -> list[Session]:
        """The live sessions of `auth`'s workspace held by this runtime."""
        return self.parts.sessions.list_sessions(auth=auth)

    async def send(
        self, session_id: str, text: str, *, auth: AuthLike, wait: float | None = None
    ) -> TurnReply:
        """`get_session(...).send(text)` in one call."""
        return await self.parts.sessions.send(session_id, text, auth=auth, wait=wait)

    def stream(
        self, session_id: str, text: str, *, auth: AuthLike, wait: float | None = None
    ) -> AsyncIterator[TurnChunk]:
        """`send`, streamed: `async for chunk in lc.stream(id, text, auth=...)` yields each
        piece of reply text as it arrives (`chunk.type == "text"`), the turn's tool events
        (`"tool"`), then the `TurnReply` (`"reply"`, `chunk.reply`)."""
        return self.parts.sessions.stream(session_id, text, auth=auth, wait=wait)

    def register_tool(self, name: str, function: ToolFunction) -> None:
        """Run `function` (sync or async, called with the call's arguments as keyword
        arguments) for every call of a function tool `name`, replacing a spec's
        `implementation`."""
        self.parts.tools.register(name, function)

    async def apply_decision(
        self, session_id: str, decision: RouteDecision, *, auth: AuthLike
    ) -> Session:
        """Apply a routing decision outside a turn (an approved escalation, an operator handoff).

        Handoffs complete at once (no agent answers here)."""
        return await self.parts.sessions.apply_decision(session_id, decision, auth=auth)

    async def end_agent_session(
        self, session_id: str, *, reason: str = "ended", auth: AuthLike
    ) -> None:
        """End a session (idempotent for an ended one); its pool slots are released."""
        await self.parts.sessions.end(session_id, reason=reason, auth=auth)

    async def pause_session(self, session_id: str, *, auth: AuthLike) -> None:
        await self.parts.sessions.pause(session_id, auth=auth)

    async def resume_session(self, session_id: str, *, auth: AuthLike) -> None:
        await self.parts.sessions.resume(session_id, auth=auth)

    async def await_human(
        self, session_id: str, *, auth: AuthLike, reason: str | None = None
    ) -> None:
        """Hand the conversation to a human: no agent answers until `resume_session`."""
        await self.parts.sessions.await_human(session_id, auth=auth, reason=reason)

    @property
    def active_sessions(self) -> int:
        return self.parts.sessions.active_sessions

    def session_row(self, session_id: str) -> SessionRow | None:
        """The in-memory row of a live session, else the stored one (None: unknown)."""
        return self.parts.sessions.session_row(session_id)

    def open_rows(self) -> list[SessionRow]:
        """Every open session of the environment, the in-memory row when this runtime has it."""
        return self.parts.sessions.open_rows()

    def workload(self, agent: str) -> int:
        """Live sessions whose current member is `agent`."""
        return self.parts.sessions.workload(agent)

    def serve_waiting_handoffs(
        self, team: str | None = None, specialization: str | None = None
    ) -> int:
        """Complete queued handoffs (`on_no_free_member: wait`) of `team` / `specialization`
        (default: all) for which a member is free now, oldest first; how many completed.

        The runtime does this itself whenever capacity frees up (a member's session ends, is
        handed off away or goes to a person; availability back to `available`; a reload; open);
        a pass already running serves these too."""
        return self.parts.sessions.serve_waiting_handoffs(team, specialization)
