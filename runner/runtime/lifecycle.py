"""The runtime lifecycle API: agents, sessions, pools, monitoring and events over what was applied.

Flow position: last stop (`... -> apply -> registry -> *runtime*`). `Lifecycle.open(specs, env)`
reads the environment's applied state from the registry (agents' Foundry name and version;
teams, escalation paths, pools, alerts, channels, templates as their spec bodies) and, unless
the environment is protected, the specs: a declaration that was never applied is used from the
specs (agents are then applied on demand through `ensure_agent`, the executor's own path, under
the environment lock). A protected environment runs only what was applied.

`Lifecycle` is the facade: it opens, reloads and closes the runtime and keeps thin public
methods; the work is done by collaborators that share one `RuntimeContext`:

    applied    AppliedState   declared specs + applied agent versions (load, refresh)
    agents     AgentCatalog   pins, on-demand apply, get_or_create_agent, usage, cleanup
    live       LiveSessions   the session table and every state change of a session
    admission  Admission      starting sessions
    turns      Turns          the turn path, team routers, decisions (also queued handoffs served
                              when a member frees up; the index: `sessions.waiting`)
    status     RuntimeStatus  alert relaying, insights, status, analytics
    operators  Operators      the teams' operator side (attached at open)

Invariants:
  - A session keeps one provider conversation and the agent versions it started with (`pins`):
    an apply during a conversation changes new sessions only.
  - Session rows are written when a session is created, changes state or ends; turn counters
    are written behind (at most `AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` late, always on close), so
    a new process on the same registry file finds and continues every session.
  - Every session call checks `chat:access` and the workspace; a session of another workspace
    raises the same `SessionNotFoundError` as a missing one.
  - Nothing on the turn path touches the registry: applied agents are re-read only when SQLite's
    `data_version` says another connection wrote the file.
  - Event callbacks, channel deliveries and router bugs never break a session.
  - All time comes from the injected Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.providers.base import Provider
from runner.runtime.admission import Admission, Priority
from runner.runtime.agents import (
    LOCK_TIMEOUT_S,
    AgentCatalog,
    AgentStat,
    AgentStats,
    CleanupAllResult,
    CleanupResult,
)
from runner.runtime.applied import AppliedState, Declared
from runner.runtime.clock import Clock, SystemClock
from runner.runtime.config import RuntimeConfig
from runner.runtime.context import RuntimeContext
from runner.runtime.events import Callback, EventBus
from runner.runtime.live import LiveSessions
from runner.runtime.monitoring import AlertRelay, Notifier, PerformanceMonitor, channel_failures
from runner.runtime.opening import Opener, SpecsArg, build_lifecycle
from runner.runtime.pools import PoolManager
from runner.runtime.session import (
    CHAT_ACCESS,
    AgentHandle,
    AuthContext,
    AuthLike,
    Session,
    TurnReply,
    check_auth,
)
from runner.runtime.status import (
    ComponentStatus,
    Insights,
    RuntimeStatus,
    SystemAnalytics,
    SystemStatus,
)
from runner.runtime.teams import (
    MemberAvailability,
    RouteDecision,
    RouterFactory,
    team_router_factory,
)
from runner.runtime.turns import RouterHook, Turns
from runner.spec.models import Environment, Team
from runner.spec.project import Project
from runner.state.base import Registry
from runner.state.operators import OperatorStore
from runner.state.sessions import SessionRow
from runner.state.sessions_sqlite import SqliteSessionStore

if TYPE_CHECKING:
    from runner.runtime.escalation import Escalation
    from runner.runtime.operators import HandoffResult, Operators
    from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry

log = logging.getLogger("runner.runtime")

# Some of these moved to the collaborator modules; they stay importable from here.
__all__ = [
    "CHAT_ACCESS",
    "LOCK_TIMEOUT_S",
    "AgentHandle",
    "AgentStat",
    "AgentStats",
    "AuthContext",
    "AuthLike",
    "CleanupAllResult",
    "CleanupResult",
    "ComponentStatus",
    "Insights",
    "Lifecycle",
    "Session",
    "SpecsArg",
    "SystemAnalytics",
    "SystemStatus",
    "TurnReply",
]


class Lifecycle:
    """The runtime of one environment. Build it with `Lifecycle.open`."""

    def __init__(
        self,
        *,
        project: Project,
        env: Environment,
        provider: Provider,
        registry: Registry,
        store: SqliteSessionStore,
        operator_store: OperatorStore,
        clock: Clock,
        environ: Mapping[str, str],
        config: RuntimeConfig,
        router_factory: RouterFactory | None,
        notifier: Notifier | None,
        notify_backoff: float,
    ) -> None:
        events = EventBus(clock)
        if notifier is None:
            notifier = Notifier(
                channels={},
                environ=environ,
                backoff=notify_backoff,
                on_failure=channel_failures(events),
            )
        relay = AlertRelay(env=env.name, events=events, notifier=notifier)

        def emit(event_type: str, data: Mapping[str, Any]) -> None:
            events.emit(event_type, data)

        self.ctx = ctx = RuntimeContext(
            env=env,
            provider=provider,
            registry=registry,
            store=store,
            clock=clock,
            environ=environ,
            config=config,
            events=events,
            pools=PoolManager(
                clock=clock, emit=emit, default_session_limit=config.default_session_limit
            ),
            monitor=PerformanceMonitor(on_alert=relay.on_alert, enabled=config.monitoring_enabled),
            notifier=notifier,
        )
        # the context's parts, fixed for the runtime's life (all but the notifier)
        self.env, self.provider, self.registry, self.store = env, provider, registry, store
        self.clock, self.environ, self.config = clock, environ, config
        self.events, self.pools, self.monitor = events, ctx.pools, ctx.monitor
        self.operator_store = operator_store
        self.availability = MemberAvailability(env.name, operator_store)
        if router_factory is None:
            router_factory = team_router_factory(clock=clock, availability=self.availability.of)
        self.applied = AppliedState(ctx, project)
        self.sessions = LiveSessions(ctx)
        self.agents = AgentCatalog(ctx, self.applied, self.sessions)
        self.admission = Admission(
            ctx, applied=self.applied, sessions=self.sessions, agents=self.agents
        )
        self.turns = Turns(
            ctx,
            applied=self.applied,
            sessions=self.sessions,
            agents=self.agents,
            router_factory=router_factory,
        )
        self.status = RuntimeStatus(ctx, self.sessions)
        self._background: asyncio.Task[None] | None = None
        self._closed = False
        self._operators: Operators | None = None

    # ------------------------------------------------------------ the shared parts

    @property
    def notifier(self) -> Notifier:
        return self.ctx.notifier

    @property
    def project(self) -> Project:
        """The specs this runtime was opened (or last reloaded) with."""
        return self.applied.project

    @property
    def declared(self) -> Declared:
        """The specs the runtime runs with (applied bodies, plus specs where allowed)."""
        return self.applied.declared

    _declared = declared  # the name tools and tests used before the split

    # ------------------------------------------------------------ opening

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
    ) -> Opener:
        """Open the runtime of environment `env` (default: the project's default environment).

        `specs`: a loaded Project, a path or a list of paths (loaded with `load_project`), or
        None to run only what was applied. `provider` overrides the environment's provider
        (tests, benchmarks). `background=False` starts no sweeper task (call `sweep()`).
        `notifier` delivers notifications instead of the channels' own delivery (e.g. a
        `RecordingNotifier` records them and sends nothing).
        """

        async def build() -> Lifecycle:
            lc = await asyncio.to_thread(
                build_lifecycle,
                cls,
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
            lc.sessions.restore()
            lc._attach_operators()
            lc.serve_waiting_handoffs()  # queued before a restart: a member may be free now
            if background:
                lc._background = asyncio.get_running_loop().create_task(lc._run_background())
            return lc

        return Opener(build)

    def _load(self, project: Project) -> None:
        declared = self.applied.load(project)
        ctx = self.ctx
        ctx.pools.configure(declared.pools)
        ctx.monitor.configure(declared.alerts)
        ctx.notifier.configure(declared.channels)
        self.turns.build_routers(declared)

    def reload(self, project: Project) -> None:
        """Swap teams, pools, alerts, channels (and agent specs) without touching live sessions.

        Live sessions keep their pins, conversation and the pool slots they hold. Queued
        handoffs are served when the new teams have room for them (e.g. a raised `max_workload`).
        """
        self._load(project)
        self.serve_waiting_handoffs()

    # ------------------------------------------------------------ closing, background

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        self.flush()
        ctx = self.ctx
        await ctx.events.drain()
        await ctx.notifier.close()
        if self._operators is not None:
            self._operators.close()
        ctx.store.close()
        ctx.registry.close()
        ctx.provider.close()

    async def _run_background(self) -> None:
        config, clock = self.ctx.config, self.ctx.clock
        interval = min(config.persist_interval_s, config.monitoring_interval_s)
        last_sweep = clock.monotonic()
        while True:
            await clock.sleep(interval)
            try:
                self.flush()
                if clock.monotonic() - last_sweep >= config.monitoring_interval_s:
                    last_sweep = clock.monotonic()
                    await self.sweep()
            except Exception:
                log.exception("runtime background pass failed; retrying next interval")

    def flush(self) -> None:
        """Write turn counters of sessions changed since the last flush (write-behind)."""
        self.sessions.flush()

    async def sweep(self) -> list[str]:
        """End idle (and too old) sessions, slide windows, re-evaluate alerts; ids ended."""
        now = self.ctx.clock.now()
        ended = self.sessions.expire(now)
        self.ctx.pools.sweep()
        self.ctx.monitor.evaluate_all(now)
        self.flush()
        return ended

    # ------------------------------------------------------------ events

    def on(self, event_type: str, callback: Callback) -> Any:
        """Subscribe to `event_type` (`"*"` for all, `"handoff:*"` for a family); returns `off`."""
        return self.ctx.events.on(event_type, callback)

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
        return await self.agents.get_or_create(
            name, model=model, instructions=instructions, tools=tools, fields=fields
        )

    def get_agent_stats(self) -> AgentStats:
        return self.agents.agent_stats()

    async def cleanup_agent(self, name: str) -> CleanupResult:
        """End the agent's live sessions and delete it from the provider and the registry, if
        runner manages it in this environment; forget its handle and figures either way."""
        return await self.agents.cleanup(name)

    async def cleanup_all(self) -> CleanupAllResult:
        """`cleanup_agent` for every agent applied in this environment or used by this runtime;
        only agents runner manages are deleted."""
        return await self.agents.cleanup_all()

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
    ) -> Session:
        """Start a session with one agent or with a team (its primary member answers first).

        Pool slots are taken for every agent of the session; a full pool raises
        `PoolLimitError` (or waits up to `wait` seconds, served by `priority`).
        """
        ctx = check_auth(auth)
        row = await self.admission.start(
            ctx,
            agent=agent,
            team=team,
            max_turns=max_turns,
            idle_timeout=idle_timeout,
            preferences=preferences,
            priority=priority,
            wait=wait,
        )
        return Session(self, row, ctx)

    def get_session(self, session_id: str, *, auth: AuthLike) -> Session:
        """The session, if it exists and `auth` may see it (ended sessions too)."""
        ctx = check_auth(auth)
        return Session(self, self.sessions.visible(session_id, ctx), ctx)

    def list_sessions(self, *, auth: AuthLike) -> list[Session]:
        """The live sessions of `auth`'s workspace held by this runtime."""
        ctx = check_auth(auth)
        return [
            Session(self, row, ctx)
            for row in self.sessions.rows()
            if row.workspace_id == ctx.workspace_id
        ]

    async def send(
        self, session_id: str, text: str, *, auth: AuthLike, wait: float | None = None
    ) -> TurnReply:
        """`get_session(...).send(text)` in one call."""
        return await self.turns.send(session_id, text, auth=check_auth(auth), wait=wait)

    async def apply_decision(
        self, session_id: str, decision: RouteDecision, *, auth: AuthLike
    ) -> Session:
        """Apply a routing decision outside a turn (an approved escalation, an operator handoff).

        Handoffs complete at once (no agent answers here)."""
        ctx = check_auth(auth)
        live = self.sessions.live_or_raise(session_id, ctx)
        self.turns.apply_outside(live, decision)
        return Session(self, live.row, ctx)

    async def end_agent_session(
        self, session_id: str, *, reason: str = "ended", auth: AuthLike
    ) -> None:
        """End a session (idempotent for an ended one); its pool slots are released."""
        self.sessions.end_session(session_id, check_auth(auth), reason=reason)

    async def pause_session(self, session_id: str, *, auth: AuthLike) -> None:
        self.sessions.pause(session_id, check_auth(auth))

    async def resume_session(self, session_id: str, *, auth: AuthLike) -> None:
        ctx = check_auth(auth)
        row = self.sessions.visible(session_id, ctx)
        team = self.applied.declared.teams.get(row.target) if row.kind == "team" else None
        self.sessions.resume(session_id, ctx, team=team)

    async def await_human(
        self, session_id: str, *, auth: AuthLike, reason: str | None = None
    ) -> None:
        """Hand the conversation to a human: no agent answers until `resume_session`."""
        self.sessions.await_human(session_id, check_auth(auth), reason=reason)

    # ------------------------------------------------------------ for the operator side

    @property
    def routers(self) -> Mapping[str, Any]:
        """The team routers, by team (rebuilt on every reload)."""
        return self.turns.routers

    def on_router_built(self, hook: RouterHook) -> Callable[[], None]:
        """Call `hook` on every team router, now and after each reload; returns `off`."""
        return self.turns.add_router_hook(hook)

    def session_row(self, session_id: str) -> SessionRow | None:
        """The in-memory row of a live session, else the stored one (None: unknown)."""
        return self.sessions.row(session_id)

    def open_rows(self) -> list[SessionRow]:
        """Every open session of the environment, the in-memory row when this runtime has it."""
        return self.sessions.open_rows()

    def workload(self, agent: str) -> int:
        """Live sessions whose current member is `agent`."""
        return self.sessions.workload(agent)

    def serve_waiting_handoffs(
        self, team: str | None = None, specialization: str | None = None
    ) -> int:
        """Complete queued handoffs (`on_no_free_member: wait`) of `team` / `specialization`
        (default: all) for which a member is free now, oldest first; how many completed.

        The runtime calls this itself whenever capacity frees up (a member's session ends, is
        handed off away or goes to a person; availability back to `available`; a reload; open);
        a pass already running serves these too."""
        waiting = self.sessions.waiting
        if not waiting.by_key:
            return 0
        return waiting.request(waiting.keys(team, specialization))

    # ------------------------------------------------------------ teams: operators (delegating)

    def _attach_operators(self) -> None:
        """Attach the teams' operator side (runner.runtime.operators) from the start, so the
        human queue, the escalations table and escalation notifications follow every decision."""
        from runner.runtime.operators import operators_of

        self._operators = operators_of(self)

    @property
    def operators(self) -> Operators:
        """The operator API of this runtime (see runner.runtime.operators)."""
        from runner.runtime.operators import operators_of

        if self._operators is None:
            self._operators = operators_of(self)
        return self._operators

    async def approve_escalation(self, session_id: str, *, by: str) -> Escalation:
        return await self.operators.approve_escalation(session_id, by=by)

    async def reject_escalation(
        self, session_id: str, *, by: str, reason: str | None = None
    ) -> Escalation:
        return await self.operators.reject_escalation(session_id, by=by, reason=reason)

    async def accept_escalation(self, session_id: str, *, by: str) -> Escalation:
        return await self.operators.accept_escalation(session_id, by=by)

    def pending_escalations(self, *, workspace: str | None = None) -> list[StoredEscalation]:
        return self.operators.pending_escalations(workspace=workspace)

    def human_queue(self, workspace: str | None = None) -> list[QueueItem]:
        return self.operators.human_queue(workspace)

    async def claim(self, session_id: str, *, operator: str) -> QueueItem:
        return await self.operators.claim(session_id, operator=operator)

    async def answer(self, session_id: str, *, operator: str, text: str) -> TranscriptEntry:
        return await self.operators.answer(session_id, operator=operator, text=text)

    async def hand_back(self, session_id: str, *, operator: str) -> str:
        return await self.operators.hand_back(session_id, operator=operator)

    async def handle_agent_handoff(
        self,
        session_id: str,
        *,
        target_specialization: str,
        reason: str,
        urgency: Priority = "medium",
        auth: AuthLike,
    ) -> HandoffResult:
        return await self.operators.handle_agent_handoff(
            session_id,
            target_specialization=target_specialization,
            reason=reason,
            urgency=urgency,
            auth=auth,
        )

    async def create_team(self, spec: Team | Mapping[str, Any]) -> Team:
        return await self.operators.create_team(spec)

    def set_member_availability(self, team: str, agent: str, status: str) -> None:
        self.operators.set_member_availability(team, agent, status)

    # ------------------------------------------------------------ monitoring, status

    def get_performance_insights(self, agent: str) -> Insights:
        return self.status.insights(agent)

    @property
    def active_sessions(self) -> int:
        return len(self.sessions.live)

    def get_system_status(self) -> SystemStatus:
        return self.status.system_status()

    def get_system_analytics(self) -> SystemAnalytics:
        return self.status.system_analytics()

    # ------------------------------------------------------------ helpers for tests and tools

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
        await self.ctx.events.drain()
        await self.ctx.notifier.drain()
