"""The local store's SQLite file: one connection per thread, write transactions, pages.

Role in the flow: `LocalStore` opens one `StoreDatabase` and hands it to the two parts that keep
their tables in it, `local_agents.AgentVersions` and `local_conversations.Conversations`; they
read through `connection()`, write through `write()` and page listings with `fetch_page`.

Invariants:
- Each thread uses its own connection (autocommit; statements cached). In-process writers also
  share a lock, which is cheaper than SQLite's sleeping busy handler when threads contend.
- A write is one transaction that takes the write lock up front (`BEGIN IMMEDIATE`), so writers
  in threads or processes are serialised and never read a stale counter; it commits on exit and
  rolls back on any exception. A writer still blocked after the busy timeout gets
  `TransientError` (code `busy`).
- `synchronous=NORMAL` (the default) makes each commit durable against a crash of any process;
  `FULL` also against power loss, at about 20x the cost per write (an fsync each).
- After `close()` every connection this object opened is closed, and using it raises
  `ProviderError`.
- `read_only=True` (what `runner plan` uses) creates no file or folder and writes nothing: the
  file is opened read-only (immutable in a read-only folder without WAL files), and a store that
  does not exist yet reads as empty.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from runner.providers.base import ProviderError, TransientError
from runner.providers.local_records import Page
from runner.sqlitefile import prepare_database, write_transaction

__all__ = ["StoreDatabase", "Synchronous", "fetch_page"]

Synchronous = Literal["NORMAL", "FULL"]
T = TypeVar("T")


class _Connection(sqlite3.Connection):
    """A plain connection that can be weakly referenced (the base class cannot)."""


class StoreDatabase:
    """The local store's SQLite file, shared by threads and processes (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int,
        synchronous: Synchronous,
        schema: str,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_ms / 1000
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._closed = False
        self.read_only = read_only
        self._uri: str | None = None
        self._empty: _Connection | None = None
        if read_only:  # `runner plan`: create nothing, write nothing (see `_open_read_only`)
            if not self.path.is_file():  # no store yet: it holds no agents
                self._empty = sqlite3.connect(
                    ":memory:", isolation_level=None, check_same_thread=False, factory=_Connection
                )
                self._empty.executescript(schema)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.connection()
        prepare_database(conn, "")  # WAL, race-safe; the schema below also sets user_version
        with self.write() as tx:
            for statement in schema.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute("PRAGMA user_version=1")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise ProviderError(f"the local store {self.path} is closed")
        if self._empty is not None:
            return self._empty
        conn = self._open_read_only() if self.read_only else self._open(self.path, uri=False)
        if not self.read_only:
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        with self._connections_lock:
            self._connections.add(conn)
        self._local.conn = conn
        return conn

    def _open(self, target: str | Path, *, uri: bool) -> _Connection:
        return sqlite3.connect(
            target,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
            cached_statements=256,
            uri=uri,
        )

    def _open_read_only(self) -> _Connection:
        """The file read-only; immutable when its folder is read-only and WAL files are missing
        (SQLite cannot create them there)."""
        if self._uri is None:
            self._uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        conn = self._open(self._uri, uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.OperationalError as exc:
            conn.close()
            reason = str(exc).lower()
            if "immutable" in self._uri or not ("readonly" in reason or "unable to open" in reason):
                raise
            self._uri += "&immutable=1"
            conn = self._open(self._uri, uri=True)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from the start; committed on exit."""
        if self.read_only:
            raise ProviderError(f"the local store {self.path} was opened read-only (plan)")
        conn = self.connection()
        with self._write_lock, write_transaction(conn, refused=self._busy) as tx:
            yield tx

    def _busy(self, error: sqlite3.OperationalError) -> TransientError:
        """Another writer held the file beyond the busy timeout."""
        return TransientError(f"the local store {self.path} is busy: {error}", code="busy")

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            conn.close()
        if self._empty is not None:
            self._empty.close()
        self._local = threading.local()


def fetch_page(
    conn: sqlite3.Connection,
    sql: str,
    params: Sequence[Any],
    limit: int | None,
    convert: Callable[[Sequence[Any]], T],
) -> Page[T]:
    """The rows of `sql` as a Page of at most `limit` records (one more row is read to tell
    whether a further page exists)."""
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, limit + 1]
    rows = conn.execute(sql, params).fetchall()
    has_more = limit is not None and len(rows) > limit
    if has_more:
        rows = rows[:limit]
    return Page([convert(r) for r in rows], has_more)
