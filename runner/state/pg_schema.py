"""The state schema in PostgreSQL, as numbered migrations applied under an advisory lock.

Role in the flow: `PgDatabase` (`runner.state.pg_database`) calls `migrate` when it opens. The
versions, their meaning and the tables both backends hold (1 baseline, 2 session leases, 3
project ownership, 4 turn log) are `runner.state.schema_sql`'s, written once and spelled here
for PostgreSQL: timestamps are double precision seconds, JSON is stored as the same text the
SQLite backend stores, journal and transcript ids are identity columns, the apply lock's holder
names its OS user. This module says what is PostgreSQL's: the advisory lock migrations run
under, which versions a database has, and migration 5.

5 project scopes (PostgreSQL only; a no-op on SQLite): a database many projects share keys
every environment by project, as `PROJECT#ENV` (`PgDatabase.env_key`; `#` is not allowed in a
project identity). The migration adopts what is there: each row of an environment recorded in
`registry_projects` (migration 3) moves under its owner's key, so the project that applied it
goes on seeing it, and another project using the same environment name starts empty beside
it. Rows of an environment no project ever claimed keep the bare name.

6 pool limits: nothing changes in PostgreSQL. The SQLite file holds the pool limits of one
host's processes (`runner.state.sqlite_schema` 6); limits across hosts are Redis's (`redis:`
on the Environment), and without it they are each process's own (`runner.runtime.assembly`
says so when the runtime opens). Recorded so both backends count the same versions.

Invariants: applied versions are rows of `runner_migrations`; pending migrations run in one
transaction that first takes a transaction-level advisory lock (`pg_advisory_xact_lock`), so
any number of processes opening one database together apply each migration once, and a failed
migration leaves the database as it was (PostgreSQL's DDL is transactional). A database whose
newest version is above `LATEST` was written by a newer runner: `SchemaTooNewError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.state.schema_sql import (
    BASELINE,
    LATEST,
    LEASE_COLUMNS,
    POSTGRESQL_DDL,
    PROJECTS,
    TURNS,
    apply_pending,
    migrations,
    pending,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATION_LOCK_KEY", "PG_MIGRATIONS", "applied_versions", "migrate"]

MIGRATION_LOCK_KEY = 0x72756E6E6572  # "runner": the advisory lock migrations run under

_WORDS = POSTGRESQL_DDL

_SCOPED_TABLES = (  # every table keyed by environment (`registry_projects`, which says whose, last)
    "registry_resources",
    "registry_journal",
    "registry_locks",
    "rt_sessions",
    "rt_hq_items",
    "rt_hq_availability",
    "rt_esc_escalations",
    "rt_turns",
)
_PROJECT_SCOPES = "".join(
    f"UPDATE {table} AS t SET env = p.project || '#' || t.env FROM registry_projects AS p "
    "WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;\n"
    for table in _SCOPED_TABLES
) + (
    "UPDATE registry_projects SET env = project || '#' || env "
    "WHERE project <> '' AND strpos(env, '#') = 0;\n"
)


def _run(text: str) -> Callable[[psycopg.Connection[Any]], None]:
    """A migration step running the statements of `text`."""

    def step(conn: psycopg.Connection[Any]) -> None:
        for statement in _WORDS.statements(text):
            conn.execute(statement)

    return step


def _session_leases(conn: psycopg.Connection[Any]) -> None:
    for name, declaration in LEASE_COLUMNS:
        conn.execute(
            f"ALTER TABLE rt_sessions ADD COLUMN IF NOT EXISTS {name} {_WORDS.ddl(declaration)}"
        )


def _pool_limits(conn: psycopg.Connection[Any]) -> None:
    """Nothing to change: pool limits are a SQLite file's (module docstring)."""


PG_MIGRATIONS = migrations(
    {
        1: _run(BASELINE),
        2: _session_leases,
        3: _run(PROJECTS),
        4: _run(TURNS),
        5: _run(_PROJECT_SCOPES),
        6: _pool_limits,
    }
)


def applied_versions(conn: psycopg.Connection[Any]) -> list[int]:
    """The versions applied to the database, in order (empty for a fresh one)."""
    found = conn.execute("SELECT to_regclass('runner_migrations')").fetchone()
    if found is None or found[0] is None:
        return []
    return [int(r[0]) for r in conn.execute("SELECT version FROM runner_migrations ORDER BY 1")]


def migrate(conn: psycopg.Connection[Any], *, target: int = LATEST, where: str = "state") -> int:
    """Apply every pending migration up to `target` (autocommit connection); the version the
    database is at after it."""
    newest = max(applied_versions(conn), default=0)
    if not pending(newest, target, where=where):
        return newest
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        apply_pending(conn, PG_MIGRATIONS, target=target, words=_WORDS)
    return max(applied_versions(conn), default=0)
