"""Sessions in the registry's SQLite file: the `rt_sessions` table, behind `SessionStore`.

Role: the SQLite backend of `runner.state.sessions_sql.SqlSessionStore` (statements, leases,
the configuration stored once, the reads live there): one connection, `?` placeholders,
environment names stored as they are. The runtime's composition root (`runner.runtime.assembly`)
opens it on the registry file and builds the operator store (`runner.state.operators_sqlite`) on
the same connection.

Invariants:
  - Only tables prefixed `rt_` are touched; the registry's tables are not read or written here.
  - A file made by an older runner gains what is newer on open (`runner.state.sqlite_schema`'s
    migrations), so its sessions keep working.
  - A session's effective configuration (`SessionRow.config`, fixed at creation, up to a few
    KiB with its structured inputs) is stored once per distinct configuration in
    `rt_session_config`, keyed by the sha256 of its JSON (`sessions_sql`); the session row holds
    that key, so it stays small (it is rewritten on every state change and counter flush) and a
    million sessions of a few configurations store a few configurations.
  - One connection per store, used from one thread (the event loop's); autocommit, WAL journal,
    synchronous=NORMAL (durable across process crashes, not across power loss), busy timeout so
    an apply in another process never makes a write fail.
  - `data_version()` changes when another connection (another process, or the registry in this
    one) committed to the file: the runtime re-reads applied agents only then. Stores of the
    runtime that share the file share this connection (`connection`), so their own writes do
    not count as another's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from runner.sqlitefile import write_transaction
from runner.state.sessions_sql import SqlSessionStore
from runner.state.sql_dialect import SQLITE, UNSCOPED
from runner.state.sqlite_schema import migrate

__all__ = ["ConnectionRunner", "SqliteSessionStore", "open_connection"]


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


class ConnectionRunner:
    """Statements on one SQLite connection (a `SqlRunner`): each at once (autocommit), a batch
    in one `BEGIN IMMEDIATE` transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        return self._conn.execute(sql, params).rowcount

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        return self._conn.execute(sql, params).fetchall()

    def execute_batches(self, batches: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        with write_transaction(self._conn) as tx:
            for sql, rows in batches:
                tx.executemany(sql, rows)


class SqliteSessionStore(SqlSessionStore):
    """The `rt_sessions` table of the registry file (a `SessionStore`)."""

    def __init__(
        self,
        path: str | Path,
        *,
        owner: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._conn = open_connection(self.path)
        migrate(self._conn, where=str(self.path))
        super().__init__(
            ConnectionRunner(self._conn),
            dialect=SQLITE,
            keys=UNSCOPED,
            owner=owner,
            wall_clock=wall_clock,
        )

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's connection, for other `rt_*` stores of the runtime to share: writes on a
        second connection would change `data_version()` and make the runtime re-read applied
        agents on every turn."""
        return self._conn

    def renew_leases(self, session_ids: Iterable[str], *, until: float) -> None:
        values = [(until, sid, self._owner) for sid in session_ids]
        if values:
            self._conn.executemany(
                "UPDATE rt_sessions SET lease_until = ? WHERE id = ? AND lease_owner = ?", values
            )

    def written_elsewhere(self, session_ids: Iterable[str]) -> dict[str, str]:
        ids = list(session_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for sid, state in self._conn.execute(
                f"SELECT id, state FROM rt_sessions WHERE id IN ({marks}) "
                "AND written_by IS NOT NULL AND written_by != ?",
                (*chunk, self._owner),
            ):
                out[str(sid)] = str(state)
        return out

    def data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
