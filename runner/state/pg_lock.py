"""The apply lock in PostgreSQL: an advisory lock per environment, held by a connection of its own.

Role in the flow: `PostgresRegistry.lock` holds an environment's lock for a whole apply
(`PgApplyLock.hold`), whichever host the apply runs on; those who wait are told who holds it.

Invariants:
  - The lock is `pg_try_advisory_lock` on a key derived from the environment, taken on a
    dedicated connection (not a pooled one). PostgreSQL releases it the moment that connection
    ends, so a holder killed on any host (kill -9, a lost machine: once the server notices the
    connection is gone) frees the environment; nobody guesses from a pid.
  - The holder's identity (holder text, host, pid, OS user, since) is a row of `registry_locks`,
    written once the advisory lock is held and deleted when it is released. The row is only
    information and the write fence: who holds the lock is decided by the advisory lock alone,
    so a row left by a killed holder is simply replaced by the next one. `RUNNER_HOSTNAME`
    overrides the host shown (containers whose hostname says nothing).
  - Write fence (as in `runner.state.sqlite_lock`): the holder records each remote write in its
    row (`write_started`/`write_finished`); whoever takes the lock after a holder that died with
    a write on the wire waits until that write can no longer land, with a notice.
  - Waiting is bounded by `timeout`; then `LockTimeoutError` names the holder.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from runner.state.base import LockTimeoutError
from runner.state.pg_database import PgDatabase
from runner.state.sqlite_lock import Takeover

__all__ = ["PgApplyLock", "holder_host", "lock_key_text"]


def holder_host() -> str:
    """The host a lock holder reports: `RUNNER_HOSTNAME`, else the machine's name."""
    return os.environ.get("RUNNER_HOSTNAME") or socket.gethostname()


# The advisory lock key is hashed in SQL from the environment and the state's schema: advisory
# locks are per database, and one database may hold several states (a schema each).
_KEY = "hashtextextended('runner.apply:' || current_schema() || ':' || %s, 0)"


def lock_key_text(env: str) -> str:
    """The environment part of the text its advisory lock key is hashed from (with the
    state's schema, in SQL: `_KEY`)."""
    return env


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


def _describe(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "another apply (starting)"
    holder, host, pid, user, since = row
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(since)))
    who = f" user {user}," if user else ""
    return f"{holder} (host {host}, pid {pid},{who} since {when})"


class PgApplyLock:
    """The apply locks of one PostgreSQL state database (module docstring)."""

    def __init__(
        self,
        db: PgDatabase,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        sleep: Callable[[float], None],
        poll_interval: float,
        on_notice: Callable[[str], None] | None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._poll = poll_interval
        self._on_notice = on_notice
        self._held: dict[str, str] = {}  # env -> token of the lock this object holds

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
            row = conn.execute(
                "SELECT holder, host, pid, os_user, acquired_at FROM registry_locks WHERE env = %s",
                (env,),
            ).fetchone()
        return _describe(row)

    @contextmanager
    def hold(self, env: str, *, holder: str, timeout: float) -> Iterator[None]:
        """Hold `env`'s apply lock for the block; LockTimeoutError naming the holder."""
        conn = self._db.dedicated()
        token = uuid.uuid4().hex
        try:
            started = self._clock()
            key = lock_key_text(env)
            while True:
                got = conn.execute(f"SELECT pg_try_advisory_lock({_KEY})", (key,)).fetchone()
                if got is not None and got[0]:
                    break
                waited = self._clock() - started
                if waited >= timeout:
                    row = conn.execute(
                        "SELECT holder, host, pid, os_user, acquired_at FROM registry_locks "
                        "WHERE env = %s",
                        (env,),
                    ).fetchone()
                    raise LockTimeoutError(self._db.env_name(env), _describe(row), waited)
                self._sleep(min(self._poll, max(timeout - waited, 0.0)) or self._poll)
            takeover = self._claim(conn, env, holder=holder, token=token)
            if takeover is not None:
                self._wait_out(conn, takeover, token=token)
            self._held[env] = token
            try:
                yield
            finally:
                self._held.pop(env, None)
                conn.execute(
                    "DELETE FROM registry_locks WHERE env = %s AND token = %s", (env, token)
                )
                conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (key,))
        finally:
            conn.close()

    def _claim(self, conn: Any, env: str, *, holder: str, token: str) -> Takeover | None:
        """Write this holder's row (the lock is held); a `Takeover` when the previous holder's
        row is still there, i.e. it died holding the lock."""
        with conn.transaction():
            row = conn.execute(
                "SELECT holder, last_write_started_at, request_timeout, writes_in_flight "
                "FROM registry_locks WHERE env = %s FOR UPDATE",
                (env,),
            ).fetchone()
            takeover: Takeover | None = None
            fence: tuple[Any, Any, Any] = (None, 0.0, 0)
            if row is not None:
                dead, started, request_timeout, in_flight = row
                fence_until = None
                if in_flight and started is not None:
                    fence_until = float(started) + float(request_timeout or 0)
                    fence = (started, request_timeout, in_flight)
                takeover = Takeover(env, str(dead), fence_until)
                conn.execute("DELETE FROM registry_locks WHERE env = %s", (env,))
            conn.execute(
                "INSERT INTO registry_locks (env, holder, token, host, pid, os_user, acquired_at, "
                "last_write_started_at, request_timeout, writes_in_flight) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    env,
                    holder,
                    token,
                    holder_host(),
                    os.getpid(),
                    _os_user(),
                    self._wall_clock(),
                    *fence,
                ),
            )
        return takeover

    def _wait_out(self, conn: Any, takeover: Takeover, *, token: str) -> None:
        """Sleep until the dead holder's last write can no longer land, then drop its fence."""
        wait = takeover.wait_seconds(self._wall_clock())
        name = self._db.env_name(takeover.env)  # as the user names it, not its stored key
        if self._on_notice is not None:
            if wait > 0:
                self._on_notice(
                    f"runner: environment {name!r} was locked by {takeover.dead_holder}, "
                    f"which is no longer running; waiting {wait:.1f}s for a Foundry write it "
                    "had in flight to land before changing anything"
                )
            else:
                self._on_notice(
                    f"runner: environment {name!r} was locked by {takeover.dead_holder}, "
                    "which is no longer running; taking the lock over"
                )
        while wait > 0:
            self._sleep(wait)
            wait = takeover.wait_seconds(self._wall_clock())
        if takeover.fence_until is not None:
            conn.execute(
                "UPDATE registry_locks SET last_write_started_at = NULL, request_timeout = 0, "
                "writes_in_flight = 0 WHERE env = %s AND token = %s",
                (takeover.env, token),
            )

    def write_started(self, env: str, *, request_timeout: float) -> None:
        """Note in the held lock row that a remote write is about to be sent."""
        token = self._held.get(env)
        if token is None:
            return
        with self._db.connect() as conn:
            conn.execute(
                "UPDATE registry_locks SET last_write_started_at = %s, "
                "request_timeout = GREATEST(request_timeout, %s), "
                "writes_in_flight = writes_in_flight + 1 WHERE env = %s AND token = %s",
                (self._wall_clock(), float(request_timeout), env, token),
            )

    def write_finished(self, env: str) -> None:
        """Note that a write's answer arrived: it has landed (or was refused) for good."""
        token = self._held.get(env)
        if token is None:
            return
        with self._db.connect() as conn:
            conn.execute(
                "UPDATE registry_locks SET writes_in_flight = GREATEST(writes_in_flight - 1, 0) "
                "WHERE env = %s AND token = %s",
                (env, token),
            )
