"""The registry's SQLite file: a connection per call, and write transactions that queue.

Role in the flow: `SqliteRegistry` opens one `RegistryDatabase` and reads and writes through it
(the statements are `registry_sql`'s); the apply lock (`sqlite_lock`) runs its statements on the
connections it hands out.

Invariants: every SQLite or OS error on the file is a `StateFileError` naming it
(`runner.state.errors`); a read-only database (`read_only=True`) creates and writes nothing.
Otherwise the file (and its folder) is created on first use, in WAL mode with the whole schema at
its newest version (`runner.state.sqlite_schema.migrate`, race-safe against other openers). A
read opens a connection for the call (so reads are safe to share across threads and processes),
with the busy timeout and `synchronous=NORMAL`. A write is one transaction taken up front
(`BEGIN IMMEDIATE`, so it cannot deadlock), committed on exit and rolled back on any exception.
In-process writers queue on a threading lock (cheaper than SQLite's sleeping busy handler when
the executor's threads record outcomes at the same moment) and, since they take turns anyway,
share one writer connection kept between writes: opening and configuring a connection was
nearly all of a write's cost, and an apply makes three writes per operation. The kept one is
dropped after a failed write, in a forked child, and when the path no longer names the file it
was opened on (a replaced file is written, as before, never the old one); `close()` closes it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from runner.sqlitefile import write_transaction
from runner.state.errors import state_file_errors
from runner.state.sqlite_schema import migrate

__all__ = ["RegistryDatabase"]


class RegistryDatabase:
    """The registry's file: `connect()` to read, `write()` for one write transaction.

    `read_only=True` (what `runner plan` uses) creates nothing and opens the file read-only
    (immutable when its folder is read-only and the WAL files are missing); `exists` tells
    whether there is a file at all. Every SQLite or OS error on the file is a
    `StateFileError` naming it (`runner.state.errors`)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._busy_timeout_ms = busy_timeout_ms
        self._write_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None  # used only under _write_lock
        self._writer_file: tuple[int, int, int] | None = None  # (pid, st_dev, st_ino) it writes
        self._immutable = False
        if read_only:
            return
        with state_file_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            migrate(conn, where=str(path))

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def _open(self) -> sqlite3.Connection:
        timeout = self._busy_timeout_ms / 1000
        if not self.read_only:
            # not bound to its thread: the writer connection serves whichever thread holds the lock
            return sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        if not self.path.is_file():
            raise sqlite3.OperationalError("unable to open database file (no such file)")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(
                uri + ("&immutable=1" if self._immutable else ""),
                uri=True,
                timeout=timeout,
                isolation_level=None,
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            return conn
        except sqlite3.OperationalError as exc:
            # WAL needs its -shm file: in a read-only folder without one, read the file as is
            reason = str(exc).lower()
            if self._immutable or ("unable to open" not in reason and "readonly" not in reason):
                raise
            self._immutable = True
            return self._open()

    def _open_configured(self) -> sqlite3.Connection:
        conn = self._open()
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            if not self.read_only:
                conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one call (autocommit), closed after it."""
        with state_file_errors(self.path):
            conn = self._open_configured()
            try:
                yield conn
            finally:
                conn.close()

    def _file(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (os.getpid(), stat.st_dev, stat.st_ino)

    def _writer_connection(self) -> sqlite3.Connection:
        """The kept writer connection, (re)opened when missing or stale (under _write_lock)."""
        current = self._file()
        if self._writer is not None and (current is None or current != self._writer_file):
            if self._writer_file is not None and self._writer_file[0] == os.getpid():
                self._writer.close()  # a forked child never touches its parent's connection
            self._writer = self._writer_file = None
        if self._writer is None:
            self._writer = self._open_configured()
            self._writer_file = self._file()
        return self._writer

    def _drop_writer(self) -> None:
        writer, self._writer, self._writer_file = self._writer, None, None
        if writer is not None:
            writer.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (`BEGIN IMMEDIATE`); committed on exit."""
        if self.read_only:
            raise RuntimeError(f"{self.path} was opened read-only")
        with self._write_lock, state_file_errors(self.path):
            conn = self._writer_connection()
            try:
                with write_transaction(conn) as tx:
                    yield tx
            except BaseException:
                self._drop_writer()  # whatever state the failure left it in goes with it
                raise

    def close(self) -> None:
        """Close the kept writer connection (a later write opens another)."""
        with self._write_lock:
            self._drop_writer()
