"""The durable human queue, operator transcript, escalations and live availability of teams.

Role: `runner.runtime.operators` (its human queue and escalation desk) records here what must
survive a restart of the runtime: sessions waiting for a person (`rt_hq_items`, one row per
session while it is `awaiting_human`, with who claimed it), what operators said
(`rt_hq_messages`), every escalation of every team session with its current status
(`rt_esc_escalations`) and live member availability set by operators (`rt_hq_availability`). A
new process on the same registry file finds the queue, the pending escalations and the
availability as they were.

Invariants:
  - Only tables prefixed `rt_hq_` / `rt_esc_` are touched, in the registry's SQLite file.
  - One connection, autocommit, WAL, busy timeout (another process may apply meanwhile). The
    runtime passes its session store's connection: writes on a second connection would change
    `PRAGMA data_version` for the runtime and make it re-read the registry on every turn.
  - Escalation history is written behind (like turn counters): `record_escalation` and
    `session_closed` buffer, `flush()` writes the buffer in one transaction; every read and
    `close()` flush first. What must survive at once (the queue, claims, availability,
    transcript) is written immediately; pending escalations are also in the session rows.
  - `claim` is a conditional UPDATE: two operators (even in two processes) never both claim
    the same session.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.sqlitefile import prepare_database

_SCHEMA = """
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

_ITEM_COLUMNS = (
    "session_id, env, team, workspace_id, user_id, reason, trigger, escalation_id, level, "
    "previous_agent, priority, enqueued_at, claimed_by, claimed_at"
)
_UPSERT_ESCALATION = (
    "INSERT INTO rt_esc_escalations (id, env, session_id, team, level, target, status, "
    "body, opened_at, updated_at, session_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET status=excluded.status, body=excluded.body, "
    "updated_at=excluded.updated_at, session_open=excluded.session_open"
)
_CLOSE_SESSION = "UPDATE rt_esc_escalations SET session_open = 0 WHERE session_id = ?"
_PRIORITY_ORDER = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 "
    "WHEN 'low' THEN 3 ELSE 2 END"
)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A session waiting for (or held by) a person."""

    session_id: str
    env: str
    team: str | None
    workspace_id: str | None
    user_id: str
    reason: str | None
    trigger: str | None
    escalation_id: str | None
    level: int | None
    previous_agent: str | None  # the member that had the session before the person
    priority: str | None
    enqueued_at: float
    claimed_by: str | None = None
    claimed_at: float | None = None

    @property
    def claimed(self) -> bool:
        return self.claimed_by is not None

    def _values(self) -> tuple[Any, ...]:
        return (
            self.session_id,
            self.env,
            self.team,
            self.workspace_id,
            self.user_id,
            self.reason,
            self.trigger,
            self.escalation_id,
            self.level,
            self.previous_agent,
            self.priority,
            self.enqueued_at,
            self.claimed_by,
            self.claimed_at,
        )


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    session_id: str
    role: str  # "user" (while waiting for a person) or "operator"
    author: str | None
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class StoredEscalation:
    env: str
    team: str | None
    session_open: bool
    escalation: Mapping[str, Any]  # `Escalation.as_dict()`

    @property
    def status(self) -> str:
        return str(self.escalation["status"])

    @property
    def session_id(self) -> str:
        return str(self.escalation["session_id"])


class HumanQueueStore:
    """The `rt_hq_*` and `rt_esc_*` tables of the registry file."""

    def __init__(self, path: str | Path, *, connection: sqlite3.Connection | None = None) -> None:
        self.path = Path(path)
        self._owns = connection is None
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("PRAGMA synchronous = NORMAL")
        self._conn = connection
        prepare_database(self._conn, _SCHEMA)
        self._pending_escalations: dict[str, tuple[Any, ...]] = {}
        self._pending_closed: set[str] = set()
        self._pending_by_session: dict[str, list[str]] = {}

    @property
    def dirty(self) -> bool:
        return bool(self._pending_escalations or self._pending_closed)

    def flush(self) -> None:
        """Write buffered escalation history in one transaction."""
        if not self.dirty:
            return
        rows = list(self._pending_escalations.values())
        closed = [(sid,) for sid in self._pending_closed]
        self._pending_escalations = {}
        self._pending_closed = set()
        self._pending_by_session = {}
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(_UPSERT_ESCALATION, rows)
            self._conn.executemany(_CLOSE_SESSION, closed)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        if self._owns:
            self._conn.close()

    # ------------------------------------------------------------ queue

    def enqueue(self, item: QueueItem) -> None:
        """Put a session in the queue; a session already there keeps its place and claim."""
        placeholders = ", ".join("?" * 14)
        self._conn.execute(
            f"INSERT INTO rt_hq_items ({_ITEM_COLUMNS}) VALUES ({placeholders}) "
            "ON CONFLICT(session_id) DO UPDATE SET reason=excluded.reason, "
            "trigger=COALESCE(excluded.trigger, trigger), "
            "escalation_id=COALESCE(excluded.escalation_id, escalation_id), "
            "level=COALESCE(excluded.level, level)",
            item._values(),
        )

    def remove(self, session_id: str) -> bool:
        cur = self._conn.execute("DELETE FROM rt_hq_items WHERE session_id = ?", (session_id,))
        return cur.rowcount > 0

    def get(self, session_id: str) -> QueueItem | None:
        row = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM rt_hq_items WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else QueueItem(*row)

    def items(self, env: str, *, workspace: str | None = None) -> list[QueueItem]:
        """The queue of `env` (of one workspace when given): most urgent first, then oldest."""
        sql = f"SELECT {_ITEM_COLUMNS} FROM rt_hq_items WHERE env = ?"
        params: list[Any] = [env]
        if workspace is not None:
            sql += " AND workspace_id = ?"
            params.append(workspace)
        sql += f" ORDER BY {_PRIORITY_ORDER}, enqueued_at, session_id"
        return [QueueItem(*row) for row in self._conn.execute(sql, params).fetchall()]

    def claim(self, session_id: str, *, operator: str, at: float) -> bool:
        """Claim for `operator`; False when the session is not queued or another holds it."""
        cur = self._conn.execute(
            "UPDATE rt_hq_items SET claimed_by = ?, claimed_at = ? "
            "WHERE session_id = ? AND (claimed_by IS NULL OR claimed_by = ?)",
            (operator, at, session_id, operator),
        )
        return cur.rowcount > 0

    # ------------------------------------------------------------ transcript

    def add_message(
        self, session_id: str, *, role: str, author: str | None, text: str, at: float
    ) -> None:
        self._conn.execute(
            "INSERT INTO rt_hq_messages (session_id, role, author, text, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (session_id, role, author, text, at),
        )

    def messages(self, session_id: str) -> list[TranscriptEntry]:
        rows = self._conn.execute(
            "SELECT session_id, role, author, text, at FROM rt_hq_messages "
            "WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [TranscriptEntry(*row) for row in rows]

    # ------------------------------------------------------------ escalations

    def record_escalation(
        self, env: str, escalation: Mapping[str, Any], *, team: str | None, at: float
    ) -> None:
        """Insert or update one escalation (`Escalation.as_dict()`) by its id (buffered)."""
        key = str(escalation["id"])
        self._pending_by_session.setdefault(str(escalation["session_id"]), []).append(key)
        self._pending_escalations[key] = (
            str(escalation["id"]),
            env,
            str(escalation["session_id"]),
            team,
            int(escalation["level"]),
            str(escalation["target"]),
            str(escalation["status"]),
            json.dumps(dict(escalation), sort_keys=True),
            float(escalation.get("opened_at") or at),
            at,
            1,
        )

    def session_closed(self, session_id: str) -> None:
        """The session ended: its escalations stay as history but are no longer open (buffered)."""
        for key in self._pending_by_session.pop(session_id, ()):
            row = self._pending_escalations.get(key)
            if row is not None:
                self._pending_escalations[key] = (*row[:-1], 0)
        self._pending_closed.add(session_id)

    def escalations(
        self,
        env: str,
        *,
        statuses: Iterable[str] | None = None,
        session_id: str | None = None,
        open_sessions_only: bool = False,
    ) -> list[StoredEscalation]:
        self.flush()
        sql = "SELECT env, team, session_open, body FROM rt_esc_escalations WHERE env = ?"
        params: list[Any] = [env]
        wanted = list(statuses) if statuses is not None else None
        if wanted is not None:
            sql += f" AND status IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
        if open_sessions_only:
            sql += " AND session_open = 1"
        sql += " ORDER BY opened_at, level"
        return [
            StoredEscalation(
                env=r[0], team=r[1], session_open=bool(r[2]), escalation=json.loads(r[3])
            )
            for r in self._conn.execute(sql, params).fetchall()
        ]

    # ------------------------------------------------------------ availability

    def set_availability(self, env: str, team: str, agent: str, status: str, *, at: float) -> None:
        self._conn.execute(
            "INSERT INTO rt_hq_availability (env, team, agent, status, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(env, team, agent) DO UPDATE SET "
            "status=excluded.status, updated_at=excluded.updated_at",
            (env, team, agent, status, at),
        )

    def availability(self, env: str) -> dict[str, dict[str, str]]:
        """team -> agent -> status, as operators last set it."""
        out: dict[str, dict[str, str]] = {}
        for team, agent, status in self._conn.execute(
            "SELECT team, agent, status FROM rt_hq_availability WHERE env = ?", (env,)
        ).fetchall():
            out.setdefault(team, {})[agent] = status
        return out
