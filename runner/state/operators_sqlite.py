"""The operator store in the registry's SQLite file: `rt_hq_*` and `rt_esc_*` tables.

Role: the SQLite implementation of `runner.state.operators.OperatorStore`: the human queue
(`rt_hq_items`, one row per session while it is `awaiting_human`, with who claimed it), the
transcript (`rt_hq_messages`), member availability (`rt_hq_availability`) and escalation
history (`rt_esc_escalations`). The runtime's composition root builds it on the session
store's connection (`runner.state.sessions_sqlite`): writes on a second connection would change
`PRAGMA data_version` for the runtime and make it re-read the registry on every turn.

Invariants:
  - Only tables prefixed `rt_hq_` / `rt_esc_` are touched, in the registry's SQLite file.
  - Escalation history is written behind (like turn counters): `record_escalation` and
    `session_closed` buffer, `flush()` writes the buffer in one transaction; every read and
    `close()` flush first. What must survive at once (the queue, claims, availability,
    transcript) is written immediately.
  - `claim` is a conditional UPDATE: two operators (even in two processes) never both claim
    the same session.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from runner.spec.vocabulary import PRIORITY_RANK, priority_rank
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry
from runner.state.sessions_sqlite import open_connection
from runner.state.sqlite_schema import migrate

__all__ = ["SqliteOperatorStore"]

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
_PRIORITY_ORDER = (  # the vocabulary's rank, in SQL: urgent first, none or unknown as medium
    "CASE priority "
    + " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in PRIORITY_RANK.items())
    + f" ELSE {priority_rank(None)} END"
)


def _item_values(item: QueueItem) -> tuple[Any, ...]:
    return tuple(getattr(item, f.name) for f in fields(QueueItem))


class SqliteOperatorStore:
    """The `rt_hq_*` and `rt_esc_*` tables of the registry file (an `OperatorStore`)."""

    def __init__(self, path: str | Path, *, connection: sqlite3.Connection | None = None) -> None:
        self.path = Path(path)
        self._owns = connection is None
        self._conn = open_connection(self.path) if connection is None else connection
        migrate(self._conn, where=str(self.path))
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
            _item_values(item),
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
