"""The apply lock in PostgreSQL: an advisory lock per environment, held by a connection of its own.

Role in the flow: `PostgresRegistry.lock` holds an environment's lock for a whole apply
(`PgApplyLock.hold`), whichever host the apply runs on; those who wait are told who holds it.
Waiting, the takeover, the write fence and the holder row's statements are
`runner.state.apply_lock`'s; this module says only what PostgreSQL decides: the advisory lock,
and how its holder is described.

Invariants:
  - The lock is `pg_try_advisory_lock` on a key derived from the environment, taken on a
    dedicated connection (not a pooled one). PostgreSQL releases it the moment that connection
    ends, so a holder killed on any host (kill -9, a lost machine: once the server notices the
    connection is gone) frees the environment; nobody guesses from a pid.
  - The holder's identity (holder text, host, pid, OS user, since) is a row of `registry_locks`,
    written once the advisory lock is held and deleted when it is released. The row is only
    information and the write fence: who holds the lock is decided by the advisory lock alone,
    so a row found by whoever gets the lock was left by a dead holder and is replaced.
    `RUNNER_HOSTNAME` overrides the host shown (containers whose hostname says nothing).
  - An apply that fails while waiting out a dead holder's fence leaves that row (and its
    fence) for the next holder; closing its connection lets the advisory lock go.
  - Stored environment keys (`PROJECT#ENV`) are named as the user names them in messages.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from runner.state.apply_lock import ApplyLock, Busy, HolderRows, Takeover
from runner.state.pg_database import PgDatabase
from runner.state.sql_dialect import POSTGRESQL, SqlConnection

__all__ = ["PgApplyLock", "holder_host", "lock_key_text"]


def holder_host() -> str:
    """The host a lock holder reports: `RUNNER_HOSTNAME`, else the machine's name."""
    return os.environ.get("RUNNER_HOSTNAME") or socket.gethostname()


# The advisory lock key is hashed in SQL from the environment and the state's schema: advisory
# locks are per database, and one database may hold several states (a schema each).
_KEY = "hashtextextended('runner.apply:' || current_schema() || ':' || %s, 0)"
_ROWS = HolderRows(POSTGRESQL, identity=("host", "pid", "os_user"))
_DESCRIBE = "SELECT holder, host, pid, os_user, acquired_at FROM registry_locks WHERE env = %s"


def lock_key_text(env: str) -> str:
    """The environment part of the text its advisory lock key is hashed from (with the
    state's schema, in SQL: `_KEY`)."""
    return env


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


def _describe(conn: SqlConnection, env: str) -> str:
    row = conn.execute(_DESCRIBE, (env,)).fetchone()
    if row is None:
        return "another apply (starting)"
    holder, host, pid, user, since = row
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(since)))
    who = f" user {user}," if user else ""
    return f"{holder} (host {host}, pid {pid},{who} since {when})"


class _DedicatedConnection:
    """One hold's connection of its own, on which the advisory lock lives (a `LockSeat`)."""

    def __init__(self, conn: Any, wall_clock: Callable[[], float]) -> None:
        self._conn = conn
        self._wall_clock = wall_clock

    def try_acquire(self, env: str, *, holder: str, token: str) -> Takeover | Busy | None:
        conn = self._conn
        got = conn.execute(f"SELECT pg_try_advisory_lock({_KEY})", (lock_key_text(env),)).fetchone()
        if got is None or not got[0]:
            return Busy(lambda: _describe(conn, env))
        with conn.transaction():
            row = conn.execute(_ROWS.previous, (env,)).fetchone()
            identity = (holder_host(), os.getpid(), _os_user())
            return _ROWS.replace(
                conn, env, row, holder=holder, token=token, identity=identity, at=self._wall_clock()
            )

    def execute(self, sql: str, params: Sequence[Any]) -> None:
        self._conn.execute(sql, params)

    def release(self, env: str, token: str) -> None:
        self._conn.execute(_ROWS.release, (env, token))
        self._conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (lock_key_text(env),))

    def abandon(self, env: str, token: str) -> None:
        pass  # the row keeps the dead holder's fence; the connection's end frees the lock


class PgApplyLock(ApplyLock[PgDatabase]):
    """The apply locks of one PostgreSQL state database (module docstring)."""

    rows = _ROWS

    def holder(self, env: str) -> str | None:
        """Who holds `env`'s lock now (None when nobody does)."""
        with self._db.connect() as conn:
            free = conn.execute(
                # pg_locks lists every database's locks: only this database's count
                "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND database = (SELECT oid FROM pg_database WHERE datname = "
                f"current_database()) AND ((classid::bigint << 32) | objid::bigint) = {_KEY})",
                (lock_key_text(env),),
            ).fetchone()
            if free is not None and free[0]:
                return None
            return _describe(conn, env)

    @contextmanager
    def _seat(self) -> Iterator[_DedicatedConnection]:
        conn = self._db.dedicated()
        try:
            yield _DedicatedConnection(conn, self._wall_clock)
        finally:
            conn.close()

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        with self._db.connect() as conn:
            conn.execute(sql, params)

    def _env_name(self, env: str) -> str:
        return self._db.env_name(env)
