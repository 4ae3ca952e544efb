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

Every write after that is one `write_transaction`: the write lock taken up front (so two writers
never deadlock upgrading a read), committed when the block ends, rolled back when it raises.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def write_transaction(
    conn: sqlite3.Connection,
    *,
    refused: Callable[[sqlite3.OperationalError], Exception] | None = None,
) -> Iterator[sqlite3.Connection]:
    """One write transaction on `conn` (autocommit mode): `BEGIN IMMEDIATE`, which waits up to
    the busy timeout for the write lock, then the block, then COMMIT; ROLLBACK if the block
    raises. When the lock cannot be had, `refused(error)` is raised instead (when given)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if refused is None:
            raise
        raise refused(exc) from exc
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
