"""Which state backend an Environment uses, from its `state:` URL, and opening it.

Role in the flow: the CLI (`runner.cli._workspace.open_registry`) and the runtime's composition
root (`runner.runtime.assembly.opening`) ask here for the registry, and the runtime also for its
session and operator stores, of an environment:

  state: unset, or sqlite:///PATH   the embedded SQLite file (`.runner/state.db` by default)
  state: postgresql://...           PostgreSQL (psycopg 3 pool; `postgres://` too), shared by
                                    any number of processes on any number of hosts

Which projects share it:
  - A PostgreSQL database is shared: any number of runner projects may use it, each with
    environments of any name. Every store opened with `project` keys what it stores by
    (project, environment) (`PgDatabase.env_key`), so project A's `prod` and project B's
    `prod` in one database never see or touch each other's resources, journal, apply lock,
    sessions, operator records or turn log.
  - A SQLite file belongs to one project folder: an environment in it is applied by one
    project, and another project driving it is refused (`ProjectMismatchError`; `project` is
    not used), even when two folders name the same file in `state: sqlite:///...`.

Invariants:
  - A `${VAR}` reference in the URL is resolved here, the moment the state is opened, from the
    given environment; the resolved URL is never stored, printed or logged: every message
    names the server with its user information scrubbed (`runner.errors.scrub_userinfo`).
  - A malformed or unreachable state is a `StateUnavailableError` naming the environment and
    what to do, never a traceback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import scrub_userinfo
from runner.state.pg_database import StateUnavailableError, describe_url

if TYPE_CHECKING:
    from runner.spec.models import Environment
    from runner.state.operators import OperatorStore
    from runner.state.pg_registry import PostgresRegistry
    from runner.state.sessions import SessionStore
    from runner.state.sqlite import SqliteRegistry
    from runner.state.turn_log import TurnLog

__all__ = [
    "REGISTRY_POLL_S",
    "RegistryChangeCounter",
    "RuntimeState",
    "StateLocation",
    "open_registry",
    "open_runtime_state",
    "state_location",
]

_PG_SCHEMES = ("postgresql://", "postgres://")
REGISTRY_POLL_S = 0.5
"""PostgreSQL: how stale the runtime's view of what others applied may be (new sessions)."""


@dataclass(frozen=True)
class StateLocation:
    """Where an environment's state lives: `path` (SQLite) or `url` (PostgreSQL, resolved)."""

    path: Path | None = None
    url: str | None = None

    @property
    def described(self) -> str:
        return str(self.path) if self.url is None else describe_url(self.url)


def state_location(
    env: Environment | None, *, environ: Mapping[str, str] | None = None, default: Path
) -> StateLocation:
    """The environment's state: its `state:` URL resolved, or the SQLite file `default`."""
    raw = None if env is None else env.state
    if not raw:
        return StateLocation(path=default)
    from runner.spec.secrets import MissingSecretError, SecretSyntaxError, resolve

    where = f"environment.{env.name}" if env is not None else "state"
    try:
        url = resolve(raw, os.environ if environ is None else environ, address=where)
    except (MissingSecretError, SecretSyntaxError) as exc:
        raise StateUnavailableError(f"{where}: state: {exc}") from None
    if url.startswith(_PG_SCHEMES):
        return StateLocation(url=url)
    if url.startswith("sqlite:///"):
        return StateLocation(path=Path(url[len("sqlite:///") :]))
    raise StateUnavailableError(
        f"{where}: state: {scrub_userinfo(url)!r} is not a state URL; write "
        "postgresql://USER@HOST:PORT/DATABASE or sqlite:///PATH (or leave it out)"
    )


def open_registry(
    location: StateLocation,
    *,
    on_notice: Callable[[str], None] | None = None,
    project: str = "",
) -> SqliteRegistry | PostgresRegistry:
    """The registry at `location` (its schema brought to the newest version); in a PostgreSQL
    database, `project`'s environments (module docstring)."""
    if location.url is not None:
        from runner.state.pg_registry import PostgresRegistry

        return PostgresRegistry(location.url, on_notice=on_notice, project=project)
    from runner.state.sqlite import SqliteRegistry

    assert location.path is not None
    return SqliteRegistry(location.path, on_notice=on_notice)


@dataclass
class RuntimeState:
    """What a runtime keeps durable, opened together: the registry, sessions, operator records,
    the turn log, and the counter that moves when someone else changed the registry."""

    registry: SqliteRegistry | PostgresRegistry
    sessions: SessionStore
    operators: OperatorStore
    turns: TurnLog
    changes: RegistryChangeCounter
    close_database: Callable[[], None]


class RegistryChangeCounter:
    """`data_version()` of the backend (a `RegistryChanges` for the runtime). With `max_age`,
    a value read less than `max_age` seconds ago is reused (PostgreSQL: a round trip per new
    session saved; what another host applies is seen within `max_age`)."""

    def __init__(self, read: Callable[[], int], *, max_age: float = 0.0) -> None:
        self._read = read
        self._max_age = max_age
        self._value = 0
        self._read_at = float("-inf")

    def data_version(self) -> int:
        if self._max_age <= 0:
            return self._read()
        now = time.monotonic()
        if now - self._read_at >= self._max_age:
            self._value = self._read()
            self._read_at = now
        return self._value


def open_runtime_state(
    location: StateLocation, *, owner: str | None = None, project: str = ""
) -> RuntimeState:
    """Every store of a runtime at `location` (one pool, or one file, shared by all); in a
    PostgreSQL database, `project`'s environments (module docstring)."""
    if location.url is not None:
        from runner.state.pg_database import PgDatabase
        from runner.state.pg_operators import PostgresOperatorStore
        from runner.state.pg_registry import PostgresRegistry
        from runner.state.pg_sessions import PostgresSessionStore
        from runner.state.pg_turn_log import PostgresTurnLog

        db = PgDatabase(
            location.url, durable=False, project=project
        )  # as SQLite's synchronous=NORMAL
        registry = PostgresRegistry(db, owns_database=True)  # closed last by the runtime
        return RuntimeState(
            registry=registry,
            sessions=PostgresSessionStore(db, owner=owner),
            operators=PostgresOperatorStore(db),
            turns=PostgresTurnLog(db),
            changes=RegistryChangeCounter(registry.data_version, max_age=REGISTRY_POLL_S),
            close_database=db.close,
        )
    from runner.state.operators_sqlite import SqliteOperatorStore
    from runner.state.sessions_sqlite import SqliteSessionStore
    from runner.state.sqlite import SqliteRegistry
    from runner.state.turn_log_sqlite import SqliteTurnLog

    assert location.path is not None
    sqlite_registry = SqliteRegistry(location.path)
    sessions = SqliteSessionStore(location.path, owner=owner)
    return RuntimeState(
        registry=sqlite_registry,
        sessions=sessions,
        operators=SqliteOperatorStore(location.path, connection=sessions.connection),
        turns=SqliteTurnLog(location.path, connection=sessions.connection),
        changes=RegistryChangeCounter(sessions.data_version),
        close_database=lambda: None,
    )
