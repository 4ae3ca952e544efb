"""Preparing a SQLite file that several processes may open at the same moment.

Every store runner keeps in SQLite (the registry, the runtime's tables, the local provider) calls
`prepare_database` once per connection it opens at start-up. Two things can fail at once, without
waiting on the busy timeout, when many processes open a fresh file together:
  - switching the file to WAL needs a lock another opener may hold;
  - a schema statement run in autocommit reads the schema, then needs the write lock; in WAL mode,
    if another process committed in between, SQLite answers SQLITE_BUSY_SNAPSHOT ("database is
    locked") at once instead of waiting.
So the schema runs in one transaction that takes the write lock up front (`BEGIN IMMEDIATE`, which
does wait), and both steps are retried briefly on a lock error. Invariant: after it returns, the
file is in WAL mode and holds the whole schema; nothing is half-created.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_LOCK_WORDS = ("locked", "busy")


def prepare_database(conn: sqlite3.Connection, schema: str, *, timeout_s: float = 30.0) -> None:
    """Put the file in WAL mode and create `schema` (idempotent DDL), safe against other openers.

    `conn` must be in autocommit mode (`isolation_level=None`)."""
    _retry_locked(conn, lambda: conn.execute("PRAGMA journal_mode=WAL").fetchall(), timeout_s)
    _retry_locked(
        conn, lambda: conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\n;COMMIT;"), timeout_s
    )


def _retry_locked(conn: sqlite3.Connection, action: Callable[[], T], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not any(word in str(exc).lower() for word in _LOCK_WORDS):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
