"""The apply lock written once: bounded waiting, a dead holder's lock taken over, the write fence.

Role in the flow: the registry holds an environment's lock for a whole apply (`ApplyLock.hold`,
behind `Registry.lock`); the executor announces each remote write in the held row
(`write_started`/`write_finished`, the registry's `WriteFence`), so whoever takes a dead
holder's lock over knows how long a write it had on the wire may still land. Here, once: the
wait, the takeover, the fence and every statement on the holder row of `registry_locks`
(`HolderRows`, in the backend's dialect). A backend subclass gives only what truly differs:
what holds the lock and who holds it now (`runner.state.sqlite_lock`: the row itself, its
holder judged dead by pid on this host; `runner.state.pg_lock`: an advisory lock on a
connection of its own, the row only information), and how a statement reaches its database.

Invariants:
  - Waiting is bounded by `timeout`, then `LockTimeoutError` names the holder. Clock, wall
    clock and sleep are injected.
  - The holder's identity (holder text, host, pid, and what the backend adds) is its row, one
    per environment; a row left by a dead holder is replaced by the next holder's.
  - Write fence. A killed holder's last Foundry request may still be on the wire and land after
    the next apply has looked (create_version is not idempotent: that would be a duplicate
    version). So the holder records each remote write in its row before sending it
    (`write_started`: when, and its request timeout) and when an answer arrives
    (`write_finished`). Taking over a dead holder's row waits, before `hold` yields, until
    `last_write_started_at + request_timeout` has passed (0 when no write was in flight), with a
    one-line notice through `on_notice`. The fence is inherited by the new row until the wait is
    over, so a holder killed during its own wait passes it on.
  - The holder's row is deleted when the block ends, whatever way it ends.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from runner.state.base import LockTimeoutError
from runner.state.sql_dialect import SqlConnection, SqlDialect

__all__ = [
    "ApplyLock",
    "Busy",
    "HolderRows",
    "LockSeat",
    "Takeover",
]

_Database = TypeVar("_Database")  # what a backend reaches its database through

# no write in flight: last_write_started_at, request_timeout, writes_in_flight
_NO_FENCE: tuple[Any, Any, Any] = (None, 0.0, 0)


@dataclass(frozen=True)
class Takeover:
    """A lock taken over from a dead holder, and until when its last write may still land."""

    env: str
    dead_holder: str
    fence_until: float | None  # wall-clock time; None: no write was in flight

    def wait_seconds(self, now: float) -> float:
        return 0.0 if self.fence_until is None else max(0.0, self.fence_until - now)


@dataclass(frozen=True, slots=True)
class Busy:
    """Someone alive holds the lock; `describe()` says who (asked once waiting gives up)."""

    describe: Callable[[], str]


class HolderRows:
    """The statements on a holder's row of `registry_locks`, in one dialect.

    `identity` names the columns a backend describes its holder with besides the holder text
    (SQLite: host, pid, pid_started; PostgreSQL: host, pid, os_user); `previous` reads the
    holder text, the fence and then those columns."""

    def __init__(self, dialect: SqlDialect, *, identity: tuple[str, ...]) -> None:
        sql = dialect.sql
        who = ", ".join(identity)
        fence = "last_write_started_at, request_timeout, writes_in_flight"
        self.previous = sql(
            f"SELECT holder, {fence}, {who} FROM registry_locks WHERE env = ?{dialect.for_update}"
        )
        self._delete_any = sql("DELETE FROM registry_locks WHERE env = ?")
        written = f"env, holder, token, {who}, acquired_at, {fence}"  # `replace`'s values
        self._insert = sql(
            f"INSERT INTO registry_locks ({written}) "
            f"VALUES ({', '.join('?' for _ in written.split(','))})"
        )
        self.release = sql("DELETE FROM registry_locks WHERE env = ? AND token = ?")
        self.clear_fence = sql(
            "UPDATE registry_locks SET last_write_started_at = NULL, request_timeout = 0, "
            "writes_in_flight = 0 WHERE env = ? AND token = ?"
        )
        self.write_started = sql(
            "UPDATE registry_locks SET last_write_started_at = ?, "
            f"request_timeout = {dialect.greatest}(request_timeout, ?), "
            "writes_in_flight = writes_in_flight + 1 WHERE env = ? AND token = ?"
        )
        self.write_finished = sql(
            "UPDATE registry_locks SET "
            f"writes_in_flight = {dialect.greatest}(writes_in_flight - 1, 0) "
            "WHERE env = ? AND token = ?"
        )

    def replace(
        self,
        tx: SqlConnection,
        env: str,
        previous: Sequence[Any] | None,
        *,
        holder: str,
        token: str,
        identity: Sequence[Any],
        at: float,
    ) -> Takeover | None:
        """Write this holder's row in `tx` (the lock is this holder's now): a `Takeover`, with
        the dead holder's fence inherited, when a `previous` row (read with `previous`) was
        left by a holder that is gone."""
        takeover: Takeover | None = None
        fence = _NO_FENCE
        if previous is not None:
            dead, started, request_timeout, in_flight = previous[:4]
            fence_until = None
            if in_flight and started is not None:
                fence_until = float(started) + float(request_timeout or 0)
                fence = (started, request_timeout, in_flight)
            takeover = Takeover(env, str(dead), fence_until)
            tx.execute(self._delete_any, (env,))
        tx.execute(self._insert, (env, holder, token, *identity, at, *fence))
        return takeover


class LockSeat(Protocol):
    """What one `hold` holds the lock through (SQLite: the file; PostgreSQL: a connection of
    its own, on which the advisory lock lives)."""

    def try_acquire(self, env: str, *, holder: str, token: str) -> Takeover | Busy | None:
        """Take the lock now: None, or a `Takeover` of a dead holder's row; `Busy` when
        someone alive holds it."""
        ...

    def execute(self, sql: str, params: Sequence[Any]) -> None:
        """Run one statement on the held lock's row."""
        ...

    def release(self, env: str, token: str) -> None:
        """The block ended: delete this holder's row and let the lock go."""
        ...

    def abandon(self, env: str, token: str) -> None:
        """Waiting out a dead holder's fence failed (an exception, not a kill): let the lock go,
        keeping the dead holder's fence for the next holder where the backend can."""
        ...


class ApplyLock(ABC, Generic[_Database]):
    """The apply locks of one state database (module docstring); a subclass names its holder
    rows (`rows`) and says what holds the lock."""

    rows: ClassVar[HolderRows]

    def __init__(
        self,
        db: _Database,
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

    # ------------------------------------------------------------ what a backend gives

    @abstractmethod
    def holder(self, env: str) -> str | None:
        """Who holds `env`'s lock now, or None."""

    @abstractmethod
    def _seat(self) -> AbstractContextManager[LockSeat]:
        """What one `hold` holds the lock through, for the whole hold."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        """Run one statement at once (its own transaction)."""

    def _env_name(self, env: str) -> str:
        """`env` as the user names it (a backend may store it under a key)."""
        return env

    # ------------------------------------------------------------ holding

    @contextmanager
    def hold(self, env: str, *, holder: str, timeout: float) -> Iterator[None]:
        """Hold `env`'s apply lock for the block; LockTimeoutError naming the holder.

        Taking over from a dead holder first waits out its write fence (module docstring)."""
        token = uuid.uuid4().hex
        with self._seat() as seat:
            takeover = self._acquire(seat, env, holder=holder, token=token, timeout=timeout)
            try:
                if takeover is not None:
                    self._wait_out(seat, takeover, token=token)
            except BaseException:
                seat.abandon(env, token)
                raise
            self._held[env] = token
            try:
                yield
            finally:
                self._held.pop(env, None)
                seat.release(env, token)

    def _acquire(
        self, seat: LockSeat, env: str, *, holder: str, token: str, timeout: float
    ) -> Takeover | None:
        started = self._clock()
        while True:
            got = seat.try_acquire(env, holder=holder, token=token)
            if not isinstance(got, Busy):
                return got
            waited = self._clock() - started
            if waited >= timeout:
                raise LockTimeoutError(self._env_name(env), got.describe(), waited)
            self._sleep(min(self._poll, max(timeout - waited, 0.0)) or self._poll)

    def _wait_out(self, seat: LockSeat, takeover: Takeover, *, token: str) -> None:
        """Sleep until the dead holder's last write can no longer land, then drop its fence."""
        wait = takeover.wait_seconds(self._wall_clock())
        name = self._env_name(takeover.env)
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
            seat.execute(self.rows.clear_fence, (takeover.env, token))

    # ------------------------------------------------------------ the write fence

    def write_started(self, env: str, *, request_timeout: float) -> None:
        """Note in the held lock row that a remote write is about to be sent (see the module
        docstring); a no-op when this object does not hold `env`'s lock."""
        token = self._held.get(env)
        if token is None:
            return
        params = (self._wall_clock(), float(request_timeout), env, token)
        self._execute(self.rows.write_started, params)

    def write_finished(self, env: str) -> None:
        """Note that a write's answer arrived: it has landed (or was refused) for good."""
        token = self._held.get(env)
        if token is None:
            return
        self._execute(self.rows.write_finished, (env, token))
