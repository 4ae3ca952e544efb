"""The registry's SQLite file: a connection per call, and write transactions that queue.

Role in the flow: `SqliteRegistry` opens one `RegistryDatabase` and reads and writes through it;
the journal (`sqlite_journal`) and the apply lock (`sqlite_lock`) run their statements on the
connections it hands out.

Invariants: the file (and its folder) is created on first use, in WAL mode with the whole schema
(`runner.sqlitefile.prepare_database`, race-safe against other openers). A connection is opened
per call (so the registry is safe to share across threads and processes) with the busy timeout
and `synchronous=NORMAL`. A write is one transaction taken up front (`BEGIN IMMEDIATE`, so it
cannot deadlock), committed on exit and rolled back on any exception; in-process writers also
queue on a threading lock, cheaper than SQLite's sleeping busy handler when the executor's
threads record outcomes at the same moment.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.sqlitefile import prepare_database, write_transaction

__all__ = ["RegistryDatabase"]


class RegistryDatabase:
    """The registry's file: `connect()` to read, `write()` for one write transaction."""

    def __init__(self, path: Path, *, busy_timeout_ms: int, schema: str) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            prepare_database(conn, schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one call (autocommit), closed after it."""
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (`BEGIN IMMEDIATE`); committed on exit."""
        with self._write_lock, self.connect() as conn, write_transaction(conn) as tx:
            yield tx
