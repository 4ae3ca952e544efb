"""Sessions in the registry's SQLite file: the `rt_sessions` table, behind `SessionStore`.

Role: the SQLite implementation of `runner.state.sessions.SessionStore`. The runtime's
composition root (`runner.runtime.assembly`) opens it on the registry file and builds the
operator store (`runner.state.operators_sqlite`) on the same connection.

Invariants:
  - Only tables prefixed `rt_` are touched; the registry's tables are not read or written here.
  - A file made by an older runner gains what is newer on open (`runner.state.sqlite_schema`'s
    migrations), so its sessions keep working.
  - A session's effective configuration (`SessionRow.config`, fixed at creation, up to a few
    KiB with its structured inputs) is stored once per distinct configuration in
    `rt_session_config`, keyed by the sha256 of its JSON; the session row holds that key, so it
    stays small (it is rewritten on every state change and counter flush) and a million
    sessions of a few configurations store a few configurations.
  - One connection per store, used from one thread (the event loop's); autocommit, WAL journal,
    synchronous=NORMAL (durable across process crashes, not across power loss), busy timeout so
    an apply in another process never makes a write fail.
  - `data_version()` changes when another connection (another process, or the registry in this
    one) committed to the file: the runtime re-reads applied agents only then. Stores of the
    runtime that share the file share this connection (`connection`), so their own writes do
    not count as another's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from runner.sqlitefile import write_transaction
from runner.state.sessions import SessionRow
from runner.state.sqlite_schema import migrate

__all__ = ["SqliteSessionStore", "open_connection"]


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection to a runtime store file: autocommit, usable from the event loop's thread
    and worker threads, busy timeout (another process may apply meanwhile), synchronous=NORMAL
    (WAL is set by `prepare_database`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=30.0
    )
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


_COLUMNS = (
    "id, env, kind, target, user_id, workspace_id, state, reason, conversation_id, "
    "current_agent, pins, pools, max_turns, idle_timeout, preferences, priority, turns, "
    "input_tokens, output_tokens, created_at, last_activity_at, ended_at, escalation, "
    "router_state, features, config_hash"
)
_SELECT = (
    "SELECT "
    + ", ".join(f"s.{c.strip()}" for c in _COLUMNS.split(","))
    + ", c.config FROM rt_sessions s LEFT JOIN rt_session_config c ON c.hash = s.config_hash"
)
_CONFIG_CACHE = 1024


def _row_values(row: SessionRow, config_hash: str | None) -> tuple[Any, ...]:
    return (
        row.id,
        row.env,
        row.kind,
        row.target,
        row.user_id,
        row.workspace_id,
        row.state,
        row.reason,
        row.conversation_id,
        row.current_agent,
        json.dumps({k: list(v) for k, v in row.pins.items()}, separators=(",", ":")),
        json.dumps(row.pools, separators=(",", ":")),
        row.max_turns,
        row.idle_timeout,
        json.dumps(row.preferences, separators=(",", ":")),
        row.priority,
        row.turns,
        row.input_tokens,
        row.output_tokens,
        row.created_at,
        row.last_activity_at,
        row.ended_at,
        None if row.escalation is None else json.dumps(row.escalation),
        json.dumps(row.router_state, separators=(",", ":")),
        json.dumps(row.features, separators=(",", ":")),
        config_hash,
    )


def _row_from(v: tuple[Any, ...]) -> SessionRow:
    pins: Mapping[str, list[str]] = json.loads(v[10])
    return SessionRow(
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
        features=json.loads(v[24]),
        config={} if v[26] is None else json.loads(v[26]),
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


class SqliteSessionStore:
    """The `rt_sessions` table of the registry file (a `SessionStore`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = open_connection(self.path)
        migrate(self._conn, where=str(self.path))
        placeholders = ", ".join("?" * len(_COLUMNS.split(",")))
        self._insert = f"INSERT INTO rt_sessions ({_COLUMNS}) VALUES ({placeholders})"
        self._stored: set[str] = set()  # configuration hashes this store knows are in the file
        self._configs: dict[int, tuple[dict[str, Any], str, str]] = {}

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection, for other `rt_*` stores of the runtime to share: writes on a
        second connection would change `data_version()` and make the runtime re-read applied
        agents on every turn."""
        return self._conn

    def save(self, row: SessionRow) -> None:
        """Write a new session's row (and its configuration when the file lacks it, in the same
        transaction)."""
        if not row.config:
            self._conn.execute(self._insert, _row_values(row, None))
            return
        digest, text = self._config_text(row.config)
        if digest in self._stored:
            self._conn.execute(self._insert, _row_values(row, digest))
            return
        with write_transaction(self._conn) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO rt_session_config (hash, config) VALUES (?, ?)",
                (digest, text),
            )
            conn.execute(self._insert, _row_values(row, digest))
        if len(self._stored) >= _CONFIG_CACHE * 16:
            self._stored.clear()  # bounded: INSERT OR IGNORE keeps it correct without it
        self._stored.add(digest)

    def _config_text(self, config: dict[str, Any]) -> tuple[str, str]:
        """(sha256, JSON) of a configuration; the runtime hands the same configuration object to
        every session that has it, so its JSON is made once."""
        cached = self._configs.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1], cached[2]
        text = json.dumps(config, separators=(",", ":"), sort_keys=True)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if len(self._configs) >= _CONFIG_CACHE:
            self._configs.clear()
        self._configs[id(config)] = (config, digest, text)
        return digest, text

    def save_state(self, row: SessionRow) -> None:
        """Write what changes after creation (state change, end): one UPDATE, no JSON for the
        fields fixed at creation (pins, pools, preferences, features, configuration)."""
        self._conn.execute(_UPDATE_STATE, _state_values(row))

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

    def load(self, session_id: str) -> SessionRow | None:
        found = self._conn.execute(f"{_SELECT} WHERE s.id = ?", (session_id,)).fetchone()
        return None if found is None else _row_from(found)

    def load_open(self, env: str) -> list[SessionRow]:
        """Every session of `env` that has not ended."""
        rows = self._conn.execute(
            f"{_SELECT} WHERE s.env = ? AND s.state != 'ended' ORDER BY s.created_at", (env,)
        ).fetchall()
        return [_row_from(r) for r in rows]

    def data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
