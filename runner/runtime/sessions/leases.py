"""Session leases: what lets any number of runtime instances share one store's sessions.

Role: the turn path (`Turns.send`), the session API's changes (end, pause, resume, waiting for a
person, decisions from outside a turn) and the idle sweeper (`SessionChanges.expire`) hold a
session's lease while they act on it (`SessionLeases.hold`, or `try_take` + `release` where
waiting is not an option). The store (`runner.state.sessions.SessionStore`) makes taking it
atomic across processes and hosts; this module waits for it, re-reads a copy another instance
made stale, renews the leases of long turns (`renew`, from the background pass) and writes
the row when the lease is given back.

Invariants:
  - Between two actions nobody holds a session: any instance serves any session (no sticky
    routing). While one instance acts on it, another waits (`hold`) or skips it (`try_take`).
  - What an action changed is written when its lease is released, in the same statement:
    the next holder, on any instance, reads every completed turn and state change.
  - A lease outlives an instance that died holding it by `session_lease_s`; then another
    instance takes the session over, with what was last written.
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
from runner.state.sessions import SessionStore

__all__ = ["SessionLeases"]

_POLL_S = 0.02


class SessionLeases:
    """The leases one runtime instance takes on its store's sessions (module docstring)."""

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
        self.held: set[str] = set()

    @property
    def ttl(self) -> float:
        return self._ttl

    def try_take(self, live: LiveSession) -> bool:
        """Take the lease if nobody else holds it (re-reading a stale copy); False otherwise."""
        sid = live.row.id
        if sid in self.held:
            return False  # this instance is acting on it already
        lease = self._store.take_lease(sid, until=self._now() + self._ttl)
        if lease is None:
            return False
        self.held.add(sid)
        if lease.stale:
            self._table.refresh(live, self._store.load(sid))
        return True

    def release(self, live: LiveSession) -> None:
        """Write the row and give the lease up (nothing written when it was lost meanwhile)."""
        row = live.row
        if row.id not in self.held:
            return
        self.held.discard(row.id)
        self._table.dirty.discard(row.id)
        self._store.release(row)

    @asynccontextmanager
    async def hold(self, live: LiveSession, *, wait: float | None = None) -> AsyncIterator[None]:
        """Hold the session's lease for the block, waiting while another instance acts on it
        (at most `wait` seconds, by default a lease's length: an instance that died holding it
        is waited out); `SessionStateError` after that."""
        limit = self._ttl + 5.0 if wait is None else max(wait, self._ttl + 5.0)
        started = time.monotonic()
        while not self.try_take(live):
            if time.monotonic() - started >= limit:
                raise SessionStateError(
                    live.row.id,
                    live.row.state,
                    "another runner instance is acting on it; try again",
                )
            await asyncio.sleep(_POLL_S)
        try:
            yield
        finally:
            self.release(live)

    def renew(self) -> None:
        """Move the leases held now (turns in progress) a lease's length ahead."""
        if self.held:
            self._store.renew_leases(list(self.held), until=self._now() + self._ttl)

    def sync(self) -> int:
        """Drop the sessions another instance ended (held here in memory, not acting on them);
        re-read lazily the others changed elsewhere. How many were dropped."""
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
