"""The composition root: the parts of one environment's runtime, built and wired in one place.

Role: `RuntimeParts` picks each implementation and builds every part with what it needs (the
way temporalio's worker picks its workflow runner): the event bus and notifier, pools, the
monitor and its alert relay, what the runtime runs with (`AppliedState`), the session table,
routers (`team_router_factory` on the runtime's clock and live member availability, unless a
`RouterFactory` was given), session changes, agents, admission, turns, the session API, status
and the operator side. It then runs the parts' life: `load` / `reload` (specs swapped in
place), `start` (sessions restored, operators caught up, queued handoffs served, the background
pass), `flush`, `sweep`, `close`.

Invariants:
  - Each part gets its collaborators when it is built; nothing is patched in afterwards.
  - Lower parts never call up: what they need from above they declare as a Protocol or a
    callable (`SessionOwner`, `QueueServingRouter`, `RegistryChanges`, `Reload`).
  - `reload` never touches live sessions: they keep their pins, conversation and pool slots.
  - The background pass (write-behind flush, idle expiry, alert windows) logs its failures and
    retries on the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runner.providers.base import Provider
from runner.runtime.clock import Clock
from runner.runtime.config import RuntimeConfig
from runner.runtime.context import RuntimeContext
from runner.runtime.events import EventBus
from runner.runtime.monitoring import (
    AlertRelay,
    CostMeter,
    Notifier,
    PerformanceMonitor,
    SessionLedger,
    channel_failures,
)
from runner.runtime.operators import Operators
from runner.runtime.pools import PoolManager, SharedPools
from runner.runtime.sessions import (
    Admission,
    AgentCatalog,
    AppliedState,
    LiveSessions,
    RegistryChanges,
    SessionChanges,
    SessionConfigs,
    SessionLeases,
    SessionService,
    TeamRouters,
    TurnRecorder,
    Turns,
    WaitingSessions,
)
from runner.runtime.status import RuntimeStatus, SessionAnalysis
from runner.runtime.teams import MemberAvailability, RouterFactory, team_router_factory
from runner.runtime.tools import ToolCatalog, ToolRounds, ToolRunner
from runner.runtime.tracing import EventSpans, TracedProvider, tracing_active
from runner.spec.models import Environment
from runner.spec.project import Project
from runner.state.base import Registry
from runner.state.operators import OperatorStore
from runner.state.sessions import SessionStore
from runner.state.turn_log import TurnLog
from runner.telemetry import content_recording

if TYPE_CHECKING:
    from runner.runtime.events_redis import RedisEventRelay

__all__ = ["RuntimeParts"]

log = logging.getLogger("runner.runtime")


class RuntimeParts:
    """Every part of one environment's runtime (see the module docstring)."""

    def __init__(
        self,
        *,
        project: Project,
        env: Environment,
        provider: Provider,
        registry: Registry,
        registry_changes: RegistryChanges,
        session_store: SessionStore,
        operator_store: OperatorStore,
        turn_log: TurnLog | None = None,
        clock: Clock,
        environ: Mapping[str, str],
        config: RuntimeConfig,
        router_factory: RouterFactory | None,
        notifier: Notifier | None,
        notify_backoff: float,
        shared_limits: SharedPools | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.provider, self.registry, self.environ = provider, registry, environ
        self.redis_url = redis_url  # resolved (may hold a secret): never logged
        self.relay: RedisEventRelay | None = None
        self.session_store, self.operator_store = session_store, operator_store
        self.events = events = EventBus(clock)
        self.notifier = notifier or Notifier(
            channels={},
            environ=environ,
            backoff=notify_backoff,
            on_failure=channel_failures(events),
        )
        self.ctx = ctx = RuntimeContext(env=env, clock=clock, config=config, events=events)
        self.pools = PoolManager(
            clock=clock,
            emit=ctx.emit,
            default_session_limit=config.default_session_limit,
            shared=shared_limits,
        )
        relay = AlertRelay(env=env.name, events=events, notifier=self.notifier)
        self.monitor = PerformanceMonitor(
            on_alert=relay.on_alert, enabled=config.monitoring_enabled
        )
        self.costs = CostMeter(env=env.name, clock=clock, emit=ctx.emit)
        self.ledger = SessionLedger()
        self.turn_recorder = TurnRecorder(env.name, turn_log)
        self.applied = AppliedState(
            env=env, registry=registry, changes=registry_changes, project=project
        )
        self.availability = MemberAvailability(env.name, operator_store)
        self.routers = TeamRouters(
            router_factory or team_router_factory(clock=clock, availability=self.availability.of)
        )
        self.table = LiveSessions(
            ctx,
            store=session_store,
            pools=self.pools,
            monitor=self.monitor,
            waiting=WaitingSessions(),
        )
        self.leases = SessionLeases(ctx, store=session_store, table=self.table)
        self.changes = SessionChanges(
            ctx, table=self.table, routers=self.routers, store=session_store, leases=self.leases
        )
        self.agents = AgentCatalog(
            ctx, provider=provider, registry=registry, applied=self.applied, changes=self.changes
        )
        self.configs = SessionConfigs(ctx, applied=self.applied)
        self.tools = ToolCatalog()
        runner = ToolRunner(clock=clock, emit=ctx.emit, monitor=self.monitor)
        admission = Admission(
            ctx,
            provider=provider,
            store=session_store,
            pools=self.pools,
            monitor=self.monitor,
            applied=self.applied,
            table=self.table,
            agents=self.agents,
            configs=self.configs,
            leases=self.leases,
        )
        self.event_spans: EventSpans | None = None
        turn_provider: Provider = provider
        if tracing_active():  # decided once: with no OpenTelemetry SDK nothing is wrapped
            turn_provider = TracedProvider(
                provider,
                describe=self._describe_agent,
                record_content=content_recording(env.telemetry.record_content, environ),
            )
            self.event_spans = EventSpans()
            self.event_spans.subscribe(events)
        turns = Turns(
            ctx,
            provider=turn_provider,
            pools=self.pools,
            monitor=self.monitor,
            applied=self.applied,
            table=self.table,
            changes=self.changes,
            agents=self.agents,
            routers=self.routers,
            configs=self.configs,
            costs=self.costs,
            ledger=self.ledger,
            recorder=self.turn_recorder,
            tools=self.tools,
            rounds=ToolRounds(runner),
            leases=self.leases,
        )
        self.sessions = SessionService(
            table=self.table,
            changes=self.changes,
            admission=admission,
            turns=turns,
            applied=self.applied,
            clock=clock,
            leases=self.leases,
        )
        self.status = RuntimeStatus(
            ctx,
            provider=provider,
            table=self.table,
            pools=self.pools,
            monitor=self.monitor,
            notifier=self.notifier,
            costs=self.costs,
        )
        self.analysis = SessionAnalysis(
            ctx,
            provider=provider,
            table=self.table,
            monitor=self.monitor,
            pools=self.pools,
            costs=self.costs,
            ledger=self.ledger,
            agents=self.agents,
        )
        self.operators = Operators(
            ctx,
            sessions=self.sessions,
            routers=self.routers,
            applied=self.applied,
            availability=self.availability,
            store=operator_store,
            notifier=self.notifier,
            provider=provider,
            reload=self.reload,
        )
        self._background: asyncio.Task[None] | None = None
        self._closed = False

    def _describe_agent(self, foundry_name: str) -> tuple[str, str | None]:
        """An applied agent's spec name and model, from its Foundry name (for spans)."""
        name = foundry_name.removeprefix(self.ctx.env.name_prefix)
        return name, self.applied.model_of(name)

    # ------------------------------------------------------------ specs

    def load(self, project: Project) -> None:
        """Swap what the runtime runs with: agents (and their function tools' implementations:
        `ToolImplementationError` for one that does not resolve), teams, pools, alerts,
        channels."""
        declared = self.applied.load(project)
        self.tools.load(declared.agents, declared.templates, project)
        self.pools.configure(declared.pools)
        self.monitor.configure(declared.alerts)
        self.costs.configure(
            pricing=self.ctx.env.pricing,
            pools=declared.pools,
            workspaces=declared.workspaces.values(),
            model_of=self.applied.model_of,
        )
        self.notifier.configure(declared.channels)
        self.routers.build(declared)
        self.table.waiting.configure(declared.teams)

    def reload(self, project: Project) -> None:
        """`load`, then serve the queued handoffs the new teams have room for (e.g. a raised
        `max_workload`). Live sessions keep their pins, conversation and pool slots."""
        self.load(project)
        self.sessions.serve_waiting_handoffs()

    # ------------------------------------------------------------ running

    def start(self, *, background: bool) -> None:
        """On the event loop, once: hold the open sessions found in the store, let the
        operators catch up, serve handoffs queued before a restart, start the background pass."""
        self.table.restore()
        self.operators.catch_up()
        self.sessions.serve_waiting_handoffs()  # queued before a restart: a member may be free
        if background:
            self._background = asyncio.get_running_loop().create_task(self._run_background())

    async def connect(self) -> None:
        """With `redis:` on the Environment: relay events to and from the other instances."""
        if self.redis_url is not None and self.relay is None:
            from runner.runtime.events_redis import RedisEventRelay

            self.relay = RedisEventRelay(
                self.redis_url, bus=self.events, namespace=self.ctx.env.name
            )
            await self.relay.start()

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
        """Write turn counters of sessions changed since the last flush (write-behind), giving
        back the session leases kept since."""
        self.leases.flush()
        self.table.flush()
        self.turn_recorder.flush()

    async def sweep(self) -> list[str]:
        """End idle (and too old) sessions, slide windows, re-evaluate alerts; ids ended."""
        now = self.ctx.clock.now()
        self.leases.sync()  # sessions another instance ended are dropped here
        self.table.adopt_expired(now)  # and those it left to expire are ended here
        ended = self.changes.expire(now)
        self.pools.sweep()
        self.monitor.evaluate_all(now)
        self.flush()
        return ended

    async def drain(self) -> None:
        """Wait for async event callbacks and channel deliveries in flight."""
        await self.events.drain()
        await self.notifier.drain()

    async def close(self) -> None:
        """Stop the background pass, write what is pending, close stores and the provider
        (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        self.flush()
        await self.events.drain()
        if self.event_spans is not None:
            self.event_spans.end_all()
        if self.relay is not None:
            await self.relay.close()
        await self.pools.close()
        await self.notifier.close()
        self.operators.close()
        self.session_store.close()
        self.registry.close()
        self.provider.close()
