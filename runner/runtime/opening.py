"""Opening a runtime: from specs (or none) and an environment name to a running `Lifecycle`.

Role: behind `Lifecycle.open`. In a worker thread (file and SQLite I/O): load the specs,
pick the environment, open the registry and the session store on the same file, build the
provider, construct the `Lifecycle` and load what it runs with (`runner.runtime.applied`).
Back on the event loop: restore the open sessions, attach the operators and start the
background pass (write-behind flush, idle expiry, alert windows).

Invariants:
  - Spec errors stop the opening with every error listed (`SpecProblemsError`); nothing is
    opened when they do.
  - An unknown environment is an error, except `local` (or a project without environments),
    which runs as a bare local environment.
  - `Opener` closes the runtime it opened when used as `async with`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from runner.providers.base import Provider, ProviderError
from runner.runtime.clock import Clock
from runner.runtime.config import RuntimeConfig
from runner.runtime.errors import LifecycleError, SpecProblemsError
from runner.runtime.monitoring import Notifier
from runner.runtime.teams import RouterFactory
from runner.spec.models import API_VERSION, Environment
from runner.spec.project import Project
from runner.state.operators_sqlite import SqliteOperatorStore
from runner.state.sessions_sqlite import SqliteSessionStore

if TYPE_CHECKING:
    from runner.runtime.lifecycle import Lifecycle

__all__ = ["Opener", "SpecsArg", "build_lifecycle", "environment_of", "load_specs"]

SpecsArg = Project | str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


class Opener:
    """`Lifecycle.open(...)`: `async with` it, or `await` it and `close()` yourself."""

    def __init__(self, factory: Callable[[], Awaitable[Lifecycle]]) -> None:
        self._factory = factory
        self._lc: Lifecycle | None = None

    def __await__(self) -> Generator[Any, None, Lifecycle]:
        return self._open().__await__()

    async def _open(self) -> Lifecycle:
        return await self._factory()

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


def build_lifecycle(
    cls: type[Lifecycle],
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
) -> Lifecycle:
    """The Lifecycle of environment `env_name`, loaded (runs in a worker thread: file I/O)."""
    from runner.paths import registry_path as default_registry_path
    from runner.state.sqlite import SqliteRegistry

    project = load_specs(specs)
    env = environment_of(project, env_name)
    path = Path(registry_path) if registry_path is not None else default_registry_path()
    registry = SqliteRegistry(path)
    if provider is None:
        from runner.providers import build_provider

        try:
            provider = build_provider(env, environ=environ)
        except ProviderError as exc:
            raise LifecycleError(f"environment.{env.name}: {exc}") from exc
    store = SqliteSessionStore(path)
    lc = cls(
        project=project,
        env=env,
        provider=provider,
        registry=registry,
        store=store,
        operator_store=SqliteOperatorStore(path, connection=store.connection),
        clock=clock,
        environ=environ,
        config=RuntimeConfig.from_environ(environ),
        router_factory=router_factory,
        notifier=notifier,
        notify_backoff=notify_backoff,
    )
    lc.reload(project)
    return lc


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
