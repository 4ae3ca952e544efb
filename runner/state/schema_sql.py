"""The state schema written once: the numbered migrations, their tables, and how they are applied.

Role in the flow: `runner.state.sqlite_schema` (a SQLite file) and `runner.state.pg_schema` (a
PostgreSQL database) bring a store's database up to `LATEST` when it opens. Here, once: the
versions and their names (`NAMES`, so both backends count the same versions with the same
meaning), every table and index both hold, written with `$` words for what each database spells
its own way (`DdlWords`: times are `REAL` or `DOUBLE PRECISION`, ids autoincrement or identity
columns, SQLite's `WITHOUT ROWID`, the turn log's error flag an integer or a boolean), the
columns migration 2 adds, and the loop that applies what is pending inside the transaction the
backend opened (`apply_pending`). A backend module keeps what truly differs: how it takes the
lock migrations run under, how it tells which versions are applied before the table exists, how
it adds a column unless there, and the migrations that change only one backend (5, project
scopes, moves PostgreSQL rows under their project's key; 6, pool limits, are SQLite's tables).

Invariants: applied versions are rows of `runner_migrations` (version, name, applied_at); each
pending migration up to the target runs once, in version order, with its row, in the caller's
one transaction. A database whose newest version is above `LATEST` was written by a newer
runner: `SchemaTooNewError`, nothing touched. Columns a table made before migrations may lack
(`ADDED_COLUMNS`) are written in the table by a backend whose tables never predate migrations
(PostgreSQL), and added when missing by the other (SQLite).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from string import Template
from typing import TypeVar

from runner.state.sql_dialect import POSTGRESQL, SQLITE, SqlConnection, SqlDialect

__all__ = [
    "ADDED_COLUMNS",
    "BASELINE",
    "LATEST",
    "LEASE_COLUMNS",
    "NAMES",
    "POSTGRESQL_DDL",
    "PROJECTS",
    "SQLITE_DDL",
    "TURNS",
    "DdlWords",
    "Migration",
    "SchemaTooNewError",
    "apply_pending",
    "migrations",
    "pending",
]

NAMES: Mapping[int, str] = {
    1: "baseline",
    2: "session leases",
    3: "project ownership",
    4: "turn log",
    5: "project scopes",
    6: "pool limits",
}
LATEST = max(NAMES)

_Conn = TypeVar("_Conn", bound=SqlConnection)
Migration = tuple[int, str, Callable[[_Conn], None]]


class SchemaTooNewError(RuntimeError):
    def __init__(self, where: str, found: int, latest: int) -> None:
        super().__init__(
            f"{where}: the state schema is at version {found}, newer than this runner knows "
            f"({latest}); upgrade runner to use it"
        )


_WORDS: Mapping[str, tuple[str, str]] = {  # word: (SQLite's, PostgreSQL's)
    "real": ("REAL", "DOUBLE PRECISION"),  # a float of seconds, a cost
    "bigint": ("INTEGER", "BIGINT"),  # a token count
    "serial": (  # an id that numbers rows in insertion order
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    "without_rowid": (" WITHOUT ROWID", ""),  # after a table keyed by its primary key
    "flag": ("INTEGER NOT NULL DEFAULT 0", "BOOLEAN NOT NULL DEFAULT FALSE"),  # yes/no, no
    # the apply lock holder's columns only one backend has, before `acquired_at` (SQLite's
    # `pid_started` is added after the fact, as files from before migrations have it)
    "lock_identity": ("", "\n    os_user TEXT NOT NULL DEFAULT '',"),
}


@dataclass(frozen=True, slots=True)
class DdlWords:
    """How one database spells the types and clauses the schema's statements leave open
    (`$real`, `$serial`, ...), and whether its tables hold `ADDED_COLUMNS` from the start."""

    dialect: SqlDialect
    words: Mapping[str, str]
    inline_added: bool  # a database no runner made before migrations (PostgreSQL)

    def ddl(self, text: str) -> str:
        """`text`, with its `$` words, in this database's spelling."""
        words = dict(self.words)
        for table, columns in ADDED_COLUMNS.items():
            inline = "".join(f",\n    {name} {declaration}" for name, declaration in columns)
            words[f"{table}_added"] = (
                Template(inline).substitute(self.words) if self.inline_added else ""
            )
        return Template(text).substitute(words)

    def statements(self, text: str) -> list[str]:
        """The `;`-separated statements of `text`, in this database's spelling."""
        return [s for s in self.ddl(text).split(";") if s.strip()]


SQLITE_DDL = DdlWords(SQLITE, {w: both[0] for w, both in _WORDS.items()}, inline_added=False)
POSTGRESQL_DDL = DdlWords(POSTGRESQL, {w: both[1] for w, both in _WORDS.items()}, inline_added=True)

ADDED_COLUMNS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "registry_locks": (  # the write fence (`runner.state.apply_lock`)
        ("last_write_started_at", "$real"),
        ("request_timeout", "$real NOT NULL DEFAULT 0"),
        ("writes_in_flight", "INTEGER NOT NULL DEFAULT 0"),
    ),
    "rt_sessions": (("features", "TEXT NOT NULL DEFAULT '{}'"), ("config_hash", "TEXT")),
}
"""Columns of the baseline that tables made by runners from before migrations may lack."""

BASELINE = """
CREATE TABLE IF NOT EXISTS registry_resources (
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    foundry_name TEXT,
    foundry_version TEXT,
    applied_at $real NOT NULL,
    PRIMARY KEY (env, address)
);
CREATE TABLE IF NOT EXISTS registry_journal (
    id $serial,
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    hash TEXT,
    foundry_version TEXT,
    at $real NOT NULL,
    apply_id TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS registry_journal_address ON registry_journal (env, address, id);
CREATE TABLE IF NOT EXISTS registry_locks (
    env TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,$lock_identity
    acquired_at $real NOT NULL$registry_locks_added
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
    idle_timeout $real,
    preferences TEXT NOT NULL,
    priority TEXT,
    turns INTEGER NOT NULL DEFAULT 0,
    input_tokens $bigint NOT NULL DEFAULT 0,
    output_tokens $bigint NOT NULL DEFAULT 0,
    created_at $real NOT NULL,
    last_activity_at $real NOT NULL,
    ended_at $real,
    escalation TEXT,
    router_state TEXT NOT NULL DEFAULT '{}'$rt_sessions_added
)$without_rowid;
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
    enqueued_at $real NOT NULL,
    claimed_by TEXT,
    claimed_at $real
)$without_rowid;
CREATE INDEX IF NOT EXISTS rt_hq_items_env ON rt_hq_items(env, enqueued_at);
CREATE TABLE IF NOT EXISTS rt_hq_messages (
    id $serial,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL,
    author TEXT,
    text TEXT NOT NULL,
    at $real NOT NULL
);
CREATE INDEX IF NOT EXISTS rt_hq_messages_session ON rt_hq_messages(session_id, id);
CREATE TABLE IF NOT EXISTS rt_hq_availability (
    env TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at $real NOT NULL,
    PRIMARY KEY (env, team, agent)
)$without_rowid;
CREATE TABLE IF NOT EXISTS rt_esc_escalations (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    session_id TEXT NOT NULL,
    team TEXT,
    level INTEGER NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    opened_at $real NOT NULL,
    updated_at $real NOT NULL,
    session_open INTEGER NOT NULL DEFAULT 1
)$without_rowid;
CREATE INDEX IF NOT EXISTS rt_esc_status ON rt_esc_escalations(env, status);
CREATE INDEX IF NOT EXISTS rt_esc_session ON rt_esc_escalations(session_id);
"""
"""Migration 1: the registry (applied resources, journal, apply locks) and the runtime's tables
(`rt_` sessions and their configurations, human queue, transcript, availability, escalation
history), written idempotently (`IF NOT EXISTS`)."""

LEASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lease_owner", "TEXT"),
    ("lease_until", "$real NOT NULL DEFAULT 0"),
    ("written_by", "TEXT"),
)
"""Migration 2, added to `rt_sessions`: which instance holds a session, until when (wall-clock
seconds), and which instance wrote it last."""

PROJECTS = """
CREATE TABLE IF NOT EXISTS registry_projects (
    env TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    claimed_at $real NOT NULL
)
"""
"""Migration 3: which runner project owns each environment."""

TURNS = """
CREATE TABLE IF NOT EXISTS rt_turns (
    env TEXT NOT NULL,
    session_id TEXT NOT NULL,
    at $real NOT NULL,
    agent TEXT,
    team TEXT,
    ms $real NOT NULL,
    input_tokens $bigint NOT NULL,
    output_tokens $bigint NOT NULL,
    cost $real,
    error $flag
);
CREATE INDEX IF NOT EXISTS rt_turns_at ON rt_turns(env, at);
CREATE INDEX IF NOT EXISTS rt_sessions_created ON rt_sessions(env, created_at)
"""
"""Migration 4: the turn log `runner report` reads, and an index of sessions by start."""

_TABLE = (
    "CREATE TABLE IF NOT EXISTS runner_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at $real NOT NULL)"
)
_RECORD = "INSERT INTO runner_migrations (version, name, applied_at) VALUES (?, ?, ?)"


def migrations(steps: Mapping[int, Callable[[_Conn], None]]) -> tuple[Migration[_Conn], ...]:
    """A backend's migrations: its step for each version of `NAMES`, every version given."""
    if sorted(steps) != sorted(NAMES):
        raise ValueError(f"a backend migrates versions {sorted(steps)}, not {sorted(NAMES)}")
    return tuple((version, NAMES[version], steps[version]) for version in sorted(steps))


def pending(newest: int, target: int, *, where: str) -> bool:
    """Whether a database at version `newest` has migrations to apply up to `target`;
    SchemaTooNewError when a newer runner wrote it."""
    if newest > LATEST:
        raise SchemaTooNewError(where, newest, LATEST)
    return newest < target


def apply_pending(
    conn: _Conn, steps: Sequence[Migration[_Conn]], *, target: int, words: DdlWords
) -> None:
    """Apply each migration up to `target` not applied yet, with its row of `runner_migrations`,
    inside the transaction (and under the lock) the caller holds on `conn`."""
    conn.execute(words.ddl(_TABLE), ())
    rows = conn.execute("SELECT version FROM runner_migrations", ()).fetchall()
    done = {int(r[0]) for r in rows}
    record = words.dialect.sql(_RECORD)
    for version, name, apply in steps:
        if version <= target and version not in done:
            apply(conn)
            conn.execute(record, (version, name, time.time()))
