"""The state file's schema in SQLite, as numbered migrations applied under the file's write lock.

Role in the flow: every SQLite store of `runner.state` (the registry, the runtime's sessions,
the operator records) calls `migrate` on the connection it opens; the file then holds every
table at the newest version, whichever store opened it first. `runner.state.pg_schema` is the
same list for PostgreSQL (same versions, same meaning).

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
import time
from collections.abc import Callable

from runner.sqlitefile import prepare_database

__all__ = ["LATEST", "MIGRATIONS", "SchemaTooNewError", "applied_versions", "migrate"]


class SchemaTooNewError(RuntimeError):
    def __init__(self, where: str, found: int, latest: int) -> None:
        super().__init__(
            f"{where}: the state schema is at version {found}, newer than this runner knows "
            f"({latest}); upgrade runner to use it"
        )


_BASELINE = """
CREATE TABLE IF NOT EXISTS registry_resources (
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    foundry_name TEXT,
    foundry_version TEXT,
    applied_at REAL NOT NULL,
    PRIMARY KEY (env, address)
);
CREATE TABLE IF NOT EXISTS registry_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    hash TEXT,
    foundry_version TEXT,
    at REAL NOT NULL,
    apply_id TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS registry_journal_address ON registry_journal (env, address, id);
CREATE TABLE IF NOT EXISTS registry_locks (
    env TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rt_sessions (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    user_id TEXT NOT NULL,
    workspace_id TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    conversation_id TEXT NOT NULL,
    current_agent TEXT,
    pins TEXT NOT NULL,
    pools TEXT NOT NULL,
    max_turns INTEGER,
    idle_timeout REAL,
    preferences TEXT NOT NULL,
    priority TEXT,
    turns INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_activity_at REAL NOT NULL,
    ended_at REAL,
    escalation TEXT,
    router_state TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rt_session_config (
    hash TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rt_sessions_open ON rt_sessions(env, state);
CREATE TABLE IF NOT EXISTS rt_hq_items (
    session_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    team TEXT,
    workspace_id TEXT,
    user_id TEXT NOT NULL,
    reason TEXT,
    trigger TEXT,
    escalation_id TEXT,
    level INTEGER,
    previous_agent TEXT,
    priority TEXT,
    enqueued_at REAL NOT NULL,
    claimed_by TEXT,
    claimed_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rt_hq_items_env ON rt_hq_items(env, enqueued_at);
CREATE TABLE IF NOT EXISTS rt_hq_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL,
    author TEXT,
    text TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rt_hq_messages_session ON rt_hq_messages(session_id, id);
CREATE TABLE IF NOT EXISTS rt_hq_availability (
    env TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (env, team, agent)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rt_esc_escalations (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    session_id TEXT NOT NULL,
    team TEXT,
    level INTEGER NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    opened_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    session_open INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rt_esc_status ON rt_esc_escalations(env, status);
CREATE INDEX IF NOT EXISTS rt_esc_session ON rt_esc_escalations(session_id);
"""

_PROJECTS = """
CREATE TABLE IF NOT EXISTS registry_projects (
    env TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    claimed_at REAL NOT NULL
)
"""

# Columns that tables made by runners from before migrations may lack.
_BASELINE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "registry_locks": (
        ("pid_started", "TEXT"),
        ("last_write_started_at", "REAL"),
        ("request_timeout", "REAL NOT NULL DEFAULT 0"),
        ("writes_in_flight", "INTEGER NOT NULL DEFAULT 0"),
    ),
    "rt_sessions": (("features", "TEXT NOT NULL DEFAULT '{}'"), ("config_hash", "TEXT")),
}


def _add_missing(
    conn: sqlite3.Connection, table: str, columns: tuple[tuple[str, str], ...]
) -> None:
    have = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns:
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _baseline(conn: sqlite3.Connection) -> None:
    for statement in _BASELINE.split(";"):
        if statement.strip():
            conn.execute(statement)
    for table, columns in _BASELINE_COLUMNS.items():
        _add_missing(conn, table, columns)


def _session_leases(conn: sqlite3.Connection) -> None:
    _add_missing(
        conn,
        "rt_sessions",
        (
            ("lease_owner", "TEXT"),
            ("lease_until", "REAL NOT NULL DEFAULT 0"),
            ("written_by", "TEXT"),
        ),
    )


def _project_ownership(conn: sqlite3.Connection) -> None:
    conn.execute(_PROJECTS)


_TURNS = """
CREATE TABLE IF NOT EXISTS rt_turns (
    env TEXT NOT NULL,
    session_id TEXT NOT NULL,
    at REAL NOT NULL,
    agent TEXT,
    team TEXT,
    ms REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost REAL,
    error INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rt_turns_at ON rt_turns(env, at);
CREATE INDEX IF NOT EXISTS rt_sessions_created ON rt_sessions(env, created_at)
"""


def _turn_log(conn: sqlite3.Connection) -> None:
    for statement in _TURNS.split(";"):
        conn.execute(statement)


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
    for statement in _POOL_LIMITS.split(";"):
        conn.execute(statement)


MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite3.Connection], None]], ...] = (
    (1, "baseline", _baseline),
    (2, "session leases", _session_leases),
    (3, "project ownership", _project_ownership),
    (4, "turn log", _turn_log),
    (5, "project scopes", _project_scopes),
    (6, "pool limits", _pool_limits),
)
LATEST = MIGRATIONS[-1][0]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS runner_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at REAL NOT NULL)"
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
    done = applied_versions(conn)
    newest = max(done, default=0)
    if newest > LATEST:
        raise SchemaTooNewError(where, newest, LATEST)
    if newest >= target:
        return newest
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_TABLE)
        done = applied_versions(conn)
        for version, name, apply in MIGRATIONS:
            if version <= target and version not in done:
                apply(conn)
                conn.execute(
                    "INSERT INTO runner_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return max(applied_versions(conn), default=0)
