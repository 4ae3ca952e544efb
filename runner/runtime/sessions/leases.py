"""Session leases: what lets any number of runtime instances share one store's sessions.

Role: the turn path (`Turns.send`), the session API's changes (end, pause, resume, waiting for a
person, decisions from outside a turn) and the idle sweeper (`SessionChanges.expire`) hold a
session's lease while they act on it (`SessionLeases.hold`, or `try_take` + `done` where waiting
is not an option). The store (`runner.state.sessions.SessionStore`) makes taking it atomic
across processes and hosts; this module waits for it, re-reads a copy another instance made
stale, renews the leases of long actions and gives leases back with the rows written.

Invariants:
  - While one instance acts on a session, another waits (`hold`) or skips it (`try_take`);
    in this instance, two actions on one session never overlap either.
  - A lease is given back with the row written in the same statement, so the next holder, on
    any instance, reads every completed turn and state change. An ended session's lease goes
    back with its final write (`LiveSessions.write_end`): one statement, nothing left for the
    write-behind pass to write again. A session only this instance
    uses keeps its lease between actions and gives it back in the next write-behind pass
    (`flush`, at most `AGENT_LIFECYCLE_PERSIST_INTERVAL_MS` later): consecutive turns cost no
    store write. A session another instance also uses (it waited for it, or wrote it since)
    is *shared*: its lease is given back the moment each action ends.
  - Leases run `session_lease_s`; a holder renews the ones it keeps, so only an instance that
    died (or stopped its background pass) lets them run out, and another takes them over.
    `background=False` runtimes (tests, benchmarks) call `flush()` themselves.
  - Leases use the wall clock (`time.time`), shared by processes, not the runtime's clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionStateError
from runner.runtime.sessions.table import LiveSession, LiveSessions
from runner.state.sessions import SessionRow, SessionStore

__all__ = ["SessionLeases"]

_POLL_S = 0.02
_SHARED_LIMIT = 100_000


class SessionLeases:
    """The leases one runtime instance holds on its store's sessions (module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        store: SessionStore,
        table: LiveSessions,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._table = table
        self._ttl = ctx.config.session_lease_s
        self._now = wall_clock
        self.held: dict[str, tuple[float, LiveSession]] = {}  # id -> (until, session)
        self.acting: set[str] = set()
        self.shared: set[str] = set()
        table.write_end = self._write_end

    @property
    def ttl(self) -> float:
        return self._ttl

    def new_lease(self) -> float:
        """Until when a session created now is held by its creator (`created`)."""
        return self._now() + self._ttl

    def created(self, live: LiveSession, until: float) -> None:
        """This instance wrote the new session with its lease (`SessionStore.save`)."""
        self.held[live.row.id] = (until, live)

    def _write_end(self, row: SessionRow) -> None:
        """An ended session's row: written with its lease given back when held here."""
        if self.held.pop(row.id, None) is None:
            self._store.save_state(row)
        else:
            self._store.release(row)

    def try_take(self, live: LiveSession) -> bool:
        """Take the session to act on it if nobody else is (re-reading a stale copy)."""
        sid = live.row.id
        if sid in self.acting:
            return False
        now = self._now()
        kept = self.held.get(sid)
        if kept is None or kept[0] - now < self._ttl / 2:
            lease = self._store.take_lease(sid, until=now + self._ttl)
            if lease is None:
                self._mark_shared(sid)  # another instance acts on it: give it back promptly
                return False
            self.held[sid] = (now + self._ttl, live)
            if lease.stale:
                self._mark_shared(sid)
                self._table.refresh(live, self._store.load(sid))
        self.acting.add(sid)
        return True

    def _mark_shared(self, sid: str) -> None:
        if len(self.shared) >= _SHARED_LIMIT:
            self.shared.clear()  # bounded; a session shared again is marked again
        self.shared.add(sid)

    def done(self, live: LiveSession) -> None:
        """The action ended: a shared session's lease goes back now (row written), another's at
        the next `flush`."""
        sid = live.row.id
        self.acting.discard(sid)
        if sid in self.shared and self.held.pop(sid, None) is not None:
            self._table.dirty.discard(sid)
            self._store.release(live.row)

    @asynccontextmanager
    async def hold(self, live: LiveSession, *, wait: float | None = None) -> AsyncIterator[None]:
        """Act on the session for the block, waiting while another action (here or on another
        instance) holds it: at most `wait` seconds, and at least a lease's length (so an
        instance that died holding it is waited out); `SessionStateError` after that."""
        limit = self._ttl + 5.0 if wait is None else max(wait, self._ttl + 5.0)
        started = time.monotonic()
        while not self.try_take(live):
            if time.monotonic() - started >= limit:
                raise SessionStateError(
                    live.row.id, live.row.state, "another runner instance is acting on it"
                )
            await asyncio.sleep(_POLL_S)
        try:
            yield
        finally:
            self.done(live)

    def flush(self) -> None:
        """Give back (rows written, one transaction) the leases kept between actions; renew those
        of actions still running."""
        if not self.held:
            return
        idle = [live for sid, (_, live) in self.held.items() if sid not in self.acting]
        if idle:
            for live in idle:
                self.held.pop(live.row.id, None)
                self._table.dirty.discard(live.row.id)
            self._store.release_many([live.row for live in idle])
        if self.held:
            now = self._now()
            until = now + self._ttl
            due = [sid for sid, (u, _) in self.held.items() if u - now < self._ttl / 2]
            if due:
                self._store.renew_leases(due, until=until)
                for sid in due:
                    self.held[sid] = (until, self.held[sid][1])

    def sync(self) -> int:
        """Drop the sessions another instance ended (held here in memory only); how many."""
        table = self._table
        idle = [sid for sid in table.live if sid not in self.held]
        if not idle:
            return 0
        dropped = 0
        for sid, state in self._store.written_elsewhere(idle).items():
            live = table.live.get(sid)
            if live is not None and state == "ended" and sid not in self.held:
                table.refresh(live, self._store.load(sid))
                dropped += 1
        return dropped
