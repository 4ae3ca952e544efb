"""What differs between SQLite and PostgreSQL for the stores written once over SQL.

Role: the stores that run the same statements on both databases (`registry_sql`, the registry;
`sessions_sql`, the runtime's sessions; `operators_sql`, the operator records; `apply_lock`, the
apply lock's holder row) write each statement once, with `?` placeholders, and turn it into a
backend's dialect once with `SqlDialect.sql`; the few words that differ (the two-argument
maximum, locking the rows a write transaction read) are the dialect's fields. `SqlConnection`
is what a statement runs on, sqlite3's connection and psycopg's alike; `SqlRunner` is how a
store has its statements run: one at once, or batches in one transaction
(`sessions_sqlite.ConnectionRunner` on one SQLite connection, `pg_database.PgDatabase` on its
pool). `EnvKeys` is how a store's environment names are stored: as they are in a SQLite file
(`UNSCOPED`, one project per file), as `PROJECT#ENV` in a shared PostgreSQL database
(`runner.state.pg_database.PgDatabase` is one, with another project's rows invisible).

Invariants: a statement given to `SqlDialect.sql` has no `?` or `%` of its own (no string literal
with one); a condition from `EnvKeys.owns_sql` is already in the backend's dialect and is
spliced into a statement before or after `sql` (its placeholders are not `?`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "UNSCOPED",
    "EnvKeys",
    "SqlConnection",
    "SqlCursor",
    "SqlDialect",
    "SqlRunner",
    "Unscoped",
]


@dataclass(frozen=True, slots=True)
class SqlDialect:
    """The spelling of one database: its placeholder, its two-argument maximum, and how a read
    in a write transaction locks the rows it read."""

    name: str
    placeholder: str  # what stands for a parameter: `?` (sqlite3) or `%s` (psycopg)
    greatest: str  # the larger of two values: SQLite's scalar `MAX`, PostgreSQL's `GREATEST`
    for_update: str  # appended to such a read: "" in SQLite (`BEGIN IMMEDIATE` holds the file)

    def sql(self, statement: str) -> str:
        """`statement`, written with `?` placeholders, in this dialect."""
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)


SQLITE = SqlDialect(name="sqlite", placeholder="?", greatest="MAX", for_update="")
POSTGRESQL = SqlDialect(
    name="postgresql", placeholder="%s", greatest="GREATEST", for_update=" FOR UPDATE"
)


class SqlCursor(Protocol):
    """The rows of a statement run: sqlite3's cursor and psycopg's alike."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class SqlConnection(Protocol):
    """A connection (or open transaction) statements run on: sqlite3's and psycopg's alike."""

    def execute(self, sql: str, params: Sequence[Any], /) -> SqlCursor: ...


class SqlRunner(Protocol):
    """How a store's statements (in the runner's dialect) reach its database."""

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement at once (its own transaction); how many rows it changed."""
        ...

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows one statement returns (a query, or a write `RETURNING` some)."""
        ...

    def execute_batches(self, batches: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Run each statement over each of its rows of parameters, all in one transaction."""
        ...


class EnvKeys(Protocol):
    """How a store's environment names are stored, and which stored rows are its own."""

    def env_key(self, env: str) -> str:
        """The stored key of environment `env`."""
        ...

    def env_name(self, key: str) -> str:
        """The environment name of a stored key."""
        ...

    def owns_sql(self, column: str = "env") -> tuple[str, tuple[str, ...]]:
        """A condition on `column` true for this store's own rows only, and its parameters."""
        ...


class Unscoped:
    """Environment names stored as they are, every row one's own (a SQLite file)."""

    def env_key(self, env: str) -> str:
        return env

    def env_name(self, key: str) -> str:
        return key

    def owns_sql(self, column: str = "env") -> tuple[str, tuple[str, ...]]:
        return "1 = 1", ()


UNSCOPED = Unscoped()
