"""The apply lock in SQLite: one apply per environment, a dead holder's lock taken over safely.

Role in the flow: `SqliteRegistry.lock` holds an environment's lock for a whole apply
(`SqliteApplyLock.hold`); the executor announces each remote write in the held row
(`write_started`/`write_finished`, the registry's `WriteFence`), so whoever takes a dead
holder's lock over knows how long a write it had on the wire may still land.

Invariants:
  - The lock is a row per environment, taken with `BEGIN IMMEDIATE` (one writer decides at a
    time). A row whose holder process is dead on this host is stale and taken over; "dead" also
    covers a reused pid, told apart by the process start time stored in the row
    (`runner.state.processes`). Waiting is bounded by `timeout`, then `LockTimeoutError` names
    the holder. Clock, wall clock and sleep are injected.
  - Write fence. A killed holder's last Foundry request may still be on the wire and land after
    the next apply has looked (create_version is not idempotent: that would be a duplicate
    version). So the holder records each remote write in its row before sending it
    (`write_started`: when, and its request timeout) and when an answer arrives
    (`write_finished`). Taking over a dead holder's row waits, before `hold` yields, until
    `last_write_started_at + request_timeout` has passed (0 when no write was in flight), with a
    one-line notice through `on_notice`. The fence is inherited by the new row until the wait is
    over, so a holder killed during its own wait passes it on.
  - The lock row is deleted when the block ends, whatever way it ends.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from runner.state.base import LockTimeoutError
from runner.state.processes import process_alive, process_start_token
from runner.state.sqlite_database import RegistryDatabase

__all__ = ["SqliteApplyLock", "Takeover"]


@dataclass(frozen=True)
class Takeover:
    """A lock taken over from a dead holder, and until when its last write may still land."""

    env: str
    dead_holder: str
    fence_until: float | None  # wall-clock time; None: no write was in flight

    def wait_seconds(self, now: float) -> float:
        return 0.0 if self.fence_until is None else max(0.0, self.fence_until - now)


class SqliteApplyLock:
    """The apply locks of one registry file (module docstring)."""

    def __init__(
        self,
        db: RegistryDatabase,
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

    def _try_acquire(self, env: str, *, holder: str, token: str) -> str | Takeover | None:
        """Take the lock: None, or a `Takeover` when a dead holder's row was replaced; else the
        current (live) holder's description."""
        host = socket.gethostname()
        pid = os.getpid()
        takeover: Takeover | None = None
        fence: tuple[object, object, object] = (None, 0.0, 0)
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT holder, host, pid, pid_started, last_write_started_at, request_timeout, "
                "writes_in_flight FROM registry_locks WHERE env = ?",
                (env,),
            ).fetchone()
            if row is not None:
                current, lock_host, lock_pid = str(row[0]), str(row[1]), int(row[2])
                started = None if row[3] is None else str(row[3])
                if lock_host != host or process_alive(lock_pid, start_token=started):
                    return current
                write_started, request_timeout, in_flight = row[4], float(row[5] or 0), row[6]
                fence_until = None
                if in_flight and write_started is not None:
                    fence_until = float(write_started) + request_timeout
                    fence = (write_started, request_timeout, in_flight)
                takeover = Takeover(env, current, fence_until)
                conn.execute("DELETE FROM registry_locks WHERE env = ?", (env,))
            conn.execute(
                "INSERT INTO registry_locks (env, holder, token, host, pid, acquired_at, "
                "pid_started, last_write_started_at, request_timeout, writes_in_flight) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    env,
                    holder,
                    token,
                    host,
                    pid,
                    self._wall_clock(),
                    process_start_token(pid),
                    *fence,
                ),
            )
        return takeover

    def holder(self, env: str) -> str | None:
        """Who holds `env`'s lock now, or None."""
        with self._db.connect() as conn:
            row = conn.execute("SELECT holder FROM registry_locks WHERE env = ?", (env,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def hold(self, env: str, *, holder: str, timeout: float) -> Iterator[None]:
        """Hold `env`'s apply lock for the block; LockTimeoutError naming the holder.

        Taking over from a dead holder first waits out its write fence (module docstring)."""
        token = uuid.uuid4().hex
        started = self._clock()
        while True:
            current = self._try_acquire(env, holder=holder, token=token)
            if not isinstance(current, str):
                break
            waited = self._clock() - started
            if waited >= timeout:
                raise LockTimeoutError(env, current, waited)
            self._sleep(min(self._poll, max(timeout - waited, 0.0)) or self._poll)
        try:
            if current is not None:
                self._wait_out(current, token=token)
            self._held[env] = token
            yield
        finally:
            self._held.pop(env, None)
            with self._db.write() as conn:
                conn.execute("DELETE FROM registry_locks WHERE env = ? AND token = ?", (env, token))

    def _wait_out(self, takeover: Takeover, *, token: str) -> None:
        """Sleep until the dead holder's last write can no longer land, then drop its fence."""
        wait = takeover.wait_seconds(self._wall_clock())
        if self._on_notice is not None:
            if wait > 0:
                self._on_notice(
                    f"runner: environment {takeover.env!r} was locked by {takeover.dead_holder}, "
                    f"which is no longer running; waiting {wait:.1f}s for a Foundry write it "
                    "had in flight to land before changing anything"
                )
            else:
                self._on_notice(
                    f"runner: environment {takeover.env!r} was locked by {takeover.dead_holder}, "
                    "which is no longer running; taking the lock over"
                )
        while wait > 0:
            self._sleep(wait)
            wait = takeover.wait_seconds(self._wall_clock())
        if takeover.fence_until is not None:
            with self._db.write() as conn:
                conn.execute(
                    "UPDATE registry_locks SET last_write_started_at = NULL, request_timeout = 0, "
                    "writes_in_flight = 0 WHERE env = ? AND token = ?",
                    (takeover.env, token),
                )

    def write_started(self, env: str, *, request_timeout: float) -> None:
        """Note in the held lock row that a remote write is about to be sent (see the module
        docstring); a no-op when this object does not hold `env`'s lock."""
        token = self._held.get(env)
        if token is None:
            return
        with self._db.write() as conn:
            conn.execute(
                "UPDATE registry_locks SET last_write_started_at = ?, "
                "request_timeout = MAX(request_timeout, ?), "
                "writes_in_flight = writes_in_flight + 1 WHERE env = ? AND token = ?",
                (self._wall_clock(), float(request_timeout), env, token),
            )

    def write_finished(self, env: str) -> None:
        """Note that a write's answer arrived: it has landed (or was refused) for good."""
        token = self._held.get(env)
        if token is None:
            return
        with self._db.write() as conn:
            conn.execute(
                "UPDATE registry_locks SET writes_in_flight = MAX(writes_in_flight - 1, 0) "
                "WHERE env = ? AND token = ?",
                (env, token),
            )
