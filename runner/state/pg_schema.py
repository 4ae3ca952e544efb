"""The state schema in PostgreSQL, as numbered migrations applied under an advisory lock.

Role in the flow: `PgDatabase` (`runner.state.pg_database`) calls `migrate` when it opens; the
versions and their meaning are those of `runner.state.sqlite_schema` (1 baseline, 2 session
leases, 3 project ownership, 4 turn log), written for PostgreSQL: timestamps are double
precision seconds, JSON is stored as the same text the SQLite backend stores, journal and
transcript ids are identity columns.

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

import time
from typing import TYPE_CHECKING, Any

from runner.state.sqlite_schema import LATEST, SchemaTooNewError

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATION_LOCK_KEY", "PG_MIGRATIONS", "applied_versions", "migrate"]

MIGRATION_LOCK_KEY = 0x72756E6E6572  # "runner": the advisory lock migrations run under

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
    applied_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (env, address)
);
CREATE TABLE IF NOT EXISTS registry_journal (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    hash TEXT,
    foundry_version TEXT,
    at DOUBLE PRECISION NOT NULL,
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
    os_user TEXT NOT NULL DEFAULT '',
    acquired_at DOUBLE PRECISION NOT NULL,
    last_write_started_at DOUBLE PRECISION,
    request_timeout DOUBLE PRECISION NOT NULL DEFAULT 0,
    writes_in_flight INTEGER NOT NULL DEFAULT 0
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
    idle_timeout DOUBLE PRECISION,
    preferences TEXT NOT NULL,
    priority TEXT,
    turns INTEGER NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    last_activity_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    escalation TEXT,
    router_state TEXT NOT NULL DEFAULT '{}',
    features TEXT NOT NULL DEFAULT '{}',
    config_hash TEXT
);
CREATE TABLE IF NOT EXISTS rt_session_config (
    hash TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rt_sessions_open ON rt_sessions (env, state);
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
    enqueued_at DOUBLE PRECISION NOT NULL,
    claimed_by TEXT,
    claimed_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS rt_hq_items_env ON rt_hq_items (env, enqueued_at);
CREATE TABLE IF NOT EXISTS rt_hq_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL,
    author TEXT,
    text TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS rt_hq_messages_session ON rt_hq_messages (session_id, id);
CREATE TABLE IF NOT EXISTS rt_hq_availability (
    env TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (env, team, agent)
);
CREATE TABLE IF NOT EXISTS rt_esc_escalations (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    session_id TEXT NOT NULL,
    team TEXT,
    level INTEGER NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    session_open INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS rt_esc_status ON rt_esc_escalations (env, status);
CREATE INDEX IF NOT EXISTS rt_esc_session ON rt_esc_escalations (session_id);
"""

_SESSION_LEASES = """
ALTER TABLE rt_sessions ADD COLUMN IF NOT EXISTS lease_owner TEXT;
ALTER TABLE rt_sessions ADD COLUMN IF NOT EXISTS lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE rt_sessions ADD COLUMN IF NOT EXISTS written_by TEXT;
"""

_PROJECT_OWNERSHIP = """
CREATE TABLE IF NOT EXISTS registry_projects (
    env TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL
);
"""

_TURN_LOG = """
CREATE TABLE IF NOT EXISTS rt_turns (
    env TEXT NOT NULL,
    session_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    agent TEXT,
    team TEXT,
    ms DOUBLE PRECISION NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost DOUBLE PRECISION,
    error BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS rt_turns_at ON rt_turns(env, at);
CREATE INDEX IF NOT EXISTS rt_sessions_created ON rt_sessions(env, created_at);
"""

_PROJECT_SCOPES = """
UPDATE registry_resources AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE registry_journal AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE registry_locks AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE rt_sessions AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE rt_hq_items AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE rt_hq_availability AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE rt_esc_escalations AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE rt_turns AS t SET env = p.project || '#' || t.env FROM registry_projects AS p
    WHERE p.env = t.env AND p.project <> '' AND strpos(t.env, '#') = 0;
UPDATE registry_projects SET env = project || '#' || env
    WHERE project <> '' AND strpos(env, '#') = 0;
"""

PG_MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "baseline", _BASELINE),
    (2, "session leases", _SESSION_LEASES),
    (3, "project ownership", _PROJECT_OWNERSHIP),
    (4, "turn log", _TURN_LOG),
    (5, "project scopes", _PROJECT_SCOPES),
    (6, "pool limits", ""),  # SQLite only (see the module docstring)
)
assert PG_MIGRATIONS[-1][0] == LATEST, "the two backends' schemas have the same versions"

_TABLE = (
    "CREATE TABLE IF NOT EXISTS runner_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
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
    if newest > LATEST:
        raise SchemaTooNewError(where, newest, LATEST)
    if newest >= target:
        return newest
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(_TABLE)
        done = applied_versions(conn)
        for version, name, sql in PG_MIGRATIONS:
            if version <= target and version not in done:
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO runner_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
    return max(applied_versions(conn), default=0)
