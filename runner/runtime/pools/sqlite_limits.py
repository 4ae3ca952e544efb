"""Pool limits in the registry file, shared by the runtime processes of one host.

Role: the `SharedLimits` backend when the Environment declares no `redis:` and the state is the
SQLite file (the default; `RUNNER_POOL_LIMITS=process` opts out): the same leases, waiting lines
and token windows as `RedisLimits`, in the tables of migration 6 of the registry's file
(`runner.state.sqlite_schema`: `pool_holders`, `pool_waiters`, `pool_tokens`), each operation
one `BEGIN IMMEDIATE` transaction, so every process that opens the file sees one set of counts.
Times come from the runtime's clock (one host: one clock; tests move it). Pools are keyed
`<env>/<pool>`.

Leases and places in the waiting lines expire on the runtime's clock, except this process's
own: before expired ones are deleted (only when a pool looks full), this process extends its
own, so a live process never loses its sessions' places whatever its clock says (a fake clock
in tests, or a heartbeat that has not run yet); a dead one's come back after `lease_ttl`.

What is batched, and why it stays within the limits:
  releases  a session's end is written with this process's next take (same transaction, so
            this process sees its own place free at once), or by a flush a few milliseconds
            later for the other processes. Late token counts (a reply settled after its
            allowance went back, or charged to a pool with no allowance) go the same way.
  places    in a roomy pool (limit >= 64, at most half full, nobody waiting) a take also
            takes 32 places *ahead*: leases under ids of this process, counted by every
            process at once, on which its next sessions start without a transaction for one
            second (a session's lease is then the place's row, renewed by the heartbeat). A
            place freed within that second serves the next session (at most 32 kept unused);
            unused places go back when the second is over. The rows never pass the limit (the
            places are only taken while half of the pool is free); another process may be
            refused up to 32 places per process early, for about a second.
  tokens    turns are admitted against per-pool *allowances* this process takes in the
            shared window (`runner.runtime.pools.sqlite_tokens`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import sqlite3
import uuid
from collections.abc import Mapping, Sequence

from runner.runtime.clock import Clock
from runner.runtime.pools.sqlite_tokens import SqliteTokenWindows
from runner.sqlitefile import write_transaction
from runner.state.sqlite_schema import migrate

__all__ = ["SqliteLimits"]

_RANK = 1e10
_FLUSH_DELAY_S = 0.005  # releases (and late counts) wait this long for a take to carry them
_SPARES = 32  # places taken ahead in a roomy pool (module docstring)
_SPARES_FROM = 64  # in pools of at least this limit
_SPARES_S = 1.0  # how long places taken ahead admit sessions


class SqliteLimits(SqliteTokenWindows):
    """`SharedLimits` on the registry file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock,
        namespace: str = "",
        lease_ttl: float = 30.0,
        connection: sqlite3.Connection | None = None,
    ) -> None:
        """`connection`: the runtime's own connection to the file (its session store's), so
        these writes are not seen as another's by `data_version()` (which would make the
        runtime re-read applied agents on every turn); closed by its owner, not here."""
        self.where = f"the registry {os.fspath(path)}"
        self._clock = clock
        self._ns = f"{namespace}/" if namespace else ""
        self._ttl = lease_ttl
        self._owns = connection is None
        if connection is None:
            connection = sqlite3.connect(
                os.fspath(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            connection.execute("PRAGMA synchronous = NORMAL")
        self._conn = connection
        migrate(self._conn, where=self.where)  # one read when the registry made the tables
        self._releases: dict[str, tuple[str, ...]] = {}
        # this process's leases and places in lines, by pool key: never expired by itself
        self._mine: dict[str, set[str]] = {}
        self._waiting: dict[str, set[str]] = {}
        self._flush: asyncio.TimerHandle | None = None
        # places taken ahead: pool key -> unused ids, until when they admit; holder -> used ones
        self._spare_prefix = f"~{uuid.uuid4().hex[:12]}:"
        self._spare_ids = itertools.count(1)
        self._spares: dict[str, list[str]] = {}
        self._spare_until: dict[str, float] = {}
        self._assigned: dict[str, dict[str, str]] = {}
        self._init_tokens()

    def _k(self, pool: str) -> str:
        return self._ns + pool

    # ------------------------------------------------------------ slots

    def _write_releases(self, c: sqlite3.Connection) -> None:
        for holder, keys in self._releases.items():
            for key in keys:
                c.execute("DELETE FROM pool_holders WHERE pool = ? AND holder = ?", (key, holder))
        self._releases.clear()

    def _flush_pending(self) -> None:
        """Write the releases and late token counts no transaction carried yet."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._releases or self._tokens_pending:
            with write_transaction(self._conn) as c:
                self._write_pending(c)

    def _write_pending(self, c: sqlite3.Connection) -> None:
        self._write_releases(c)
        if self._tokens_pending:
            self._write_late(c)

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush_pending()
            return
        self._flush = loop.call_later(_FLUSH_DELAY_S, self._flush_pending)

    async def take(
        self, holder: str, pools: Sequence[tuple[str, int]], *, rank: int, queue: bool
    ) -> str | None:
        now = self._clock.now()
        if holder in self._assigned or self._from_spares(holder, pools, now):
            return None
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            full = None
            queued = []
            roomy = []
            for name, limit in pools:
                key = self._k(name)
                self._drop_spares(c, key, now)
                used, ahead, mine, held = self._count(c, key, holder, rank)
                if held:
                    continue
                if used + ahead >= limit:  # expired leases and waiters leave, then recount
                    self._keep_mine(c, key, now)
                    c.execute(
                        "DELETE FROM pool_holders WHERE pool = ? AND expires <= ?", (key, now)
                    )
                    c.execute(
                        "DELETE FROM pool_waiters WHERE pool = ? AND expires <= ?", (key, now)
                    )
                    used, ahead, mine, held = self._count(c, key, holder, rank)
                    if held:
                        continue
                if mine is not None:
                    queued.append(key)
                if used + ahead >= limit:
                    full = name
                    break
                if limit >= _SPARES_FROM and not ahead and used + 1 + _SPARES <= limit // 2:
                    roomy.append(key)
            if full is None:
                if roomy and len(roomy) == len(pools):
                    self._take_spares(c, roomy, now)
                for name, _ in pools:
                    key = self._k(name)
                    c.execute(
                        "INSERT OR REPLACE INTO pool_holders VALUES (?, ?, ?)",
                        (key, holder, now + self._ttl),
                    )
                    self._mine.setdefault(key, set()).add(holder)
                for key in queued:
                    c.execute(
                        "DELETE FROM pool_waiters WHERE pool = ? AND holder = ?", (key, holder)
                    )
                    self._waiting.get(key, set()).discard(holder)
                return None
            if queue:
                for name, _ in pools:
                    self._waiting.setdefault(self._k(name), set()).add(holder)
                    c.execute(
                        "INSERT INTO pool_waiters VALUES (?, ?, ?, ?) ON CONFLICT (pool, holder) "
                        "DO UPDATE SET expires = excluded.expires",
                        (self._k(name), holder, rank * _RANK + now, now + self._ttl),
                    )
            return full

    def _from_spares(self, holder: str, pools: Sequence[tuple[str, int]], now: float) -> bool:
        """Hold `holder` on places taken ahead in every pool, without a transaction: False
        when a pool has none left (or they no longer admit)."""
        keys = [self._k(name) for name, _ in pools]
        for key in keys:
            if not self._spares.get(key) or self._spare_until.get(key, 0.0) <= now:
                return False
        self._assigned[holder] = {key: self._spares[key].pop() for key in keys}
        return True

    def _take_spares(self, c: sqlite3.Connection, keys: Sequence[str], now: float) -> None:
        """Take `_SPARES` places ahead in each of `keys` (pools at most half full, nobody
        waiting), usable for `_SPARES_S`; the next sessions of this process start on them."""
        for key in keys:
            ids = [f"{self._spare_prefix}{next(self._spare_ids)}" for _ in range(_SPARES)]
            c.executemany(
                "INSERT OR REPLACE INTO pool_holders VALUES (?, ?, ?)",
                [(key, sid, now + self._ttl) for sid in ids],
            )
            self._spares.setdefault(key, []).extend(ids)
            self._mine.setdefault(key, set()).update(ids)
            self._spare_until[key] = now + _SPARES_S
        with contextlib.suppress(RuntimeError):  # off the loop: the next take gives them back
            asyncio.get_running_loop().call_later(_SPARES_S * 1.05, self._return_spares)

    def _drop_spares(self, c: sqlite3.Connection, key: str, now: float) -> None:
        """Give back the unused places taken ahead in a pool once they no longer admit."""
        unused = self._spares.get(key)
        if unused and self._spare_until.get(key, 0.0) <= now:
            c.executemany(
                "DELETE FROM pool_holders WHERE pool = ? AND holder = ?",
                [(key, sid) for sid in unused],
            )
            self._mine.get(key, set()).difference_update(unused)
            unused.clear()

    def _return_spares(self) -> None:
        now = self._clock.now()
        if any(ids and self._spare_until[k] <= now for k, ids in self._spares.items()):
            with write_transaction(self._conn) as c:
                for key in list(self._spares):
                    self._drop_spares(c, key, now)

    def _keep_mine(self, c: sqlite3.Connection, key: str, now: float) -> None:
        """Extend this process's own leases and places in the pool's line before expired ones
        are deleted: a live process's sessions never expire for it, whatever its clock says
        (a fake one in tests, or a heartbeat that has not run yet)."""
        expires = now + self._ttl
        for table, holders in (("pool_holders", self._mine), ("pool_waiters", self._waiting)):
            mine = holders.get(key)
            if mine:
                c.executemany(
                    f"UPDATE {table} SET expires = ? WHERE pool = ? AND holder = ?",
                    [(expires, key, holder) for holder in mine],
                )

    @staticmethod
    def _count(
        c: sqlite3.Connection, key: str, holder: str, rank: int
    ) -> tuple[int, int, float | None, bool]:
        """(leases, waiters ahead of `holder`, its place in the line, whether it holds one):
        one statement, the take's only read when the pool has room."""
        row = c.execute(
            "SELECT (SELECT count(*) FROM pool_holders WHERE pool = :p), "
            "(SELECT count(*) FROM pool_waiters WHERE pool = :p AND score < coalesce("
            "(SELECT score FROM pool_waiters WHERE pool = :p AND holder = :h), :s)), "
            "(SELECT score FROM pool_waiters WHERE pool = :p AND holder = :h), "
            "EXISTS (SELECT 1 FROM pool_holders WHERE pool = :p AND holder = :h)",
            {"p": key, "h": holder, "s": (rank + 1) * _RANK},
        ).fetchone()
        return int(row[0]), int(row[1]), row[2], bool(row[3])

    async def leave(self, holder: str, pools: Sequence[str]) -> None:
        with write_transaction(self._conn) as c:
            for name in pools:
                key = self._k(name)
                c.execute("DELETE FROM pool_waiters WHERE pool = ? AND holder = ?", (key, holder))
                self._waiting.get(key, set()).discard(holder)

    async def release(self, holder: str, pools: Sequence[str]) -> None:
        self.release_soon(holder, pools)

    def release_soon(self, holder: str, pools: Sequence[str]) -> None:
        """Written with this process's next take, or a few milliseconds from now. A place
        taken ahead goes back to this process's unused ones while they admit."""
        assigned = self._assigned.pop(holder, None)
        if assigned is not None:
            now = self._clock.now()
            for key, sid in assigned.items():
                unused = self._spares.setdefault(key, [])
                if self._spare_until.get(key, 0.0) > now and len(unused) < _SPARES:
                    unused.append(sid)
                else:
                    self._releases[sid] = (key,)
                    self._mine.get(key, set()).discard(sid)
        else:
            keys = tuple(self._k(name) for name in pools)
            self._releases[holder] = (*self._releases.get(holder, ()), *keys)
            for key in keys:
                self._mine.get(key, set()).discard(holder)
        if self._releases and self._flush is None:
            self._schedule_flush()

    async def renew(self, holders: Mapping[str, Sequence[str]]) -> None:
        places = self._places(holders)
        expires = self._clock.now() + self._ttl
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            c.executemany(
                "INSERT OR REPLACE INTO pool_holders VALUES (?, ?, ?)",
                [(key, held_as, expires) for _, key, held_as in places],
            )
        for _, key, held_as in places:
            self._mine.setdefault(key, set()).add(held_as)

    async def extend(self, holders: Mapping[str, Sequence[str]]) -> list[str]:
        expires = self._clock.now() + self._ttl
        missing: set[str] = set()
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            for holder, key, held_as in self._places(holders):
                update = "UPDATE pool_holders SET expires = ? WHERE pool = ? AND holder = ?"
                if not c.execute(update, (expires, key, held_as)).rowcount:
                    missing.add(holder)
        return sorted(missing)

    def _places(self, holders: Mapping[str, Sequence[str]]) -> list[tuple[str, str, str]]:
        """(holder, pool key, id the place is held under) of each holder's places: a place
        taken ahead is held under its own id."""
        places = []
        for holder, pools in holders.items():
            assigned = self._assigned.get(holder, {})
            for name in pools:
                key = self._k(name)
                places.append((holder, key, assigned.get(key, holder)))
        return places

    async def held(self, pool: str) -> int:
        """Live leases of the pool, across every process (this one's own always live)."""
        key, now = self._k(pool), self._clock.now()
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            self._keep_mine(c, key, now)
            (count,) = c.execute(
                "SELECT count(*) FROM pool_holders WHERE pool = ? AND expires > ?", (key, now)
            ).fetchone()
        return int(count) - len(self._spares.get(key, ()))  # not this process's unused ones

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            self._give_back_all(c)
            for key in self._spare_until:
                self._spare_until[key] = -math.inf
                self._drop_spares(c, key, self._clock.now())
        if self._owns:
            self._conn.close()
