"""The state file's schema in SQLite, as numbered migrations applied under the file's write lock.

Role in the flow: every SQLite store of `runner.state` (the registry, the runtime's sessions,
the operator records) calls `migrate` on the connection it opens; the file then holds every
table at the newest version, whichever store opened it first. The versions, the tables both
backends hold and the loop applying what is pending are `runner.state.schema_sql`'s (written
once, in SQLite's words here); this module says what is SQLite's: the file's write lock, which
versions a file has, adding a column unless there, and the tables only a file holds.

Migrations:
  1  baseline: the registry (applied resources, journal, apply locks) and the runtime's tables
     (`rt_` sessions and session configurations, human queue, transcript, availability,
     escalation history). Written idempotently (`IF NOT EXISTS`, missing columns added), so a
     file made by a runner from before migrations existed comes up to date with its data.
  2  session leases: which instance holds a session (`lease_owner`) and until when
     (`lease_until`, wall-clock seconds), and which instance wrote it last (`written_by`), so
     several processes on one file never run a turn of one session at once, nor end or rewrite
     a session another holds, nor act on a stale copy (`runner.state.sessions`).
  3  project ownership: which runner project owns each environment (`registry_projects`,
     `Registry.claim_project`); a file that already has the table keeps its rows.

  4  the turn log (`rt_turns`: when, who answered, how long, tokens, cost, failed) that
     `runner report` reads, and an index of sessions by start.
  5  project scopes: nothing changes in a SQLite file. A state file belongs to one project per
     environment (the refusal of migration 3 stands: a file applied from one project refuses
     another); only PostgreSQL, the database many projects share, keys what it stores by
     (project, environment) (`runner.state.pg_schema`). Recorded so both backends count the
     same versions.
  6  pool limits of the processes of one host (`runner.runtime.pools.sqlite_limits`, the
     default without `redis:`): `pool_holders` (a session's lease on a slot), `pool_waiters`
     (the waiting lines by priority), `pool_tokens` (the rows of each pool's 60 s token
     window). Created `IF NOT EXISTS`: a file where a runner from before created them outside
     the migrations keeps its rows.

Invariants: applied versions are rows of `runner_migrations` (version, name, applied_at); all
pending migrations run in one `BEGIN IMMEDIATE` transaction (SQLite's DDL is transactional: a
failed migration leaves the file as it was), so two processes opening a fresh file together
apply each migration once. A file whose newest version is above `LATEST` was written by a newer
runner: `SchemaTooNewError`, nothing touched.
"""

from __future__ import annotations

import sqlite3

from runner.sqlitefile import prepare_database
from runner.state.schema_sql import (
    ADDED_COLUMNS,
    BASELINE,
    LATEST,
    LEASE_COLUMNS,
    PROJECTS,
    SQLITE_DDL,
    TURNS,
    apply_pending,
    migrations,
    pending,
)

__all__ = ["MIGRATIONS", "applied_versions", "migrate"]

_WORDS = SQLITE_DDL

# The holder's start time, told apart from a reused pid (`runner.state.processes`): a SQLite
# lock holder is judged dead on this host; added before the write fence, as files have it.
_HOLDER_STARTED = (("pid_started", "TEXT"),)


def _add_missing(
    conn: sqlite3.Connection, table: str, columns: tuple[tuple[str, str], ...]
) -> None:
    have = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns:
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {_WORDS.ddl(declaration)}")


def _run(conn: sqlite3.Connection, text: str) -> None:
    for statement in _WORDS.statements(text):
        conn.execute(statement)


def _baseline(conn: sqlite3.Connection) -> None:
    """Written idempotently, so a file made before migrations comes up to date with its data."""
    _run(conn, BASELINE)
    _add_missing(conn, "registry_locks", _HOLDER_STARTED + ADDED_COLUMNS["registry_locks"])
    _add_missing(conn, "rt_sessions", ADDED_COLUMNS["rt_sessions"])


def _session_leases(conn: sqlite3.Connection) -> None:
    _add_missing(conn, "rt_sessions", LEASE_COLUMNS)


def _project_ownership(conn: sqlite3.Connection) -> None:
    _run(conn, PROJECTS)


def _turn_log(conn: sqlite3.Connection) -> None:
    _run(conn, TURNS)


def _project_scopes(conn: sqlite3.Connection) -> None:
    """Nothing to change: a SQLite file keeps one project per environment (module docstring)."""


_POOL_LIMITS = """
CREATE TABLE IF NOT EXISTS pool_holders (
    pool TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (pool, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pool_waiters (
    pool TEXT NOT NULL,
    holder TEXT NOT NULL,
    score REAL NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (pool, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pool_tokens (
    pool TEXT NOT NULL,
    id TEXT NOT NULL,
    at REAL NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (pool, id)
);
CREATE INDEX IF NOT EXISTS pool_tokens_at ON pool_tokens (pool, at)
"""


def _pool_limits(conn: sqlite3.Connection) -> None:
    _run(conn, _POOL_LIMITS)


MIGRATIONS = migrations(
    {
        1: _baseline,
        2: _session_leases,
        3: _project_ownership,
        4: _turn_log,
        5: _project_scopes,
        6: _pool_limits,
    }
)


def applied_versions(conn: sqlite3.Connection) -> list[int]:
    """The versions applied to the file, in order (empty for a fresh or pre-migration file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runner_migrations'"
    ).fetchone()
    if exists is None:
        return []
    return [int(r[0]) for r in conn.execute("SELECT version FROM runner_migrations ORDER BY 1")]


def migrate(conn: sqlite3.Connection, *, target: int = LATEST, where: str = "state") -> int:
    """Apply every pending migration up to `target` (autocommit connection); the version the file
    is at after it. Cheap when the file is up to date (one read)."""
    prepare_database(conn, "")  # WAL, race-safe against other openers
    newest = max(applied_versions(conn), default=0)
    if not pending(newest, target, where=where):
        return newest
    conn.execute("BEGIN IMMEDIATE")
    try:
        apply_pending(conn, MIGRATIONS, target=target, words=_WORDS)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return max(applied_versions(conn), default=0)
