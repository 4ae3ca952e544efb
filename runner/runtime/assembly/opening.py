"""Opening a runtime: from specs (or none) and an environment name to running parts.

Role: behind `Lifecycle.open`. `open_parts` runs in a worker thread (file and SQLite I/O): it
loads the specs, picks the environment, opens the registry and the runtime's stores on the same
file (the operator store on the session store's connection), builds the provider and the
`RuntimeParts`, and loads what the runtime runs with. The environment's `state:` chooses the
backend (`runner.state.backends`: SQLite file, or PostgreSQL shared by many hosts). Back on
the event loop the caller starts them (`RuntimeParts.start`). `Opener` is what `Lifecycle.open`
returns: awaitable, or an async context manager that closes what it opened.

Invariants:
  - Spec errors stop the opening with every error listed (`SpecProblemsError`); nothing is
    opened when they do.
  - An unknown environment is an error, except `local` (or a project without environments),
    which runs as a bare local environment.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from runner.providers.base import Provider, ProviderError
from runner.runtime.assembly.parts import RuntimeParts
from runner.runtime.clock import Clock
from runner.runtime.config import RuntimeConfig
from runner.runtime.errors import LifecycleError, SpecProblemsError
from runner.runtime.monitoring import Notifier
from runner.runtime.pools import SharedLimits, SharedPools
from runner.runtime.teams import RouterFactory
from runner.spec.models import API_VERSION, Environment
from runner.spec.project import Project
from runner.state.backends import RuntimeState, open_runtime_state, state_location
from runner.state.pg_database import StateUnavailableError

__all__ = ["Closable", "Opener", "SpecsArg", "environment_of", "load_specs", "open_parts"]

log = logging.getLogger("runner.runtime")

SpecsArg = Project | str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


class Closable(Protocol):
    async def close(self) -> None: ...


Opened = TypeVar("Opened", bound=Closable)


class Opener(Generic[Opened]):
    """`Lifecycle.open(...)`: `async with` it, or `await` it and `close()` yourself."""

    def __init__(self, factory: Callable[[], Awaitable[Opened]]) -> None:
        self._factory = factory
        self._opened: Opened | None = None

    def __await__(self) -> Generator[Any, None, Opened]:
        return self._open().__await__()

    async def _open(self) -> Opened:
        return await self._factory()

    async def __aenter__(self) -> Opened:
        self._opened = await self._open()
        return self._opened

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._opened is not None:
            await self._opened.close()


def open_parts(
    specs: SpecsArg,
    env_name: str | None,
    *,
    clock: Clock,
    registry_path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    provider: Provider | None,
    router_factory: RouterFactory | None,
    notifier: Notifier | None,
    notify_backoff: float,
) -> RuntimeParts:
    """The runtime parts of environment `env_name`, loaded (runs in a worker thread: I/O)."""
    from runner.paths import ProjectHome
    from runner.paths import registry_path as default_registry_path
    from runner.state.errors import state_file_errors

    project = load_specs(specs)
    env = environment_of(project, env_name)
    spec_path: str | os.PathLike[str] | None = None
    if isinstance(specs, str | os.PathLike):  # the state of the project the specs belong to
        spec_path = specs
    elif isinstance(specs, Sequence) and specs and not isinstance(specs, Project):
        spec_path = specs[0]
    path = Path(registry_path) if registry_path is not None else default_registry_path(spec_path)
    # whose environments these are in a shared (PostgreSQL) state: the environment's
    # `project:`, else the spec folder's identity (specs given in memory: `project:` only)
    owner = env.project or (
        ProjectHome.of(spec_path).default_project if spec_path is not None else ""
    )
    config = RuntimeConfig.from_environ(environ)
    redis_url = _redis_url(env, environ)  # before anything is opened: it may refuse
    try:
        location = state_location(env, environ=environ, default=path)
        with state_file_errors(path):  # a corrupt or unwritable file: one line naming it
            state = open_runtime_state(location, project=owner)
    except StateUnavailableError as exc:
        raise LifecycleError(str(exc)) from None
    if redis_url is None and location.url is not None:
        config = _per_process_limits(env, project, config)
    built = provider is None
    if provider is None:
        from runner.providers import build_provider

        try:
            provider = build_provider(env, environ=environ)
        except ProviderError as exc:
            state.close_database()
            raise LifecycleError(f"environment.{env.name}: {exc}") from exc
    parts = RuntimeParts(
        project=project,
        env=env,
        provider=provider,
        registry=state.registry,
        registry_changes=state.changes,  # SQLite: read on the runtime's own connection
        session_store=state.sessions,
        operator_store=state.operators,
        turn_log=state.turns,
        clock=clock,
        environ=environ,
        config=config,
        router_factory=router_factory,
        notifier=notifier,
        notify_backoff=notify_backoff,
        shared_limits=_shared_limits(env, redis_url, config, clock, location.path, state),
        redis_url=redis_url,
    )
    try:
        parts.reload(project)  # resolves function tools' implementations: may refuse
    except BaseException:
        parts.operators.close()
        state.sessions.close()
        state.registry.close()  # PostgreSQL: closes the pool last
        if built:
            provider.close()
        raise
    return parts


def _redis_url(env: Environment, environ: Mapping[str, str]) -> str | None:
    """The Environment's `redis:` URL with its `${VAR}` resolved (now, when it is used)."""
    if env.redis is None:
        return None
    from runner.spec.secrets import MissingSecretError, SecretSyntaxError, resolve

    try:
        url = resolve(env.redis, environ, address=f"environment.{env.name}")
    except (MissingSecretError, SecretSyntaxError) as exc:
        raise LifecycleError(f"environment.{env.name}: redis: {exc}") from None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise LifecycleError(
            f"environment.{env.name}: redis: the value is not a redis://, rediss:// or unix:// URL"
        )
    if importlib.util.find_spec("redis") is None:
        raise LifecycleError(
            f"environment.{env.name} declares redis: but redis-py is not installed: "
            "pip install 'runner[redis]'"
        )
    return url


def _per_process_limits(env: Environment, project: Project, config: RuntimeConfig) -> RuntimeConfig:
    """PostgreSQL state without Redis: the limits are this process's own. Said when the
    project's pools enforce any, naming the Environment: in the log and as a problem of the
    `config` component of `get_system_status()` (degraded)."""
    config = replace(config, pool_limits="process")
    if not any(
        pool.limits.max_concurrent_sessions or pool.limits.max_tokens_per_minute
        for pool in project.pools.values()
    ):
        return config
    problem = (
        f"environment.{env.name}: state: is PostgreSQL and there is no redis:, so pool limits "
        "(max_concurrent_sessions, max_tokens_per_minute) are counted by each runtime process "
        "alone: N processes may hold N times a limit. Declare redis: on the Environment to share "
        "them across processes and hosts"
    )
    log.warning("%s", problem)
    return replace(config, problems=(*config.problems, problem))


def _shared_limits(
    env: Environment,
    redis_url: str | None,
    config: RuntimeConfig,
    clock: Clock,
    path: Path | None,
    state: RuntimeState,
) -> SharedPools | None:
    """Where pool limits are held: Redis (every host), the SQLite registry file (this host's
    processes: the default without Redis), or None (this process's own counts:
    RUNNER_POOL_LIMITS=process, or PostgreSQL state without Redis)."""
    sessions = state.sessions
    if redis_url is not None:
        from runner.runtime.pools.redis_limits import RedisLimits

        limits: SharedLimits = RedisLimits(
            redis_url, namespace=env.name, lease_ttl=config.pool_lease_ttl_s
        )
    elif config.pool_limits == "host" and path is not None:
        from runner.runtime.pools.sqlite_limits import SqliteLimits
        from runner.state.sessions_sqlite import SqliteSessionStore

        limits = SqliteLimits(
            path,
            clock=clock,
            namespace=env.name,
            lease_ttl=config.pool_lease_ttl_s,
            connection=sessions.connection if isinstance(sessions, SqliteSessionStore) else None,
        )
    else:
        return None
    scope = "hosts" if redis_url is not None else "host"
    return SharedPools(
        limits,
        clock=clock,
        ttl=config.pool_lease_ttl_s,
        scope=scope,
        ended_elsewhere=lambda ids: [
            sid for sid, st in sessions.written_elsewhere(ids).items() if st == "ended"
        ],
    )


def load_specs(specs: SpecsArg) -> Project:
    """The project `Lifecycle.open` was given: loaded from paths, or empty for None."""
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


def environment_of(project: Project, name: str | None) -> Environment:
    """Environment `name` of the project (a bare `local` one when the project has none)."""
    from runner.spec.project import UnknownEnvironmentError

    try:
        return project.environment(name)
    except UnknownEnvironmentError as exc:
        if name == "local" or not project.environments:
            return Environment.model_validate(
                {"apiVersion": API_VERSION, "kind": "Environment", "name": name or "local"}
            )
        raise LifecycleError(str(exc)) from exc
