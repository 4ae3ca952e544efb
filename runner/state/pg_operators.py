"""The operator store in PostgreSQL: human queue, transcript, availability, escalation history.

Role: the PostgreSQL implementation of `runner.state.operators.OperatorStore`, on the same
database as the registry and the sessions (`runner.state.backends`). Same tables and meaning as
`runner.state.operators_sqlite`.

Invariants: escalation history is written behind (`flush`, every read and `close` flush
first); the queue, claims, transcript and availability are written at once; `claim` is one
conditional UPDATE, so two operators on two hosts never both hold a session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from runner.spec.vocabulary import PRIORITY_RANK, priority_rank
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry
from runner.state.pg_database import PgDatabase

__all__ = ["PostgresOperatorStore"]

_ITEM_COLUMNS = (
    "session_id, env, team, workspace_id, user_id, reason, trigger, escalation_id, level, "
    "previous_agent, priority, enqueued_at, claimed_by, claimed_at"
)
_UPSERT_ESCALATION = (
    "INSERT INTO rt_esc_escalations (id, env, session_id, team, level, target, status, "
    "body, opened_at, updated_at, session_open) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body, "
    "updated_at = excluded.updated_at, session_open = excluded.session_open"
)
_PRIORITY_ORDER = (
    "CASE priority "
    + " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in PRIORITY_RANK.items())
    + f" ELSE {priority_rank(None)} END"
)


class PostgresOperatorStore:
    """The `rt_hq_*` and `rt_esc_*` tables of a PostgreSQL state database (an `OperatorStore`)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self._pending_escalations: dict[str, tuple[Any, ...]] = {}
        self._pending_closed: set[str] = set()
        self._pending_by_session: dict[str, list[str]] = {}

    @property
    def dirty(self) -> bool:
        return bool(self._pending_escalations or self._pending_closed)

    def flush(self) -> None:
        if not self.dirty:
            return
        rows = list(self._pending_escalations.values())
        closed = [(sid,) for sid in self._pending_closed]
        self._pending_escalations = {}
        self._pending_closed = set()
        self._pending_by_session = {}
        with self._db.write() as conn, conn.cursor() as cur:
            if rows:
                cur.executemany(_UPSERT_ESCALATION, rows)
            if closed:
                cur.executemany(
                    "UPDATE rt_esc_escalations SET session_open = 0 WHERE session_id = %s",
                    closed,
                )

    def close(self) -> None:
        self.flush()

    # ------------------------------------------------------------ queue

    def enqueue(self, item: QueueItem) -> None:
        values = tuple(
            self._db.env_key(item.env) if f.name == "env" else getattr(item, f.name)
            for f in fields(QueueItem)
        )
        placeholders = ", ".join("%s" for _ in values)
        with self._db.connect() as conn:
            conn.execute(
                f"INSERT INTO rt_hq_items ({_ITEM_COLUMNS}) VALUES ({placeholders}) "
                "ON CONFLICT (session_id) DO UPDATE SET reason = excluded.reason, "
                "trigger = COALESCE(excluded.trigger, rt_hq_items.trigger), "
                "escalation_id = COALESCE(excluded.escalation_id, rt_hq_items.escalation_id), "
                "level = COALESCE(excluded.level, rt_hq_items.level)",
                values,
            )

    def remove(self, session_id: str) -> bool:
        with self._db.connect() as conn:
            owns, params = self._db.owns_sql()  # another project's item looks missing
            cur = conn.execute(
                f"DELETE FROM rt_hq_items WHERE session_id = %s AND {owns}", (session_id, *params)
            )
            return cur.rowcount > 0

    def get(self, session_id: str) -> QueueItem | None:
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM rt_hq_items WHERE session_id = %s", (session_id,)
            ).fetchone()
        return None if row is None or not self._db.owns_key(str(row[1])) else self._item(row)

    def _item(self, row: Any) -> QueueItem:
        return QueueItem(row[0], self._db.env_name(str(row[1])), *row[2:])

    def items(self, env: str, *, workspace: str | None = None) -> list[QueueItem]:
        sql = f"SELECT {_ITEM_COLUMNS} FROM rt_hq_items WHERE env = %s"
        params: list[Any] = [self._db.env_key(env)]
        if workspace is not None:
            sql += " AND workspace_id = %s"
            params.append(workspace)
        sql += f" ORDER BY {_PRIORITY_ORDER}, enqueued_at, session_id"
        with self._db.connect() as conn:
            return [self._item(row) for row in conn.execute(sql, params).fetchall()]

    def claim(self, session_id: str, *, operator: str, at: float) -> bool:
        owns, params = self._db.owns_sql()
        with self._db.connect() as conn:
            cur = conn.execute(
                "UPDATE rt_hq_items SET claimed_by = %s, claimed_at = %s "
                f"WHERE session_id = %s AND (claimed_by IS NULL OR claimed_by = %s) AND {owns}",
                (operator, at, session_id, operator, *params),
            )
            return cur.rowcount > 0

    # ------------------------------------------------------------ transcript

    def add_message(
        self, session_id: str, *, role: str, author: str | None, text: str, at: float
    ) -> None:
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO rt_hq_messages (session_id, role, author, text, at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (session_id, role, author, text, at),
            )

    def messages(self, session_id: str) -> list[TranscriptEntry]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT session_id, role, author, text, at FROM rt_hq_messages "
                "WHERE session_id = %s ORDER BY id",
                (session_id,),
            ).fetchall()
        return [TranscriptEntry(*row) for row in rows]

    # ------------------------------------------------------------ escalations

    def record_escalation(
        self, env: str, escalation: Mapping[str, Any], *, team: str | None, at: float
    ) -> None:
        key = str(escalation["id"])
        self._pending_by_session.setdefault(str(escalation["session_id"]), []).append(key)
        self._pending_escalations[key] = (
            key,
            self._db.env_key(env),
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
        sql = "SELECT env, team, session_open, body FROM rt_esc_escalations WHERE env = %s"
        params: list[Any] = [self._db.env_key(env)]
        if statuses is not None:
            sql += " AND status = ANY(%s)"
            params.append(list(statuses))
        if session_id is not None:
            sql += " AND session_id = %s"
            params.append(session_id)
        if open_sessions_only:
            sql += " AND session_open = 1"
        sql += " ORDER BY opened_at, level"
        with self._db.connect() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            StoredEscalation(
                env=env, team=r[1], session_open=bool(r[2]), escalation=json.loads(r[3])
            )
            for r in rows
        ]

    # ------------------------------------------------------------ availability

    def set_availability(self, env: str, team: str, agent: str, status: str, *, at: float) -> None:
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO rt_hq_availability (env, team, agent, status, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (env, team, agent) DO UPDATE SET "
                "status = excluded.status, updated_at = excluded.updated_at",
                (self._db.env_key(env), team, agent, status, at),
            )

    def availability(self, env: str) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT team, agent, status FROM rt_hq_availability WHERE env = %s",
                (self._db.env_key(env),),
            ).fetchall()
        for team, agent, status in rows:
            out.setdefault(team, {})[agent] = status
        return out
