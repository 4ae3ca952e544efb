"""Runtime sessions persisted next to the registry: the `rt_*` tables of the same SQLite file.

Role: the runtime (`runner.runtime.admission` and `runner.runtime.live`) writes a session row
when it is created, when its state changes and when it ends, synchronously; turn counters and
token totals are written behind in batches (`save_counters`), at most
`AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` late and always on close. A new process opening the same
file finds every session with its state, conversation, pinned agent versions and router state,
and can continue it.

Invariants:
  - Only tables prefixed `rt_` are touched; the registry's tables are not read or written here.
  - One connection per store, used from one thread (the event loop's); autocommit, WAL journal,
    synchronous=NORMAL (durable across process crashes, not across power loss), busy timeout so
    an apply in another process never makes a write fail.
  - `data_version()` changes when another connection (another process, or the registry in this
    one) committed to the file: the runtime re-reads applied agents only then.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.sqlitefile import prepare_database

SessionState = Literal["active", "paused", "awaiting_human", "ended"]
SESSION_STATES: tuple[SessionState, ...] = ("active", "paused", "awaiting_human", "ended")

_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS rt_sessions_open ON rt_sessions(env, state);
"""

_COLUMNS = (
    "id, env, kind, target, user_id, workspace_id, state, reason, conversation_id, "
    "current_agent, pins, pools, max_turns, idle_timeout, preferences, priority, turns, "
    "input_tokens, output_tokens, created_at, last_activity_at, ended_at, escalation, router_state"
)


@dataclass(slots=True)
class SessionRow:
    """A session as stored. `pins`: agent spec name -> (foundry name, version)."""

    id: str
    env: str
    kind: Literal["agent", "team"]
    target: str
    user_id: str
    workspace_id: str | None
    state: SessionState
    conversation_id: str
    current_agent: str | None
    pins: dict[str, tuple[str, str]]
    created_at: float
    last_activity_at: float
    reason: str | None = None
    pools: list[str] = field(default_factory=list)
    max_turns: int | None = None
    idle_timeout: float | None = None
    preferences: dict[str, Any] = field(default_factory=dict)
    priority: str | None = None
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    ended_at: float | None = None
    escalation: dict[str, Any] | None = None
    router_state: dict[str, Any] = field(default_factory=dict)

    def _values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.env,
            self.kind,
            self.target,
            self.user_id,
            self.workspace_id,
            self.state,
            self.reason,
            self.conversation_id,
            self.current_agent,
            json.dumps({k: list(v) for k, v in self.pins.items()}, separators=(",", ":")),
            json.dumps(self.pools, separators=(",", ":")),
            self.max_turns,
            self.idle_timeout,
            json.dumps(self.preferences, separators=(",", ":")),
            self.priority,
            self.turns,
            self.input_tokens,
            self.output_tokens,
            self.created_at,
            self.last_activity_at,
            self.ended_at,
            None if self.escalation is None else json.dumps(self.escalation),
            json.dumps(self.router_state, separators=(",", ":")),
        )

    @classmethod
    def _from_values(cls, v: tuple[Any, ...]) -> SessionRow:
        pins: Mapping[str, list[str]] = json.loads(v[10])
        return cls(
            id=v[0],
            env=v[1],
            kind=v[2],
            target=v[3],
            user_id=v[4],
            workspace_id=v[5],
            state=v[6],
            reason=v[7],
            conversation_id=v[8],
            current_agent=v[9],
            pins={k: (p[0], p[1]) for k, p in pins.items()},
            pools=json.loads(v[11]),
            max_turns=v[12],
            idle_timeout=v[13],
            preferences=json.loads(v[14]),
            priority=v[15],
            turns=v[16],
            input_tokens=v[17],
            output_tokens=v[18],
            created_at=v[19],
            last_activity_at=v[20],
            ended_at=v[21],
            escalation=None if v[22] is None else json.loads(v[22]),
            router_state=json.loads(v[23]),
        )


_UPDATE_STATE = (
    "UPDATE rt_sessions SET state=?, reason=?, ended_at=?, turns=?, input_tokens=?, "
    "output_tokens=?, last_activity_at=?, current_agent=?, router_state=?, escalation=? "
    "WHERE id=?"
)


def _state_values(r: SessionRow) -> tuple[Any, ...]:
    return (
        r.state,
        r.reason,
        r.ended_at,
        r.turns,
        r.input_tokens,
        r.output_tokens,
        r.last_activity_at,
        r.current_agent,
        json.dumps(r.router_state, separators=(",", ":")) if r.router_state else "{}",
        None if r.escalation is None else json.dumps(r.escalation),
        r.id,
    )


class SessionStore:
    """The `rt_sessions` table of the registry file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        prepare_database(self._conn, _SCHEMA)
        placeholders = ", ".join("?" * len(_COLUMNS.split(",")))
        self._insert = f"INSERT INTO rt_sessions ({_COLUMNS}) VALUES ({placeholders})"
        self._upsert = self._insert.replace("INSERT", "INSERT OR REPLACE", 1)
        self.writes = 0

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection, for other `rt_*` stores of the runtime to share: writes on a
        second connection would change `data_version()` and make the runtime re-read applied
        agents on every turn."""
        return self._conn

    def save(self, row: SessionRow) -> None:
        """Write a new session's row."""
        self._conn.execute(self._insert, row._values())
        self.writes += 1

    def save_state(self, row: SessionRow) -> None:
        """Write what changes after creation (state change, end): one UPDATE, no JSON for the
        fields fixed at creation (pins, pools, preferences)."""
        self._conn.execute(_UPDATE_STATE, _state_values(row))
        self.writes += 1

    def save_many(self, rows: Iterable[SessionRow]) -> None:
        values = [row._values() for row in rows]
        if not values:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(self._upsert, values)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        self.writes += 1

    def save_counters(self, rows: Iterable[SessionRow]) -> None:
        """Write turn counters, tokens, activity, answering agent and router state in one batch."""
        values = [_state_values(r) for r in rows]
        if not values:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(_UPDATE_STATE, values)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        self.writes += 1

    def load(self, session_id: str) -> SessionRow | None:
        found = self._conn.execute(
            f"SELECT {_COLUMNS} FROM rt_sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return None if found is None else SessionRow._from_values(found)

    def load_open(self, env: str) -> list[SessionRow]:
        """Every session of `env` that has not ended."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM rt_sessions WHERE env = ? AND state != 'ended' "
            "ORDER BY created_at",
            (env,),
        ).fetchall()
        return [SessionRow._from_values(r) for r in rows]

    def count(self, env: str) -> dict[str, int]:
        """Sessions of `env` per state."""
        rows = self._conn.execute(
            "SELECT state, COUNT(*) FROM rt_sessions WHERE env = ? GROUP BY state", (env,)
        ).fetchall()
        return {state: n for state, n in rows}

    def data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
