"""The runtime lifecycle API: agents, sessions, pools, monitoring and events over what was applied.

Flow position: last stop (`... -> apply -> registry -> *runtime*`). `Lifecycle.open(specs, env)`
reads the environment's applied state from the registry (agents' Foundry name and version;
teams, escalation paths, pools, alerts, channels, templates as their spec bodies) and, unless
the environment is protected, the specs: a declaration that was never applied is used from the
specs (agents are then applied on demand through `ensure_agent`, the executor's own path, under
the environment lock). A protected environment runs only what was applied.

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
import inspect
import logging
import os
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import ValidationError

from runner.providers.base import (
    ENVIRONMENT_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    Provider,
    ProviderError,
    Reply,
)
from runner.runtime.channels import Notification, Notifier
from runner.runtime.clock import Clock, SystemClock
from runner.runtime.config import RuntimeConfig
from runner.runtime.decisions import (
    HUMAN,
    Handoff,
    PrimaryRouter,
    RouteDecision,
    RouterFactory,
    TeamRouter,
    TurnContext,
    default_router_factory,
    primary_member,
)
from runner.runtime.errors import (
    LifecycleError,
    NotAppliedError,
    PermissionDeniedError,
    SessionNotFoundError,
    SessionStateError,
    SpecProblemsError,
    TurnFailedError,
    UnknownAgentError,
    UnknownTeamError,
)
from runner.runtime.events import Callback, EventBus
from runner.runtime.monitor import (
    PerformanceMonitor,
    Subject,
    SubjectFigures,
    recommend,
    subject_figures,
)
from runner.runtime.pools import PoolFigures, PoolManager
from runner.spec.models import (
    API_VERSION,
    KINDS,
    Agent,
    Alert,
    Channel,
    Environment,
    EscalationPath,
    Personality,
    ResourcePool,
    Team,
    Template,
    address_of,
    parse_duration,
)
from runner.spec.project import Position, Project, SpecDocument
from runner.state.base import AppliedResource, Registry
from runner.state.sessions import SessionRow, SessionState, SessionStore

if TYPE_CHECKING:
    from runner.runtime.escalation import Escalation
    from runner.runtime.operators import HandoffResult, Operators
    from runner.state.humanqueue import QueueItem, StoredEscalation, TranscriptEntry

log = logging.getLogger("runner.runtime")

CHAT_ACCESS = "chat:access"
LOCK_TIMEOUT_S = 60.0

# ---------------------------------------------------------------- public value types


@dataclass(frozen=True, slots=True)
class AuthContext:
    user_id: str
    workspace_id: str | None = None
    permissions: frozenset[str] = frozenset({CHAT_ACCESS})

    @classmethod
    def of(cls, auth: AuthLike) -> AuthContext:
        if isinstance(auth, AuthContext):
            return auth
        if isinstance(auth, Mapping):
            return cls(
                user_id=str(auth.get("user_id") or "anonymous"),
                workspace_id=auth.get("workspace_id"),
                permissions=frozenset(auth.get("permissions") or ()),
            )
        # a spec `Auth` (scenarios) or any object with the three attributes
        return cls(
            user_id=str(getattr(auth, "user_id", "anonymous")),
            workspace_id=getattr(auth, "workspace_id", None),
            permissions=frozenset(getattr(auth, "permissions", ()) or ()),
        )


AuthLike = AuthContext | Mapping[str, Any] | Any


@dataclass(frozen=True, slots=True)
class AgentHandle:
    name: str
    foundry_name: str
    version: str


@dataclass(frozen=True, slots=True)
class TurnReply:
    """What `Session.send` returns. `agent` is the answering agent's spec name (None: nobody
    answered, e.g. the session ended on max_turns or waits for a human)."""

    text: str
    agent: str | None
    session_id: str
    turn: int
    state: SessionState
    agent_version: str | None = None
    foundry_name: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    response_time_ms: float = 0.0
    handoffs: tuple[Handoff, ...] = ()
    reason: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def ended(self) -> bool:
        return self.state == "ended"


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


class ComponentStatus(TypedDict, total=False):
    status: Literal["healthy", "degraded", "critical"]
    detail: str


class SystemStatus(TypedDict):
    status: Literal["healthy", "degraded", "critical"]
    components: dict[str, ComponentStatus]
    active_sessions: int
    uptime_s: float


class Insights(TypedDict):
    agent: str
    figures: SubjectFigures
    insights: list[str]
    optimizations: list[str]
    alerts: list[str]


class SystemAnalytics(TypedDict):
    sessions: dict[str, Any]
    performance: dict[str, Any]
    resources: dict[str, Any]
    health: SystemStatus


# ---------------------------------------------------------------- internal state


@dataclass(slots=True)
class _Pin:
    foundry_name: str
    version: str
    applied_at: float = 0.0


@dataclass(slots=True)
class _Live:
    """A session this process holds in memory (never an ended one)."""

    row: SessionRow
    agents: tuple[str, ...]  # agents whose limits the session counts against
    lock: asyncio.Lock | None = None


@dataclass
class _Stat:
    foundry_name: str
    version: str
    created_at: float | None
    use_count: int = 0
    sessions: int = 0
    last_used_at: float | None = None


@dataclass
class _Declared:
    """Specs the runtime runs with: applied bodies, plus not-yet-applied specs when allowed."""

    agents: dict[str, Agent] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    personalities: dict[str, Personality] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    escalation_paths: dict[str, EscalationPath] = field(default_factory=dict)
    pools: dict[str, ResourcePool] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)


# Kind -> attribute holding its specs, the same name on `_Declared` and on `Project`.
_DECLARED_FIELDS = {
    "Agent": "agents",
    "Template": "templates",
    "Personality": "personalities",
    "Team": "teams",
    "EscalationPath": "escalation_paths",
    "ResourcePool": "pools",
    "Alert": "alerts",
    "Channel": "channels",
}


def _new_session_id() -> str:
    return "sess_" + secrets.token_hex(12)


# ---------------------------------------------------------------- Session handle


class Session:
    """A handle on one session, bound to the auth it was obtained with (checked on each call)."""

    __slots__ = ("_auth", "_lc", "_row")

    def __init__(self, lc: Lifecycle, row: SessionRow, auth: AuthContext) -> None:
        self._lc = lc
        self._row = row
        self._auth = auth

    def _fresh(self) -> SessionRow:
        live = self._lc._live.get(self._row.id)
        if live is not None:
            self._row = live.row
        return self._row

    @property
    def id(self) -> str:
        return self._row.id

    @property
    def session_id(self) -> str:
        return self._row.id

    @property
    def state(self) -> SessionState:
        return self._fresh().state

    @property
    def reason(self) -> str | None:
        return self._fresh().reason

    @property
    def conversation_id(self) -> str:
        return self._row.conversation_id

    @property
    def agent(self) -> str | None:
        """The member that answers next (for an agent session: that agent)."""
        return self._fresh().current_agent

    @property
    def team(self) -> str | None:
        return self._row.target if self._row.kind == "team" else None

    @property
    def turns(self) -> int:
        return self._fresh().turns

    @property
    def max_turns(self) -> int | None:
        return self._row.max_turns

    @property
    def workspace_id(self) -> str | None:
        return self._row.workspace_id

    @property
    def escalation(self) -> Mapping[str, Any] | None:
        return self._fresh().escalation

    @property
    def versions(self) -> dict[str, str]:
        """Agent spec name -> the pinned Foundry version."""
        return {name: pin[1] for name, pin in self._fresh().pins.items()}

    @property
    def tokens(self) -> int:
        row = self._fresh()
        return row.input_tokens + row.output_tokens

    @property
    def row(self) -> SessionRow:
        """The stored row (read-only by convention; for tests, tools and the teams coordinator)."""
        return self._fresh()

    async def send(self, text: str, *, wait: float | None = None) -> TurnReply:
        return await self._lc._send(self._row.id, text, auth=self._auth, wait=wait)

    async def pause(self) -> None:
        await self._lc.pause_session(self._row.id, auth=self._auth)

    async def resume(self) -> None:
        await self._lc.resume_session(self._row.id, auth=self._auth)

    async def end(self, reason: str = "ended") -> None:
        await self._lc.end_agent_session(self._row.id, reason=reason, auth=self._auth)

    def __repr__(self) -> str:
        row = self._fresh()
        return f"<Session {row.id} {row.kind}.{row.target} {row.state} turns={row.turns}>"


# ---------------------------------------------------------------- Lifecycle


SpecsArg = Project | str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


class _Opener:
    """`Lifecycle.open(...)`: `async with` it, or `await` it and `close()` yourself."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self._lc: Lifecycle | None = None

    def __await__(self) -> Generator[Any, None, Lifecycle]:
        return self._open().__await__()

    async def _open(self) -> Lifecycle:
        lc: Lifecycle = await self._factory()
        return lc

    async def __aenter__(self) -> Lifecycle:
        self._lc = await self._open()
        return self._lc

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._lc is not None:
            await self._lc.close()


class Lifecycle:
    """The runtime of one environment. Build it with `Lifecycle.open`."""

    def __init__(
        self,
        *,
        project: Project,
        env: Environment,
        provider: Provider,
        registry: Registry,
        store: SessionStore,
        clock: Clock,
        environ: Mapping[str, str],
        config: RuntimeConfig,
        router_factory: RouterFactory,
        notify_backoff: float,
    ) -> None:
        self.project = project
        self.env = env
        self.provider = provider
        self.registry = registry
        self.store = store
        self.clock = clock
        self.environ = environ
        self.config = config
        self._router_factory = router_factory
        self.events = EventBus()
        self.pools = PoolManager(
            clock=clock, emit=self._emit, default_session_limit=config.default_session_limit
        )
        self.monitor = PerformanceMonitor(
            on_alert=self._on_alert,
            active_sessions=self._active_sessions_of,
            enabled=config.monitoring_enabled,
        )
        self.notifier = Notifier(
            channels={},
            environ=environ,
            backoff=notify_backoff,
            on_failure=self._on_channel_failure,
        )
        self._declared = _Declared()
        self._routers: dict[str, TeamRouter] = {}
        self._applied_agents: dict[str, _Pin] = {}
        self._data_version = -1
        self._live: dict[str, _Live] = {}
        self._dirty: set[str] = set()
        self._stats: dict[str, _Stat] = {}
        self._ensure_locks: dict[str, threading.Lock] = {}
        self._ensure_guard = threading.Lock()
        self._ensured: dict[str, str] = {}  # agent -> hash ensured by this runtime
        self._current_load: dict[str, int] = {}
        self._created = 0
        self._ended_reasons: dict[str, int] = {}
        self._ended_turns = 0
        self._started_mono = clock.monotonic()
        self._background: asyncio.Task[None] | None = None
        self._closed = False
        self._operators: Operators | None = None

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
        notify_backoff: float = 0.5,
    ) -> _Opener:
        """Open the runtime of environment `env` (default: the project's default environment).

        `specs`: a loaded Project, a path or a list of paths (loaded with `load_project`), or
        None to run only what was applied. `provider` overrides the environment's provider
        (tests, benchmarks). `background=False` starts no sweeper task (call `sweep()`).
        """

        async def build() -> Lifecycle:
            lc = await asyncio.to_thread(
                cls._build,
                specs,
                env,
                clock=clock or SystemClock(),
                registry_path=registry_path,
                environ=os.environ if environ is None else environ,
                provider=provider,
                router_factory=router_factory,
                notify_backoff=notify_backoff,
            )
            lc._restore_sessions()
            lc._attach_operators()
            if background:
                lc._background = asyncio.get_running_loop().create_task(lc._run_background())
            return lc

        return _Opener(build)

    @classmethod
    def _build(
        cls,
        specs: SpecsArg,
        env_name: str | None,
        *,
        clock: Clock,
        registry_path: str | os.PathLike[str] | None,
        environ: Mapping[str, str],
        provider: Provider | None,
        router_factory: RouterFactory | None,
        notify_backoff: float,
    ) -> Lifecycle:
        from runner.paths import registry_path as default_registry_path
        from runner.state.sqlite import SqliteRegistry

        project = _load_specs(specs)
        env = _environment(project, env_name)
        path = Path(registry_path) if registry_path is not None else default_registry_path()
        registry = SqliteRegistry(path)
        if provider is None:
            from runner.providers import build_provider

            try:
                provider = build_provider(env, environ=environ)
            except ProviderError as exc:
                raise LifecycleError(f"environment.{env.name}: {exc}") from exc
        store = SessionStore(path)
        lc = cls(
            project=project,
            env=env,
            provider=provider,
            registry=registry,
            store=store,
            clock=clock,
            environ=environ,
            config=RuntimeConfig.from_environ(environ),
            router_factory=router_factory or default_router_factory(),
            notify_backoff=notify_backoff,
        )
        lc._load_declared(project)
        return lc

    def _load_declared(self, project: Project) -> None:
        """Applied bodies first; not-yet-applied specs fill in unless the env is protected."""
        self._data_version = self.store.data_version()
        applied = self.registry.applied(self.env.name)
        declared = _Declared()
        agents: dict[str, _Pin] = {}
        for resource in applied.values():
            attr = _DECLARED_FIELDS.get(resource.kind)
            if attr is None:
                continue
            if resource.kind == "Agent" and resource.foundry_name and resource.foundry_version:
                agents[resource.name] = _Pin(
                    resource.foundry_name, resource.foundry_version, resource.applied_at
                )
            spec = _spec_from_body(resource)
            if spec is not None:
                getattr(declared, attr)[resource.name] = spec
        if not self.env.protected:
            for kind, attr in _DECLARED_FIELDS.items():
                mine: dict[str, Any] = getattr(declared, attr)
                for name, spec in getattr(project, attr).items():
                    if name not in mine or (kind == "Agent" and name not in agents):
                        mine[name] = spec
        self._declared = declared
        self._applied_agents = agents
        self.pools.configure(declared.pools)
        self.monitor.configure(declared.alerts)
        self.notifier.configure(declared.channels)
        self._routers = {}
        for name, team in declared.teams.items():
            path = declared.escalation_paths.get(team.workflow.escalation_path or "")
            try:
                self._routers[name] = self._router_factory(team, path)
            except Exception:
                log.exception("team.%s: router could not be built; the primary answers", name)
                self._routers[name] = PrimaryRouter(team, path)

    def reload(self, project: Project) -> None:
        """Swap teams, pools, alerts, channels (and agent specs) without touching live sessions.

        Live sessions keep their pins, conversation and the pool slots they hold.
        """
        self.project = project
        self._load_declared(project)

    def _restore_sessions(self) -> None:
        for row in self.store.load_open(self.env.name):
            agents = tuple(row.pins)
            self._live[row.id] = _Live(row=row, agents=agents)
            self.pools.occupy(agents=agents, pools=row.pools)
            if row.current_agent:
                self._current_load[row.current_agent] = (
                    self._current_load.get(row.current_agent, 0) + 1
                )

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
        await self.events.drain()
        await self.notifier.close()
        if self._operators is not None:
            self._operators.close()
        self.store.close()
        self.registry.close()
        self.provider.close()

    async def _run_background(self) -> None:
        interval = min(self.config.persist_interval_s, self.config.monitoring_interval_s)
        last_sweep = self.clock.monotonic()
        while True:
            await self.clock.sleep(interval)
            try:
                self.flush()
                if self.clock.monotonic() - last_sweep >= self.config.monitoring_interval_s:
                    last_sweep = self.clock.monotonic()
                    await self.sweep()
            except Exception:
                log.exception("runtime background pass failed; retrying next interval")

    def flush(self) -> None:
        """Write turn counters of sessions changed since the last flush (write-behind)."""
        if not self._dirty:
            return
        rows = [live.row for sid in self._dirty if (live := self._live.get(sid)) is not None]
        self._dirty = set()
        self.store.save_counters(rows)

    async def sweep(self) -> list[str]:
        """End idle (and too old) sessions, slide windows, re-evaluate alerts; ids ended."""
        now = self.clock.now()
        ended: list[str] = []
        max_age = self.config.max_session_duration_s
        for live in list(self._live.values()):
            row = live.row
            if row.state == "ended":
                continue
            idle = row.idle_timeout
            if idle and now - row.last_activity_at >= idle:
                self._end(live, "idle_timeout")
                ended.append(row.id)
            elif max_age and now - row.created_at >= max_age:
                self._end(live, "max_duration")
                ended.append(row.id)
        self.pools.sweep()
        self.monitor.evaluate_all(now)
        self.flush()
        return ended

    # ------------------------------------------------------------ events

    def on(self, event_type: str, callback: Callback) -> Any:
        """Subscribe to `event_type` (`"*"` for all, `"handoff:*"` for a family); returns `off`."""
        return self.events.on(event_type, callback)

    def _emit(self, event_type: str, data: Mapping[str, Any]) -> None:
        self.events.emit(event_type, data, at=self.clock.now())

    # ------------------------------------------------------------ applied agents

    def _refresh_applied(self) -> None:
        """Re-read applied agents when another connection wrote the registry file."""
        version = self.store.data_version()
        if version == self._data_version:
            return
        self._data_version = version
        agents: dict[str, _Pin] = {}
        for resource in self.registry.applied(self.env.name).values():
            if resource.kind == "Agent" and resource.foundry_name and resource.foundry_version:
                agents[resource.name] = _Pin(
                    resource.foundry_name, resource.foundry_version, resource.applied_at
                )
                spec = _spec_from_body(resource)
                if isinstance(spec, Agent) and (
                    self.env.protected or resource.name not in self.project.agents
                ):
                    self._declared.agents[resource.name] = spec
        self._applied_agents = agents

    async def _pin(self, name: str) -> _Pin:
        """The version new sessions of agent `name` use (applying it on demand if allowed)."""
        self._refresh_applied()
        pin = self._applied_agents.get(name)
        if pin is not None:
            return pin
        if self.env.protected:
            raise NotAppliedError(
                f"agent.{name} is not applied in protected environment {self.env.name!r}; "
                "a protected environment runs only what was applied (run `runner apply`)"
            )
        if name not in self._declared.agents:
            raise UnknownAgentError(
                f"agent.{name} is neither applied in environment {self.env.name!r} nor declared"
            )
        handle = await self._ensure(name, self._project_with(None))
        return self._applied_agents.get(name) or _Pin(handle.foundry_name, handle.version)

    def _project_with(self, agent: Agent | None) -> Project:
        """The specs to render from: the declared set (plus `agent`, defined in code)."""
        project = Project()
        specs_win = not self.env.protected  # get_or_create renders the specs as written now
        for attr in ("personalities", "templates"):
            merged = dict(getattr(self._declared, attr))
            if specs_win:
                merged.update(getattr(self.project, attr))
            for spec in merged.values():
                project.add(SpecDocument(spec=spec, position=Position("<runtime>", 1, 1)))
        agents = dict(self._declared.agents)
        if specs_win:
            agents.update(self.project.agents)
        if agent is not None:
            agents[agent.name] = agent
        for spec in agents.values():
            project.add(SpecDocument(spec=spec, position=Position("<runtime>", 1, 1)))
        return project

    async def _ensure(self, name: str, project: Project) -> AgentHandle:
        """Plan and apply agent `name` from `project` through the executor (cross-process safe)."""
        from runner.apply.executor import ensure_agent
        from runner.plan.desired import compute_desired

        solo = Project()
        for doc in project:
            if doc.kind != "Agent" or doc.spec.name == name:
                solo.add(doc)
        try:
            desired = compute_desired(solo, self.env)
        except Exception as exc:  # RenderError and friends name the document
            raise LifecycleError(f"agent.{name}: cannot render: {exc}") from exc
        desired_agent = next(a for a in desired.agents if a.name == name)
        if self._ensured.get(name) == desired_agent.hash and name in self._applied_agents:
            pin = self._applied_agents[name]
            return AgentHandle(name, pin.foundry_name, pin.version)

        with self._ensure_guard:
            lock = self._ensure_locks.setdefault(name, threading.Lock())

        def run() -> AppliedResource:
            with lock:
                return ensure_agent(
                    provider=self.provider,
                    registry=self.registry,
                    env=self.env.name,
                    desired_agent=desired_agent,
                    lock_timeout=LOCK_TIMEOUT_S,
                )

        previous = self._applied_agents.get(name)
        try:
            applied = await asyncio.to_thread(run)
        except LifecycleError:
            raise
        except Exception as exc:
            raise LifecycleError(f"agent.{name}: could not be applied: {exc}") from exc
        assert applied.foundry_name is not None and applied.foundry_version is not None
        pin = _Pin(applied.foundry_name, applied.foundry_version, applied.applied_at)
        self._applied_agents[name] = pin
        self._ensured[name] = desired_agent.hash
        self._data_version = self.store.data_version()
        if previous is None or previous.version != pin.version:
            self._emit(
                "agent:created",
                {"agent": name, "foundry_name": pin.foundry_name, "version": pin.version},
            )
        return AgentHandle(name, pin.foundry_name, pin.version)

    # ------------------------------------------------------------ agent reuse (seed 001)

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
        in_code = model is not None or instructions is not None or tools is not None or fields
        if in_code:
            if name in self.project.agents:
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
            if self.env.protected:
                raise NotAppliedError(
                    f"agent.{name}: protected environment {self.env.name!r} runs only what was "
                    "applied; agents defined in code cannot be created there"
                )
            handle = await self._ensure(name, self._project_with(agent))
            self._declared.agents[name] = agent
        elif self.env.protected or name not in self._declared.agents:
            pin = await self._pin(name)
            handle = AgentHandle(name, pin.foundry_name, pin.version)
        else:
            handle = await self._ensure(name, self._project_with(None))
        stat = self._stat(name, handle)
        stat.use_count += 1
        stat.last_used_at = self.clock.now()
        return handle

    def _stat(self, name: str, handle: AgentHandle | _Pin) -> _Stat:
        stat = self._stats.get(name)
        if stat is None or stat.version != handle.version:
            created = getattr(handle, "applied_at", None) or self.clock.now()
            old = stat
            stat = _Stat(
                foundry_name=handle.foundry_name, version=handle.version, created_at=created
            )
            if old is not None:
                stat.use_count, stat.sessions = old.use_count, old.sessions
            self._stats[name] = stat
        return stat

    def get_agent_stats(self) -> AgentStats:
        agents: dict[str, AgentStat] = {
            name: {
                "use_count": s.use_count,
                "sessions": s.sessions,
                "created_at": s.created_at,
                "last_used_at": s.last_used_at,
                "version": s.version,
                "foundry_name": s.foundry_name,
            }
            for name, s in sorted(self._stats.items())
        }
        return {"total_agents": len(agents), "agents": agents}

    async def cleanup_agent(self, name: str) -> CleanupResult:
        """End the agent's live sessions and delete it from the provider and the registry, if
        runner manages it in this environment; forget its handle and figures either way."""
        if self.env.protected:
            raise LifecycleError(
                f"agent.{name}: protected environment {self.env.name!r}: agents are removed by "
                "`runner apply` with confirmation, not by the runtime"
            )
        ended = 0
        for live in list(self._live.values()):
            if name in live.row.pins:
                self._end(live, "agent_cleanup")
                ended += 1
        self._refresh_applied()
        pin = self._applied_agents.get(name)
        foundry_name = pin.foundry_name if pin else (self.env.name_prefix + name)

        def delete() -> tuple[bool, str]:
            current = self.provider.get_agent(foundry_name)
            if current is None:
                return False, "not found in the provider"
            managed = current.metadata.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE
            if not managed or current.metadata.get(ENVIRONMENT_KEY, self.env.name) != self.env.name:
                return False, "not managed by runner in this environment; left alone"
            apply_id = f"runtime-{uuid.uuid4().hex[:12]}"
            with self.registry.lock(
                self.env.name, holder=f"runtime cleanup_agent({name})", timeout=LOCK_TIMEOUT_S
            ):
                self.provider.delete_agent(foundry_name)
                if self.registry.get(self.env.name, address_of("Agent", name)) is not None:
                    self.registry.record_deleted(
                        self.env.name, address_of("Agent", name), apply_id=apply_id
                    )
            return True, "deleted"

        try:
            deleted, reason = await asyncio.to_thread(delete)
        except Exception as exc:
            raise LifecycleError(f"agent.{name}: cleanup failed: {exc}") from exc
        self._applied_agents.pop(name, None)
        self._ensured.pop(name, None)
        self._stats.pop(name, None)
        self._data_version = self.store.data_version()
        self._emit("agent:cleaned-up", {"agent": name, "deleted": deleted, "reason": reason})
        return {"agent": name, "deleted": deleted, "reason": reason, "ended_sessions": ended}

    async def cleanup_all(self) -> CleanupAllResult:
        """`cleanup_agent` for every agent applied in this environment or used by this runtime;
        only agents runner manages are deleted."""
        self._refresh_applied()
        names = sorted(set(self._applied_agents) | set(self._stats))
        out: CleanupAllResult = {"deleted": [], "skipped": {}}
        for name in names:
            result = await self.cleanup_agent(name)
            if result["deleted"]:
                out["deleted"].append(name)
            else:
                out["skipped"][name] = result["reason"]
        return out

    # ------------------------------------------------------------ sessions

    def _check_auth(self, auth: AuthLike) -> AuthContext:
        ctx = AuthContext.of(auth)
        if CHAT_ACCESS not in ctx.permissions:
            raise PermissionDeniedError(
                f"user {ctx.user_id!r} lacks the {CHAT_ACCESS!r} permission needed for sessions"
            )
        return ctx

    async def create_agent_session(
        self,
        *,
        agent: str | None = None,
        team: str | None = None,
        auth: AuthLike,
        max_turns: int | None = None,
        idle_timeout: float | str | None = None,
        preferences: Mapping[str, Any] | None = None,
        priority: Literal["low", "medium", "high", "urgent"] | None = None,
        wait: float | None = None,
    ) -> Session:
        """Start a session with one agent or with a team (its primary member answers first).

        Pool slots are taken for every agent of the session; a full pool raises
        `PoolLimitError` (or waits up to `wait` seconds, served by `priority`).
        """
        ctx = self._check_auth(auth)
        if (agent is None) == (team is None):
            raise LifecycleError("a session is with exactly one of agent= or team=")
        if team is not None:
            team_spec = self._declared.teams.get(team)
            if team_spec is None:
                raise UnknownTeamError(f"team.{team} is neither applied nor declared")
            if (
                team_spec.workspace is not None
                and ctx.workspace_id is not None
                and team_spec.workspace != ctx.workspace_id
            ):
                raise PermissionDeniedError(
                    f"team.{team} belongs to workspace {team_spec.workspace!r}, not "
                    f"{ctx.workspace_id!r}"
                )
            members = tuple(dict.fromkeys(m.agent for m in team_spec.members))
            first = primary_member(team_spec)
            kind: Literal["agent", "team"] = "team"
            target = team
        else:
            assert agent is not None
            members = (agent,)
            first = agent
            kind = "agent"
            target = agent
        pins: dict[str, tuple[str, str]] = {}
        for name in members:
            pin = await self._pin(name)
            pins[name] = (pin.foundry_name, pin.version)
        pools = self.pools.pools_of(members)
        await self.pools.acquire(agents=members, pools=pools, wait=wait, priority=priority)
        session_id = _new_session_id()
        try:
            conversation_id = await self._call(
                self.provider.create_conversation,
                metadata={"runner-session": session_id, "runner-env": self.env.name},
            )
        except Exception as exc:
            self.pools.release(agents=members, pools=pools)
            raise LifecycleError(f"session could not start: the provider said: {exc}") from exc
        now = self.clock.now()
        idle = self._idle_seconds(idle_timeout)
        row = SessionRow(
            id=session_id,
            env=self.env.name,
            kind=kind,
            target=target,
            user_id=ctx.user_id,
            workspace_id=ctx.workspace_id,
            state="active",
            conversation_id=conversation_id,
            current_agent=first,
            pins=pins,
            created_at=now,
            last_activity_at=now,
            pools=pools,
            max_turns=max_turns if max_turns is not None else self._default_max_turns(first),
            idle_timeout=idle,
            preferences=dict(preferences or {}),
            priority=priority,
        )
        try:
            self.store.save(row)
        except Exception:
            self.pools.release(agents=members, pools=pools)
            raise
        self._live[session_id] = _Live(row=row, agents=members)
        self._current_load[first] = self._current_load.get(first, 0) + 1
        self._created += 1
        for name in members:
            stat = self._stat(name, _pin_of(pins[name]))
            stat.sessions += 1
            stat.use_count += 1
            stat.last_used_at = now
        subjects = self._session_subjects(row)
        self.monitor.record_session(subjects)
        self.monitor.evaluate_subjects(subjects, now)
        events = self.events
        if events.has_listeners("lifecycle:session_created"):
            self._emit(
                "lifecycle:session_created",
                {
                    "session_id": session_id,
                    "agent": first,
                    "team": team,
                    "user_id": ctx.user_id,
                    "workspace_id": ctx.workspace_id,
                    "conversation_id": conversation_id,
                    "versions": {n: p[1] for n, p in pins.items()},
                },
            )
        if events.has_listeners("session:state-changed"):
            self._emit(
                "session:state-changed",
                {"session_id": session_id, "from": None, "to": "active", "reason": "created"},
            )
        return Session(self, row, ctx)

    def _idle_seconds(self, idle_timeout: float | str | None) -> float | None:
        if idle_timeout is None:
            default = self.config.default_idle_timeout_s
            return default or None
        seconds = parse_duration(idle_timeout) if isinstance(idle_timeout, str) else idle_timeout
        return float(seconds) or None

    def _default_max_turns(self, agent: str) -> int | None:
        spec = self._declared.agents.get(agent)
        if spec is None:
            return None
        if spec.max_turns is not None:
            return spec.max_turns
        template = self._declared.templates.get(spec.template or "")
        return None if template is None else template.max_turns

    def _session_subjects(self, row: SessionRow) -> list[Subject]:
        subjects: list[Subject] = [("pool", p) for p in row.pools]
        subjects.append(("team", row.target) if row.kind == "team" else ("agent", row.target))
        return subjects

    def _active_sessions_of(self, subject: Subject) -> int:
        kind, name = subject
        if kind == "pool":
            return self.pools.active(name)
        if kind == "team":
            return sum(
                1
                for live in self._live.values()
                if live.row.kind == "team" and live.row.target == name
            )
        return sum(1 for live in self._live.values() if name in live.agents)

    def _visible(self, session_id: str, ctx: AuthContext) -> SessionRow:
        live = self._live.get(session_id)
        row = live.row if live is not None else self.store.load(session_id)
        if row is None or row.workspace_id != ctx.workspace_id or row.env != self.env.name:
            raise SessionNotFoundError(session_id)
        return row

    def get_session(self, session_id: str, *, auth: AuthLike) -> Session:
        """The session, if it exists and `auth` may see it (ended sessions too)."""
        ctx = self._check_auth(auth)
        row = self._visible(session_id, ctx)
        return Session(self, row, ctx)

    def list_sessions(self, *, auth: AuthLike) -> list[Session]:
        """The live sessions of `auth`'s workspace held by this runtime."""
        ctx = self._check_auth(auth)
        return [
            Session(self, live.row, ctx)
            for live in self._live.values()
            if live.row.workspace_id == ctx.workspace_id
        ]

    def _live_or_raise(self, session_id: str, ctx: AuthContext) -> _Live:
        row = self._visible(session_id, ctx)
        live = self._live.get(session_id)
        if live is None:
            if row.state == "ended":
                raise SessionStateError(session_id, "ended", f"it ended ({row.reason})")
            # Opened by another runtime after this one started: adopt it.
            live = self._live[session_id] = _Live(row=row, agents=tuple(row.pins))
            self.pools.occupy(agents=live.agents, pools=row.pools)
        return live

    async def send(
        self, session_id: str, text: str, *, auth: AuthLike, wait: float | None = None
    ) -> TurnReply:
        """`get_session(...).send(text)` in one call."""
        return await self._send(session_id, text, auth=self._check_auth(auth), wait=wait)

    async def _send(
        self, session_id: str, text: str, *, auth: AuthContext, wait: float | None
    ) -> TurnReply:
        if CHAT_ACCESS not in auth.permissions:
            self._check_auth(auth)
        live = self._live.get(session_id)
        if live is None or live.row.workspace_id != auth.workspace_id:
            live = self._live_or_raise(session_id, auth)
        lock = live.lock
        if lock is None:
            lock = live.lock = asyncio.Lock()
        async with lock:
            return await self._turn(live, text, wait)

    async def _turn(self, live: _Live, text: str, wait: float | None) -> TurnReply:
        row = live.row
        state = row.state
        if state == "ended":
            raise SessionStateError(row.id, "ended", f"it ended ({row.reason}); start a new one")
        if state == "paused":
            raise SessionStateError(row.id, "paused", "resume it before sending")
        if row.max_turns is not None and row.turns >= row.max_turns:
            self._end(live, "max_turns")
            return TurnReply(
                text="",
                agent=None,
                session_id=row.id,
                turn=row.turns,
                state="ended",
                reason="max_turns",
            )
        turn = row.turns + 1
        handoffs: tuple[Handoff, ...] = ()
        escalations = 0
        if row.pools and state != "awaiting_human":
            # Admission before routing, on every pool the session holds: a refused turn changes
            # nothing (no handoff half done). Tokens are charged to the answering agent's pools.
            await self.pools.admit_tokens(row.pools, wait=wait)
        if row.kind == "team":
            decision = await self._route(live, text, turn)
            handoffs = decision.handoffs
            escalations = self._apply_decision(live, decision)
            if row.state == "ended":
                return TurnReply(
                    text="",
                    agent=None,
                    session_id=row.id,
                    turn=row.turns,
                    state="ended",
                    handoffs=handoffs,
                    reason=row.reason,
                )
        answering = row.current_agent
        if answering is None or row.state == "awaiting_human":
            # Nobody answers: the message waits for a human (or the router decided so).
            row.turns = turn
            row.last_activity_at = self.clock.now()
            self._dirty.add(row.id)
            self._complete_handoffs(row, handoffs)
            self._record(
                row, None, 0.0, error=False, tokens=0, handoffs=handoffs, escalations=escalations
            )
            return TurnReply(
                text="",
                agent=None,
                session_id=row.id,
                turn=turn,
                state=row.state,
                handoffs=handoffs,
            )
        pin = row.pins.get(answering)
        if pin is None:  # a router chose an agent outside the session's members
            fresh = await self._pin(answering)
            pin = row.pins[answering] = (fresh.foundry_name, fresh.version)
        pools = self.pools.pools_for(answering)
        clock = self.clock
        started = clock.monotonic()
        try:
            reply: Reply = await self._call(
                self.provider.respond,
                conversation_id=row.conversation_id,
                agent_name=pin[0],
                agent_version=pin[1],
                text=text,
            )
        except Exception as exc:
            ms = (clock.monotonic() - started) * 1000.0
            row.last_activity_at = clock.now()
            self._dirty.add(row.id)
            self._record(
                row, answering, ms, error=True, tokens=0, handoffs=handoffs, escalations=escalations
            )
            for h in handoffs:
                self._emit(
                    "handoff:failed", {"session_id": row.id, **h.as_dict(), "error": str(exc)}
                )
            raise TurnFailedError(row.id, answering, exc) from exc
        ms = (clock.monotonic() - started) * 1000.0
        tokens = reply.input_tokens + reply.output_tokens
        row.turns = turn
        row.input_tokens += reply.input_tokens
        row.output_tokens += reply.output_tokens
        now = clock.now()
        row.last_activity_at = now
        self._dirty.add(row.id)
        if pools:
            self.pools.record_tokens(pools, tokens)
        self._record(
            row,
            answering,
            ms,
            error=False,
            tokens=tokens,
            handoffs=handoffs,
            escalations=escalations,
        )
        self._complete_handoffs(row, handoffs)
        stat = self._stats.get(answering)
        if stat is not None:
            stat.last_used_at = now
        return TurnReply(
            text=reply.text,
            agent=answering,
            session_id=row.id,
            turn=turn,
            state=row.state,
            agent_version=pin[1],
            foundry_name=pin[0],
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            response_time_ms=ms,
            handoffs=handoffs,
        )

    def _record(
        self,
        row: SessionRow,
        agent: str | None,
        ms: float,
        *,
        error: bool,
        tokens: int,
        handoffs: tuple[Handoff, ...],
        escalations: int,
    ) -> None:
        monitor = self.monitor
        if not monitor.enabled:
            return
        subjects: list[Subject] = []
        if agent is not None:
            subjects.append(("agent", agent))
            subjects.extend(("pool", p) for p in self.pools.pools_for(agent))
        if row.kind == "team":
            subjects.append(("team", row.target))
        monitor.record_turn(
            subjects,
            now=self.clock.now(),
            ms=ms,
            error=error,
            tokens=tokens,
            handoffs=len(handoffs),
            escalations=escalations,
        )

    async def _call(self, fn: Any, /, **kwargs: Any) -> Any:
        """Call a provider method: inline for the local provider, in a thread for remote ones."""
        if self.provider.remote:
            return await asyncio.to_thread(fn, **kwargs)
        return fn(**kwargs)

    async def _route(self, live: _Live, text: str, turn: int) -> RouteDecision:
        row = live.row
        router = self._routers.get(row.target)
        team = self._declared.teams.get(row.target)
        if router is None or team is None:
            return RouteDecision(agent=None if row.state == "awaiting_human" else row.current_agent)
        ctx = TurnContext(
            session_id=row.id,
            team=team,
            escalation_path=self._declared.escalation_paths.get(
                team.workflow.escalation_path or ""
            ),
            text=text,
            turn=turn,
            current_agent=row.current_agent,
            state=row.state,
            escalation=row.escalation,
            router_state=row.router_state,
            preferences=row.preferences,
            priority=row.priority,
            workload=self._workload,
        )
        try:
            result = router.route(ctx)
            if inspect.isawaitable(result):
                result = await result
            assert isinstance(result, RouteDecision)
            return result
        except Exception:
            log.exception("team.%s: router failed; the current member answers", row.target)
            return RouteDecision(agent=None if row.state == "awaiting_human" else row.current_agent)

    def _workload(self, agent: str) -> int:
        return self._current_load.get(agent, 0)

    def _set_current(self, live: _Live, agent: str | None) -> None:
        row = live.row
        old = row.current_agent
        if old == agent:
            return
        if old is not None:
            left = self._current_load.get(old, 0) - 1
            if left > 0:
                self._current_load[old] = left
            else:
                self._current_load.pop(old, None)
        if agent is not None:
            self._current_load[agent] = self._current_load.get(agent, 0) + 1
        row.current_agent = agent

    def _apply_decision(self, live: _Live, decision: RouteDecision) -> int:
        """Apply a router decision (see `runner.runtime.decisions`); escalations started."""
        row = live.row
        escalations = 0
        if decision.router_state is not None:
            row.router_state = dict(decision.router_state)
        if decision.clear_escalation:
            row.escalation = None
        if decision.escalation is not None:
            if row.escalation is None or dict(decision.escalation).get("level") != (
                row.escalation or {}
            ).get("level"):
                escalations = 1
            row.escalation = dict(decision.escalation)
        for h in decision.handoffs:
            self._emit("handoff:initiated", {"session_id": row.id, **h.as_dict()})
        agent = decision.agent
        if agent == HUMAN:
            agent = None
        self._set_current(live, agent)
        if decision.state == "ended":
            self._end(live, "router")
        elif decision.state is not None and decision.state != row.state:
            self._transition(live, decision.state, reason=None)
        for event_type, data in decision.events:
            self._emit(event_type, {"session_id": row.id, **data})
        self._dirty.add(row.id)
        return escalations

    def _complete_handoffs(self, row: SessionRow, handoffs: tuple[Handoff, ...]) -> None:
        for h in handoffs:
            self._emit("handoff:completed", {"session_id": row.id, **h.as_dict()})

    async def apply_decision(
        self, session_id: str, decision: RouteDecision, *, auth: AuthLike
    ) -> Session:
        """Apply a routing decision outside a turn (an approved escalation, an operator handoff).

        Handoffs complete at once (no agent answers here)."""
        ctx = self._check_auth(auth)
        live = self._live_or_raise(session_id, ctx)
        if live.row.state == "ended":
            raise SessionStateError(session_id, "ended", "it cannot change any more")
        self._apply_decision(live, decision)
        self._complete_handoffs(live.row, decision.handoffs)
        self.store.save_state(live.row)
        self._dirty.discard(session_id)
        return Session(self, live.row, ctx)

    # ------------------------------------------------------------ state changes

    def _transition(self, live: _Live, state: SessionState, *, reason: str | None) -> None:
        row = live.row
        old = row.state
        if old == state:
            return
        row.state = state
        if reason is not None:
            row.reason = reason
        self.store.save_state(row)
        self._dirty.discard(row.id)
        self._emit(
            "session:state-changed",
            {"session_id": row.id, "from": old, "to": state, "reason": reason},
        )

    def _end(self, live: _Live, reason: str) -> None:
        row = live.row
        if row.state == "ended":
            return
        now = self.clock.now()
        row.ended_at = now
        self._transition(live, "ended", reason=reason)
        self._live.pop(row.id, None)
        self._dirty.discard(row.id)
        self._set_current(live, None)  # the stored row keeps the last member
        self.pools.release(agents=live.agents, pools=row.pools)
        self._ended_reasons[reason] = self._ended_reasons.get(reason, 0) + 1
        self._ended_turns += row.turns
        self.monitor.evaluate_subjects(self._session_subjects(row), now)
        if self.events.has_listeners("lifecycle:session_ended"):
            self._emit(
                "lifecycle:session_ended",
                {"session_id": row.id, "reason": reason, "turns": row.turns},
            )

    async def end_agent_session(
        self, session_id: str, *, reason: str = "ended", auth: AuthLike
    ) -> None:
        """End a session (idempotent for an ended one); its pool slots are released."""
        ctx = self._check_auth(auth)
        row = self._visible(session_id, ctx)
        if row.state == "ended":
            return
        live = self._live_or_raise(session_id, ctx)
        self._end(live, reason)

    async def pause_session(self, session_id: str, *, auth: AuthLike) -> None:
        ctx = self._check_auth(auth)
        live = self._live_or_raise(session_id, ctx)
        if live.row.state not in ("active", "paused"):
            raise SessionStateError(session_id, live.row.state, "only an active session pauses")
        self._transition(live, "paused", reason=None)

    async def resume_session(self, session_id: str, *, auth: AuthLike) -> None:
        ctx = self._check_auth(auth)
        live = self._live_or_raise(session_id, ctx)
        row = live.row
        if row.state == "active":
            return
        if row.state == "ended":
            raise SessionStateError(session_id, "ended", "an ended session cannot resume")
        if row.current_agent is None:  # a human had it: the team's primary takes it back
            team = self._declared.teams.get(row.target) if row.kind == "team" else None
            self._set_current(live, primary_member(team) if team else row.target)
        self._transition(live, "active", reason=None)
        live.row.last_activity_at = self.clock.now()

    async def await_human(
        self, session_id: str, *, auth: AuthLike, reason: str | None = None
    ) -> None:
        """Hand the conversation to a human: no agent answers until `resume_session`."""
        ctx = self._check_auth(auth)
        live = self._live_or_raise(session_id, ctx)
        if live.row.state == "ended":
            raise SessionStateError(session_id, "ended", "it cannot wait for a human")
        self._transition(live, "awaiting_human", reason=reason)

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
        urgency: Literal["low", "medium", "high", "urgent"] = "medium",
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

    # ------------------------------------------------------------ monitoring callbacks

    def _on_alert(
        self, alert: Alert, value: float | None, status: Literal["firing", "resolved"]
    ) -> None:
        kind = "agent" if alert.agent else "team" if alert.team else "pool"
        subject = f"{kind}.{alert.agent or alert.team or alert.pool}"
        data = {
            "alert": alert.name,
            "subject": subject,
            "metric": alert.metric,
            "condition": alert.condition,
            "threshold": alert.threshold,
            "value": value,
            "severity": alert.severity,
            "window": alert.window,
            "status": status,
            "env": self.env.name,
        }
        self._emit("performance:alert" if status == "firing" else "performance:alert-cleared", data)
        if alert.notify:
            shown = "n/a" if value is None else f"{value:g}"
            verb = "FIRING" if status == "firing" else "resolved"
            summary = (
                f"[{alert.severity}] {verb}: alert.{alert.name} on {subject}: {alert.metric} "
                f"{shown} {alert.condition} {alert.threshold:g} (env {self.env.name})"
            )
            self.notifier.notify(list(alert.notify), Notification(summary=summary, body=data))

    def _on_channel_failure(self, channel: str, error: str) -> None:
        self._emit("channel:delivery-failed", {"channel": channel, "error": error})

    # ------------------------------------------------------------ insights, status, analytics

    def get_performance_insights(self, agent: str) -> Insights:
        now = self.clock.now()
        figures = subject_figures(self.monitor.get(("agent", agent)), now)
        insights, recs = recommend(
            figures, name=f"agent.{agent}", slow_ms=self.config.alert_threshold_ms
        )
        if not self.config.optimization_enabled:
            recs = []
        alerts = [a.name for a in self.monitor.breached() if a.agent == agent]
        if alerts:
            insights.append("alerts breached now: " + ", ".join(sorted(alerts)))
        return {
            "agent": agent,
            "figures": figures,
            "insights": insights,
            "optimizations": recs,
            "alerts": alerts,
        }

    @property
    def active_sessions(self) -> int:
        return len(self._live)

    def get_system_status(self) -> SystemStatus:
        components: dict[str, ComponentStatus] = {}
        components["provider"] = {
            "status": "healthy",
            "detail": f"{self.provider.name} ({'remote' if self.provider.remote else 'embedded'})",
        }
        components["config"] = (
            {"status": "degraded", "detail": "; ".join(self.config.problems)}
            if self.config.problems
            else {"status": "healthy"}
        )
        breached = self.monitor.breached()
        if any(a.severity == "critical" for a in breached):
            monitoring: ComponentStatus = {"status": "critical"}
        elif any(a.severity == "warning" for a in breached):
            monitoring = {"status": "degraded"}
        else:
            monitoring = {"status": "healthy"}
        monitoring["detail"] = (
            "breached: " + ", ".join(sorted(a.name for a in breached))
            if breached
            else ("monitoring on" if self.monitor.enabled else "monitoring off")
        )
        components["monitoring"] = monitoring
        worst = self.pools.worst_utilization()
        components["pools"] = {
            "status": "critical" if worst >= 1.0 else "degraded" if worst >= 0.9 else "healthy",
            "detail": f"highest utilisation {worst:.0%}",
        }
        failed = sum(s["failed"] for s in self.notifier.stats.values())
        components["channels"] = {
            "status": "degraded" if failed else "healthy",
            "detail": f"{failed} failed deliveries",
        }
        components["events"] = {
            "status": "degraded" if self.events.errors else "healthy",
            "detail": f"{self.events.errors} callback errors",
        }
        order = {"healthy": 0, "degraded": 1, "critical": 2}
        overall = max(
            (c.get("status", "healthy") for c in components.values()), key=order.__getitem__
        )
        return {
            "status": overall,
            "components": components,
            "active_sessions": len(self._live),
            "uptime_s": self.clock.monotonic() - self._started_mono,
        }

    def get_system_analytics(self) -> SystemAnalytics:
        now = self.clock.now()
        states: dict[str, int] = {"active": 0, "paused": 0, "awaiting_human": 0}
        for live in self._live.values():
            states[live.row.state] = states.get(live.row.state, 0) + 1
        ended = sum(self._ended_reasons.values())
        sessions = {
            **states,
            "created": self._created,
            "ended": ended,
            "ended_reasons": dict(self._ended_reasons),
            "average_turns_of_ended": (self._ended_turns / ended) if ended else None,
        }
        performance: dict[str, Any] = {"agents": {}, "teams": {}, "pools": {}}
        for (kind, name), series in sorted(self.monitor.series.items()):
            performance[kind + "s"][name] = subject_figures(series, now)
        performance["alerts"] = self.monitor.alert_states()
        pools: dict[str, PoolFigures] = {
            name: self.pools.figures(name, auto_scaling=self.config.auto_scaling_enabled)
            for name in self.pools.names()
        }
        resources = {
            "pools": pools,
            "defaults": {
                "session_limit_per_agent": self.config.default_session_limit,
                "memory_limit_mb": self.config.default_memory_limit_mb,
                "cpu_limit_percent": self.config.default_cpu_limit_percent,
                "memory_and_cpu": "reported only: Foundry-hosted prompt agents expose neither",
            },
            "channels": {name: dict(stats) for name, stats in self.notifier.stats.items()},
        }
        return {
            "sessions": sessions,
            "performance": performance,
            "resources": resources,
            "health": self.get_system_status(),
        }

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
        await self.events.drain()
        await self.notifier.drain()


def _pin_of(pin: tuple[str, str]) -> _Pin:
    return _Pin(pin[0], pin[1])


def _spec_from_body(resource: AppliedResource) -> Any:
    model = KINDS.get(resource.kind)
    if model is None or not resource.body:
        return None
    try:
        return model.model_validate(dict(resource.body))
    except ValidationError:
        log.warning("%s: applied body does not validate any more; ignored", resource.address)
        return None


def _load_specs(specs: SpecsArg) -> Project:
    if specs is None:
        return Project()
    if isinstance(specs, Project):
        return specs
    from runner.spec.loader import load_project

    paths: list[str | os.PathLike[str]] = (
        [specs] if isinstance(specs, str | os.PathLike) else list(specs)
    )
    result = load_project(paths)
    errors = [p for p in result.problems if p.severity == "error"]
    if errors:
        shown = "\n".join(p.format() for p in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise SpecProblemsError(f"the specs have {len(errors)} error(s):\n{shown}{more}")
    project: Project = result.project
    return project


def _environment(project: Project, name: str | None) -> Environment:
    from runner.spec.project import UnknownEnvironmentError

    try:
        return project.environment(name)
    except UnknownEnvironmentError as exc:
        if name == "local" or not project.environments:
            return Environment.model_validate(
                {"apiVersion": API_VERSION, "kind": "Environment", "name": name or "local"}
            )
        raise LifecycleError(str(exc)) from exc


__all__ = [
    "AgentHandle",
    "AuthContext",
    "Lifecycle",
    "Session",
    "TurnReply",
]
