"""The PostgreSQL state database: a psycopg 3 connection pool, and write transactions on it.

Role in the flow: an Environment's `state: postgresql://...` (`runner.state.backends`) opens one
`PgDatabase`; the registry (`pg_registry`), the runtime's sessions (`pg_sessions`) and operator
records (`pg_operators`) run their statements on the connections it lends (the stores written
once over SQL through `execute`, `fetch` and `execute_batches`: it is their `SqlRunner`). The
schema comes up to its newest version on open (`pg_schema.migrate`, under an advisory lock).

Invariants:
  - psycopg (and psycopg_pool) are imported here and in the other `pg_*` modules only, lazily:
    the `postgres` extra is needed only by someone who names a PostgreSQL state.
  - Connections are autocommit; `write()` is one transaction (committed on exit, rolled back on
    an exception). A connection that broke is discarded by the pool, not reused.
  - `durable=False` (the runtime's stores) commits with `synchronous_commit = off`: a commit
    survives the runner process dying at any moment, not the database server losing power in
    the next fraction of a second, the same promise as the SQLite stores' `synchronous=NORMAL`,
    at a fraction of the cost of a disk flush per turn. The CLI's registry stays durable.
  - The URL (which may carry a password) is never in a message: `StateUnavailableError` names
    the server with its user information scrubbed (`runner.errors.scrub_userinfo`).
  - A shared database holds many projects: with `project`, every environment name the stores
    are given is stored under the key `PROJECT#ENV` (`env_key`; `#` is not allowed in a project
    identity, so keys never collide) and read back as the bare name (`env_name`), so project
    A's `prod` and project B's `prod` never see or touch each other's rows or apply lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runner.errors import UserError, scrub_userinfo

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PROJECT_SEPARATOR", "PgDatabase", "StateUnavailableError", "describe_url"]

PROJECT_SEPARATOR = "#"
"""Between the project and the environment in a stored key (a project identity has no `#`)."""

# The pool reports reconnection attempts by logging; an application that configured logging
# sees them, a CLI run does not print them (its error says what failed, once).
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


def _relaxed_commits(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET synchronous_commit = off")


class StateUnavailableError(UserError):
    """The state database cannot be reached or used; the message says which and what to do
    (a user-facing error: no traceback, the URL scrubbed)."""


def describe_url(url: str) -> str:
    """The URL as messages may show it: no password, no user."""
    return scrub_userinfo(url.split("?", 1)[0])


class PgDatabase:
    """A pool of connections to one PostgreSQL database (module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 10.0,
        durable: bool = True,
        project: str = "",
    ) -> None:
        self.project = project
        self._prefix = f"{project}{PROJECT_SEPARATOR}" if project else ""
        try:
            import psycopg  # noqa: F401
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StateUnavailableError(
                "a postgresql:// state needs the 'postgres' extra: pip install 'runner[postgres]'"
            ) from None
        self.url = url
        self.where = describe_url(url)
        self._timeout = timeout
        # Reach the server once first: a wrong URL or a stopped server is one clear error at
        # once, not a pool retrying in the background; the schema is brought up to date on it.
        from runner.state.pg_schema import migrate

        probe = self.dedicated()
        try:
            migrate(probe, where=self.where)
        finally:
            probe.close()
        self.pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=None if durable else _relaxed_commits,
            open=False,
            timeout=timeout,
            name="runner-state",
        )
        try:
            self.pool.open(wait=True, timeout=timeout)
        except Exception as exc:
            self.pool.close()
            raise StateUnavailableError(
                f"cannot reach the state database {self.where}: "
                f"{scrub_userinfo(str(exc)) or type(exc).__name__}"
            ) from None

    def env_key(self, env: str) -> str:
        """The stored key of environment `env` of this database's project."""
        return self._prefix + env

    def env_name(self, key: str) -> str:
        """The environment name of a stored key (the key itself when it has no project)."""
        return key[len(self._prefix) :] if self._prefix and key.startswith(self._prefix) else key

    def owns_key(self, key: str) -> bool:
        """Whether a stored key is this project's (unscoped: keys without a project)."""
        if self._prefix:
            return key.startswith(self._prefix)
        return PROJECT_SEPARATOR not in key

    def owns_sql(self, column: str = "env") -> tuple[str, tuple[str, ...]]:
        """`owns_key` as a SQL condition on `column`, and its parameters."""
        if self._prefix:
            return f"starts_with({column}, %s)", (self._prefix,)
        return f"strpos({column}, %s) = 0", (PROJECT_SEPARATOR,)

    def dedicated(self) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool (an advisory lock lives and dies with it)."""
        import psycopg

        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self._timeout))
            )
        except psycopg.Error as exc:
            first = scrub_userinfo(str(exc)).strip().splitlines()[:1]
            raise StateUnavailableError(
                f"cannot reach the state database {self.where}: "
                f"{first[0] if first else type(exc).__name__}; check that the server runs and "
                "the URL (state: in the Environment) is right"
            ) from None

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit) for one call; the server going away mid-way is a
        `StateUnavailableError` (nothing half-written: each statement or transaction is
        atomic)."""
        with self._unavailable_as_error(), self.pool.connection() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[psycopg.Connection[Any]]:
        """One write transaction on a pooled connection."""
        with self._unavailable_as_error(), self.pool.connection() as conn, conn.transaction():
            yield conn

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement on a pooled connection (its own transaction); the rows it changed."""
        with self.connect() as conn:
            return conn.execute(sql, params).rowcount

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows one statement returns, on a pooled connection."""
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def execute_batches(self, batches: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Run each statement over each of its rows of parameters, in one write transaction."""
        with self.write() as conn, conn.cursor() as cur:
            for sql, rows in batches:
                cur.executemany(sql, rows)

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.OperationalError, PoolTimeout) as exc:
            first = scrub_userinfo(str(exc)).strip().splitlines()[:1]
            raise StateUnavailableError(
                f"the state database {self.where} is not answering "
                f"({first[0] if first else type(exc).__name__}); nothing was recorded, "
                "try again when it is back"
            ) from None

    def close(self) -> None:
        self.pool.close()
