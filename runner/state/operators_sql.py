"""The operator store written once over SQL: statements, row <-> record mapping, write-behind.

Role: `SqlOperatorStore` is `runner.state.operators.OperatorStore` for both databases: the human
queue (`rt_hq_items`, one row per session while it is `awaiting_human`, with who claimed it),
the transcript (`rt_hq_messages`), member availability (`rt_hq_availability`) and escalation
history (`rt_esc_escalations`). Here, once: every statement (written with `?` placeholders, put
in the backend's `SqlDialect` when the store is made), how a record becomes a row and back, the
queue's order (most urgent first by the vocabulary's rank, then oldest) and the escalation
buffer. A backend subclass (`operators_sqlite.SqliteOperatorStore`,
`pg_operators.PostgresOperatorStore`) gives only what truly differs: how its statements reach
its database (a `SqlRunner`: one statement at once, a batch in one transaction), its dialect
and how it stores environment names (`EnvKeys`: PostgreSQL's `PROJECT#ENV`, another project's
rows invisible).

Invariants:
  - Only tables prefixed `rt_hq_` / `rt_esc_` are touched.
  - Escalation history is written behind (like turn counters): `record_escalation` and
    `session_closed` buffer, `flush()` writes the buffer in one transaction; every read and
    `close()` flush first. What must survive at once (the queue, claims, availability,
    transcript) is written immediately.
  - `claim` is one conditional UPDATE: two operators (even in two processes or on two hosts)
    never both claim the same session.
  - Rows of environments that are not the store's own (`EnvKeys.owns_sql`) look missing.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from runner.spec.vocabulary import PRIORITY_RANK, priority_rank
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry
from runner.state.sql_dialect import EnvKeys, SqlDialect, SqlRunner

__all__ = ["SqlOperatorStore"]

_ITEM_FIELDS = tuple(f.name for f in fields(QueueItem))
_ITEM_COLUMNS = ", ".join(_ITEM_FIELDS)  # a QueueItem's fields are its columns, in order
_PRIORITY_ORDER = (  # the vocabulary's rank, in SQL: urgent first, none or unknown as medium
    "CASE priority "
    + " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in PRIORITY_RANK.items())
    + f" ELSE {priority_rank(None)} END"
)
_ESCALATION_COLUMNS = (
    "id, env, session_id, team, level, target, status, body, opened_at, updated_at, session_open"
)


class _Statements:
    """Every statement of the store, in one dialect, with the store's ownership condition."""

    def __init__(self, dialect: SqlDialect, owns: str) -> None:
        sql = dialect.sql
        self.enqueue = sql(
            f"INSERT INTO rt_hq_items ({_ITEM_COLUMNS}) "
            f"VALUES ({', '.join('?' for _ in _ITEM_FIELDS)}) "
            "ON CONFLICT (session_id) DO UPDATE SET reason = excluded.reason, "
            "trigger = COALESCE(excluded.trigger, rt_hq_items.trigger), "
            "escalation_id = COALESCE(excluded.escalation_id, rt_hq_items.escalation_id), "
            "level = COALESCE(excluded.level, rt_hq_items.level)"
        )
        self.remove = sql(f"DELETE FROM rt_hq_items WHERE session_id = ? AND {owns}")
        self.get = sql(f"SELECT {_ITEM_COLUMNS} FROM rt_hq_items WHERE session_id = ? AND {owns}")
        items = f"SELECT {_ITEM_COLUMNS} FROM rt_hq_items WHERE env = ?"
        order = f" ORDER BY {_PRIORITY_ORDER}, enqueued_at, session_id"
        self.items = sql(items + order)
        self.items_of_workspace = sql(items + " AND workspace_id = ?" + order)
        self.claim = sql(
            "UPDATE rt_hq_items SET claimed_by = ?, claimed_at = ? "
            f"WHERE session_id = ? AND (claimed_by IS NULL OR claimed_by = ?) AND {owns}"
        )
        self.add_message = sql(
            "INSERT INTO rt_hq_messages (session_id, role, author, text, at) VALUES (?, ?, ?, ?, ?)"
        )
        self.messages = sql(
            "SELECT session_id, role, author, text, at FROM rt_hq_messages "
            "WHERE session_id = ? ORDER BY id"
        )
        self.upsert_escalation = sql(
            f"INSERT INTO rt_esc_escalations ({_ESCALATION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body, "
            "updated_at = excluded.updated_at, session_open = excluded.session_open"
        )
        self.close_session = sql(
            "UPDATE rt_esc_escalations SET session_open = 0 WHERE session_id = ?"
        )
        self.set_availability = sql(
            "INSERT INTO rt_hq_availability (env, team, agent, status, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (env, team, agent) DO UPDATE SET "
            "status = excluded.status, updated_at = excluded.updated_at"
        )
        self.availability = sql("SELECT team, agent, status FROM rt_hq_availability WHERE env = ?")
        self.sql = sql  # for the statements built per call (`escalations`' filters)


class SqlOperatorStore(ABC):
    """The operator records over one database (module docstring), its statements run by `run`;
    a subclass says what it opened to let go of."""

    def __init__(self, run: SqlRunner, *, dialect: SqlDialect, keys: EnvKeys) -> None:
        self._execute = run.execute
        self._fetch = run.fetch
        self._execute_batches = run.execute_batches
        self._keys = keys
        owns, self._owns_params = keys.owns_sql()
        self._sql = _Statements(dialect, owns)
        self._pending_escalations: dict[str, tuple[Any, ...]] = {}
        self._pending_closed: set[str] = set()
        self._pending_by_session: dict[str, list[str]] = {}

    @abstractmethod
    def _release(self) -> None:
        """Let go of what the store opened (not a connection it was given)."""

    # ------------------------------------------------------------ write-behind

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
        batches = ((self._sql.upsert_escalation, rows), (self._sql.close_session, closed))
        self._execute_batches([(sql, params) for sql, params in batches if params])

    def close(self) -> None:
        """Flush, then release the store (not a connection it was given)."""
        self.flush()
        self._release()

    # ------------------------------------------------------------ queue

    def enqueue(self, item: QueueItem) -> None:
        """Put a session in the queue; a session already there keeps its place and claim."""
        values = tuple(
            self._keys.env_key(item.env) if name == "env" else getattr(item, name)
            for name in _ITEM_FIELDS
        )
        self._execute(self._sql.enqueue, values)

    def remove(self, session_id: str) -> bool:
        return self._execute(self._sql.remove, (session_id, *self._owns_params)) > 0

    def get(self, session_id: str) -> QueueItem | None:
        rows = self._fetch(self._sql.get, (session_id, *self._owns_params))
        return self._item(rows[0]) if rows else None

    def items(self, env: str, *, workspace: str | None = None) -> list[QueueItem]:
        """The queue of `env` (of one workspace when given): most urgent first, then oldest."""
        key = self._keys.env_key(env)
        if workspace is None:
            rows = self._fetch(self._sql.items, (key,))
        else:
            rows = self._fetch(self._sql.items_of_workspace, (key, workspace))
        return [self._item(row) for row in rows]

    def _item(self, row: Sequence[Any]) -> QueueItem:
        return QueueItem(row[0], self._keys.env_name(str(row[1])), *row[2:])

    def claim(self, session_id: str, *, operator: str, at: float) -> bool:
        """Claim for `operator`; False when the session is not queued or another holds it."""
        params = (operator, at, session_id, operator, *self._owns_params)
        return self._execute(self._sql.claim, params) > 0

    # ------------------------------------------------------------ transcript

    def add_message(
        self, session_id: str, *, role: str, author: str | None, text: str, at: float
    ) -> None:
        self._execute(self._sql.add_message, (session_id, role, author, text, at))

    def messages(self, session_id: str) -> list[TranscriptEntry]:
        return [TranscriptEntry(*row) for row in self._fetch(self._sql.messages, (session_id,))]

    # ------------------------------------------------------------ escalations

    def record_escalation(
        self, env: str, escalation: Mapping[str, Any], *, team: str | None, at: float
    ) -> None:
        """Insert or update one escalation (`Escalation.as_dict()`) by its id (buffered)."""
        key = str(escalation["id"])
        session_id = str(escalation["session_id"])
        self._pending_by_session.setdefault(session_id, []).append(key)
        self._pending_escalations[key] = (  # `_ESCALATION_COLUMNS`, the session open
            key,
            self._keys.env_key(env),
            session_id,
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
        """`env`'s escalations, oldest first (by level within one time), filtered as asked."""
        self.flush()
        wanted = None if statuses is None else list(statuses)
        if wanted == []:
            return []  # no status asked for: none matches
        sql = "SELECT team, session_open, body FROM rt_esc_escalations WHERE env = ?"
        params: list[Any] = [self._keys.env_key(env)]
        if wanted is not None:
            sql += f" AND status IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
        if open_sessions_only:
            sql += " AND session_open = 1"
        sql += " ORDER BY opened_at, level"
        return [
            StoredEscalation(
                env=env, team=team, session_open=bool(is_open), escalation=json.loads(body)
            )
            for team, is_open, body in self._fetch(self._sql.sql(sql), params)
        ]

    # ------------------------------------------------------------ availability

    def set_availability(self, env: str, team: str, agent: str, status: str, *, at: float) -> None:
        params = (self._keys.env_key(env), team, agent, status, at)
        self._execute(self._sql.set_availability, params)

    def availability(self, env: str) -> dict[str, dict[str, str]]:
        """team -> agent -> status, as operators last set it."""
        out: dict[str, dict[str, str]] = {}
        for team, agent, status in self._fetch(self._sql.availability, (self._keys.env_key(env),)):
            out.setdefault(team, {})[agent] = status
        return out
