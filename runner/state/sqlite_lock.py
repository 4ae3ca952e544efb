"""The apply lock in SQLite: the lock is a row per environment, a dead holder's taken over.

Role in the flow: `SqliteRegistry.lock` holds an environment's lock for a whole apply
(`SqliteApplyLock.hold`). Waiting, the takeover, the write fence and the holder row's
statements are `runner.state.apply_lock`'s; this module says only what SQLite decides: that the
row is the lock, and when its holder is gone.

Invariants:
  - The row is taken in one write transaction (`BEGIN IMMEDIATE`: one writer decides at a time)
    when there is none, or when its holder process is dead on this host ("dead" also covers a
    reused pid, told apart by the process start time stored in the row:
    `runner.state.processes`). A holder on another host is never judged dead.
  - Deleting the row lets the lock go, so an apply that fails while waiting out a dead
    holder's fence deletes its row like any other end of the block.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from runner.state.apply_lock import ApplyLock, Busy, HolderRows, Takeover
from runner.state.processes import process_alive, process_start_token
from runner.state.sql_dialect import SQLITE
from runner.state.sqlite_database import RegistryDatabase

__all__ = ["SqliteApplyLock"]

_ROWS = HolderRows(SQLITE, identity=("host", "pid", "pid_started"))
_HOLDER = "SELECT holder FROM registry_locks WHERE env = ?"


class _RegistryFile:
    """The lock rows of one registry file, each statement its own write transaction (a
    `LockSeat`: SQLite needs nothing held between them)."""

    def __init__(self, db: RegistryDatabase, wall_clock: Callable[[], float]) -> None:
        self._db = db
        self._wall_clock = wall_clock

    def try_acquire(self, env: str, *, holder: str, token: str) -> Takeover | Busy | None:
        host = socket.gethostname()
        pid = os.getpid()
        with self._db.write() as tx:
            row = tx.execute(_ROWS.previous, (env,)).fetchone()
            if row is not None:
                lock_host, lock_pid, pid_started = row[4:]  # its identity, after the fence
                started = None if pid_started is None else str(pid_started)
                if str(lock_host) != host or process_alive(int(lock_pid), start_token=started):
                    current = str(row[0])
                    return Busy(lambda: current)
            identity = (host, pid, process_start_token(pid))
            return _ROWS.replace(
                tx, env, row, holder=holder, token=token, identity=identity, at=self._wall_clock()
            )

    def execute(self, sql: str, params: Sequence[Any]) -> None:
        with self._db.write() as tx:
            tx.execute(sql, params)

    def release(self, env: str, token: str) -> None:
        self.execute(_ROWS.release, (env, token))

    def abandon(self, env: str, token: str) -> None:
        self.release(env, token)  # the row is the lock: it cannot stay without holding it


class SqliteApplyLock(ApplyLock[RegistryDatabase]):
    """The apply locks of one registry file (module docstring)."""

    rows = _ROWS

    def holder(self, env: str) -> str | None:
        """Who holds `env`'s lock now, or None."""
        with self._db.connect() as conn:
            row = conn.execute(_HOLDER, (env,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _seat(self) -> Iterator[_RegistryFile]:
        yield _RegistryFile(self._db, self._wall_clock)

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        with self._db.write() as tx:
            tx.execute(sql, params)
