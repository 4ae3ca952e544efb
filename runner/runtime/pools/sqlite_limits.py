"""Pool limits in the registry file, shared by the runtime processes of one host.

Role: the `SharedLimits` backend of `RUNNER_POOL_LIMITS=host` (no `redis:` on the
Environment): the same leases, waiting lines and token windows as `RedisLimits`, in three
tables of the registry's SQLite file (`state.db`), each operation one `BEGIN IMMEDIATE`
transaction, so every process that opens the file sees one set of counts. Times come from the
runtime's clock (one host: one clock).

Tables: `pool_holders` (pool, holder, expires), `pool_waiters` (pool, holder, score =
rank * 1e10 + arrival, expires), `pool_tokens` (pool, id, at, tokens). Pools are keyed
`<env>/<pool>`.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Mapping, Sequence

from runner.runtime.clock import Clock
from runner.runtime.pools.shared import Blocked
from runner.runtime.pools.usage import TOKEN_WINDOW_S
from runner.sqlitefile import prepare_database, write_transaction

__all__ = ["SqliteLimits"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pool_holders (
  pool TEXT NOT NULL, holder TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (pool, holder));
CREATE TABLE IF NOT EXISTS pool_waiters (
  pool TEXT NOT NULL, holder TEXT NOT NULL, score REAL NOT NULL, expires REAL NOT NULL,
  PRIMARY KEY (pool, holder));
CREATE TABLE IF NOT EXISTS pool_tokens (
  pool TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, tokens INTEGER NOT NULL,
  PRIMARY KEY (pool, id));
CREATE INDEX IF NOT EXISTS pool_tokens_at ON pool_tokens (pool, at);
"""

_RANK = 1e10


class SqliteLimits:
    """`SharedLimits` on the registry file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock,
        namespace: str = "",
        lease_ttl: float = 30.0,
    ) -> None:
        self.where = f"the registry {os.fspath(path)}"
        self._clock = clock
        self._ns = f"{namespace}/" if namespace else ""
        self._ttl = lease_ttl
        self._conn = sqlite3.connect(
            os.fspath(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA synchronous = NORMAL")
        prepare_database(self._conn, _SCHEMA)

    def _k(self, pool: str) -> str:
        return self._ns + pool

    async def take(
        self, holder: str, pools: Sequence[tuple[str, int]], *, rank: int, queue: bool
    ) -> str | None:
        now = self._clock.now()
        with write_transaction(self._conn) as c:
            full = None
            for name, limit in pools:
                key = self._k(name)
                c.execute("DELETE FROM pool_holders WHERE pool = ? AND expires <= ?", (key, now))
                c.execute("DELETE FROM pool_waiters WHERE pool = ? AND expires <= ?", (key, now))
                if (
                    full is not None
                    or c.execute(
                        "SELECT 1 FROM pool_holders WHERE pool = ? AND holder = ?", (key, holder)
                    ).fetchone()
                ):
                    continue
                mine = c.execute(
                    "SELECT score FROM pool_waiters WHERE pool = ? AND holder = ?", (key, holder)
                ).fetchone()
                if mine is not None:
                    (ahead,) = c.execute(
                        "SELECT count(*) FROM pool_waiters WHERE pool = ? AND score < ?",
                        (key, mine[0]),
                    ).fetchone()
                else:
                    (ahead,) = c.execute(
                        "SELECT count(*) FROM pool_waiters WHERE pool = ? AND score < ?",
                        (key, (rank + 1) * _RANK),
                    ).fetchone()
                (used,) = c.execute(
                    "SELECT count(*) FROM pool_holders WHERE pool = ?", (key,)
                ).fetchone()
                if used + ahead >= limit:
                    full = name
            if full is None:
                for name, _ in pools:
                    key = self._k(name)
                    c.execute(
                        "INSERT OR REPLACE INTO pool_holders VALUES (?, ?, ?)",
                        (key, holder, now + self._ttl),
                    )
                    c.execute(
                        "DELETE FROM pool_waiters WHERE pool = ? AND holder = ?", (key, holder)
                    )
                return None
            if queue:
                for name, _ in pools:
                    key = self._k(name)
                    c.execute(
                        "INSERT INTO pool_waiters VALUES (?, ?, ?, ?) ON CONFLICT (pool, holder) "
                        "DO UPDATE SET expires = excluded.expires",
                        (key, holder, rank * _RANK + now, now + self._ttl),
                    )
            return full

    async def leave(self, holder: str, pools: Sequence[str]) -> None:
        with write_transaction(self._conn) as c:
            for name in pools:
                c.execute(
                    "DELETE FROM pool_waiters WHERE pool = ? AND holder = ?",
                    (self._k(name), holder),
                )

    async def release(self, holder: str, pools: Sequence[str]) -> None:
        with write_transaction(self._conn) as c:
            for name in pools:
                c.execute(
                    "DELETE FROM pool_holders WHERE pool = ? AND holder = ?",
                    (self._k(name), holder),
                )

    async def renew(self, holders: Mapping[str, Sequence[str]]) -> None:
        expires = self._clock.now() + self._ttl
        with write_transaction(self._conn) as c:
            for holder, pools in holders.items():
                for name in pools:
                    c.execute(
                        "INSERT OR REPLACE INTO pool_holders VALUES (?, ?, ?)",
                        (self._k(name), holder, expires),
                    )

    async def held(self, pool: str) -> int:
        (count,) = self._conn.execute(
            "SELECT count(*) FROM pool_holders WHERE pool = ? AND expires > ?",
            (self._k(pool), self._clock.now()),
        ).fetchone()
        return int(count)

    async def reserve(
        self, pools: Sequence[tuple[str, int]], tokens: int, *, estimate: int
    ) -> tuple[Blocked | None, str]:
        now = self._clock.now()
        cutoff = now - TOKEN_WINDOW_S
        reservation = uuid.uuid4().hex
        with write_transaction(self._conn) as c:
            for name, limit in pools:
                key = self._k(name)
                c.execute("DELETE FROM pool_tokens WHERE pool = ? AND at <= ?", (key, cutoff))
                (used,) = c.execute(
                    "SELECT coalesce(sum(tokens), 0) FROM pool_tokens WHERE pool = ?", (key,)
                ).fetchone()
                if estimate > limit:
                    return (name, limit, used, float("inf")), ""
                want = max(min(tokens, limit), 1)
                if used + want > limit:
                    need, freed, at = used + want - limit, 0, now
                    for when, size in c.execute(
                        "SELECT at, tokens FROM pool_tokens WHERE pool = ? ORDER BY at", (key,)
                    ):
                        freed += size
                        at = when + TOKEN_WINDOW_S
                        if freed >= need:
                            break
                    return (name, limit, used, max(0.0, at - now)), ""
            for name, _ in pools:
                c.execute(
                    "INSERT INTO pool_tokens VALUES (?, ?, ?, ?)",
                    (self._k(name), reservation, now, tokens),
                )
        return None, reservation

    async def settle(self, reservation: str, pools: Sequence[str], tokens: int) -> None:
        with write_transaction(self._conn) as c:
            for name in pools:
                c.execute(
                    "UPDATE pool_tokens SET tokens = ? WHERE pool = ? AND id = ?",
                    (tokens, self._k(name), reservation),
                )

    async def charge(self, pools: Sequence[str], tokens: int) -> None:
        now = self._clock.now()
        with write_transaction(self._conn) as c:
            for name in pools:
                c.execute(
                    "INSERT INTO pool_tokens VALUES (?, ?, ?, ?)",
                    (self._k(name), uuid.uuid4().hex, now, tokens),
                )

    async def close(self) -> None:
        self._conn.close()
