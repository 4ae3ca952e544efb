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
  tokens    turns are admitted against per-pool *allowances* this process takes in the
            shared window (`runner.runtime.pools.sqlite_tokens`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Mapping, Sequence

from runner.runtime.clock import Clock
from runner.runtime.pools.sqlite_tokens import SqliteTokenWindows
from runner.sqlitefile import write_transaction
from runner.state.sqlite_schema import migrate

__all__ = ["SqliteLimits"]

_RANK = 1e10
_FLUSH_DELAY_S = 0.005  # releases (and late counts) wait this long for a take to carry them


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
        self._init_tokens()

    def _k(self, pool: str) -> str:
        return self._ns + pool

    # ------------------------------------------------------------ slots

    def _write_releases(self, c: sqlite3.Connection) -> None:
        for holder, pools in self._releases.items():
            for name in pools:
                c.execute(
                    "DELETE FROM pool_holders WHERE pool = ? AND holder = ?",
                    (self._k(name), holder),
                )
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
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            full = None
            queued = []
            for name, limit in pools:
                key = self._k(name)
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
            if full is None:
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
        """Written with this process's next take, or a few milliseconds from now."""
        self._releases[holder] = (*self._releases.get(holder, ()), *pools)
        for name in pools:
            self._mine.get(self._k(name), set()).discard(holder)
        if self._flush is None:
            self._schedule_flush()

    async def renew(self, holders: Mapping[str, Sequence[str]]) -> None:
        expires = self._clock.now() + self._ttl
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            for holder, pools in holders.items():
                for name in pools:
                    key = self._k(name)
                    c.execute(
                        "INSERT OR REPLACE INTO pool_holders VALUES (?, ?, ?)",
                        (key, holder, expires),
                    )
                    self._mine.setdefault(key, set()).add(holder)

    async def held(self, pool: str) -> int:
        """Live leases of the pool, across every process (this one's own always live)."""
        key, now = self._k(pool), self._clock.now()
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            self._keep_mine(c, key, now)
            (count,) = c.execute(
                "SELECT count(*) FROM pool_holders WHERE pool = ? AND expires > ?", (key, now)
            ).fetchone()
        return int(count)

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            self._give_back_all(c)
        if self._owns:
            self._conn.close()
