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
  tokens    a turn is admitted against a per-pool *allowance* this process took from the
            shared window: a row of `pool_tokens` counted in full by every process from the
            moment it is taken. It is at most a 16th of the pool's limit (at least the turn's
            own reservation) and usable for `ALLOWANCE_S`; its row is timed at the end of that
            period, so every token spent from it stays in the window for 60 s at least. What
            was not spent goes back (the row shrinks) when the period ends, or at the next
            allowance. An allowance that is one turn's exact reservation is used once and timed
            now, as a plain reservation. Other processes see up to a 16th of the limit per
            process reserved ahead for about a second.

Invariant: the sum of the rows in the last 60 s, which every admission checks, is at least what
was admitted in that window (a reply larger than its reservation is added when it is known,
as with Redis: one turn may end over the limit).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runner.runtime.clock import Clock
from runner.runtime.pools.shared import Blocked
from runner.runtime.pools.usage import TOKEN_WINDOW_S
from runner.sqlitefile import write_transaction
from runner.state.sqlite_schema import migrate

__all__ = ["ALLOWANCE_S", "SqliteLimits"]

_RANK = 1e10
ALLOWANCE_S = 1.0  # how long an allowance admits turns
_SHARE = 16  # an allowance is at most limit / _SHARE (or the turn's own reservation)
_FLUSH_DELAY_S = 0.005  # releases (and late counts) wait this long for a take to carry them


@dataclass
class _Allowance:
    """Room this process took in a pool's window: `left` of it not yet admitted."""

    row: str
    until: float
    left: int
    returned: bool = False


class SqliteLimits:
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
        self._ids = itertools.count(1)  # reservations: this process's own
        # this process's leases and places in lines, by pool key: never expired by itself
        self._mine: dict[str, set[str]] = {}
        self._waiting: dict[str, set[str]] = {}
        self._late: dict[tuple[str, str], int] = {}  # (pool key, row) -> tokens to add
        self._charges: list[tuple[str, float, int]] = []  # (pool key, at, tokens) to insert
        self._flush: asyncio.TimerHandle | None = None
        self._allowances: dict[str, _Allowance] = {}
        self._reservations: dict[str, list[tuple[str, _Allowance, int]]] = {}

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
        if self._releases or self._late or self._charges:
            with write_transaction(self._conn) as c:
                self._write_pending(c)

    def _write_pending(self, c: sqlite3.Connection) -> None:
        self._write_releases(c)
        if self._late or self._charges:
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

    # ------------------------------------------------------------ tokens

    def reserve_now(
        self, pools: Sequence[tuple[str, int]], tokens: int, *, estimate: int
    ) -> str | None:
        """A reservation from the allowances alone (no transaction), or None."""
        now = self._clock.now()
        taken = []
        for name, limit in pools:
            allowance = self._allowances.get(name)
            want = max(min(tokens, limit), 1)
            if estimate > limit or allowance is None or allowance.until <= now:
                return None
            if allowance.left < want:
                return None
            taken.append((name, allowance, want))
        for _, allowance, want in taken:
            allowance.left -= want
        reservation = str(next(self._ids))
        self._reservations[reservation] = taken
        return reservation

    async def reserve(
        self, pools: Sequence[tuple[str, int]], tokens: int, *, estimate: int
    ) -> tuple[Blocked | None, str]:
        now = self._clock.now()
        wants = [(name, limit, max(min(tokens, limit), 1)) for name, limit in pools]
        lacking = []
        for name, limit, want in wants:
            allowance = self._allowances.get(name)
            if (
                estimate > limit
                or allowance is None
                or allowance.until <= now
                or allowance.left < want
            ):
                lacking.append((name, limit, want))
        if lacking:
            blocked = self._take_allowances(lacking, estimate, now)
            if blocked is not None:
                return blocked, ""
        reservation = str(next(self._ids))
        taken = []
        for name, _, want in wants:
            allowance = self._allowances[name]
            allowance.left -= want
            taken.append((name, allowance, want))
            if allowance.left <= 0 and allowance.until <= now:  # a single-use allowance
                del self._allowances[name]
                allowance.returned = True
        self._reservations[reservation] = taken
        return None, reservation

    def _take_allowances(
        self, lacking: Sequence[tuple[str, int, int]], estimate: int, now: float
    ) -> Blocked | None:
        """Return what the old allowances of `lacking` did not admit, then take new ones (all
        or none): None, or why not."""
        cutoff = now - TOKEN_WINDOW_S
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            granted: list[tuple[str, int, int]] = []
            for name, limit, want in lacking:
                key = self._k(name)
                self._give_back(c, name)
                c.execute("DELETE FROM pool_tokens WHERE pool = ? AND at <= ?", (key, cutoff))
                (used,) = c.execute(
                    "SELECT coalesce(sum(tokens), 0) FROM pool_tokens WHERE pool = ?", (key,)
                ).fetchone()
                if estimate > limit:
                    return name, limit, used, float("inf")
                if used + max(estimate, 1) > limit:  # as in one process: room for the message
                    need, freed, at = used + max(estimate, 1) - limit, 0, now
                    for when, size in c.execute(
                        "SELECT at, tokens FROM pool_tokens WHERE pool = ? ORDER BY at", (key,)
                    ):
                        freed += size
                        at = when + TOKEN_WINDOW_S
                        if freed >= need:
                            break
                    return name, limit, used, max(0.0, at - now)
                granted.append((name, want, max(want, min(limit - used, limit // _SHARE))))
            for name, want, size in granted:
                row = uuid.uuid4().hex
                # a multi-turn allowance is timed at the end of its period (module docstring)
                until = now + ALLOWANCE_S if size > want else now
                c.execute(
                    "INSERT INTO pool_tokens VALUES (?, ?, ?, ?)", (self._k(name), row, until, size)
                )
                self._allowances[name] = _Allowance(row, until, size)
                if size > want:
                    self._schedule_return(name)
        return None

    def _give_back(self, c: sqlite3.Connection, pool: str) -> None:
        allowance = self._allowances.pop(pool, None)
        if allowance is None or allowance.returned:
            return
        allowance.returned = True
        if allowance.left != 0:  # negative: replies larger than their reservations
            c.execute(
                "UPDATE pool_tokens SET tokens = tokens - ? WHERE pool = ? AND id = ?",
                (allowance.left, self._k(pool), allowance.row),
            )

    def _schedule_return(self, pool: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        allowance = self._allowances[pool]
        loop.call_later(ALLOWANCE_S, self._return_if_current, pool, allowance)

    def _return_if_current(self, pool: str, allowance: _Allowance) -> None:
        if self._allowances.get(pool) is allowance:
            with write_transaction(self._conn) as c:
                self._write_pending(c)
                self._give_back(c, pool)

    async def settle(self, reservation: str, pools: Sequence[str], tokens: int) -> None:
        self.settle_soon(reservation, pools, tokens)

    def settle_soon(self, reservation: str, pools: Sequence[str], tokens: int) -> None:
        """A reply's real count replaces its reservation in `pools`: in the allowance it came
        from, or, when that went back already, in its row with the next transaction."""
        taken = self._reservations.get(reservation)
        if taken is None:
            return
        kept = []
        for name, allowance, reserved in taken:
            if name not in pools:
                kept.append((name, allowance, reserved))
            elif not allowance.returned:
                allowance.left += reserved - tokens
            elif tokens != reserved:
                key = (self._k(name), allowance.row)
                self._late[key] = self._late.get(key, 0) + tokens - reserved
        if kept:
            self._reservations[reservation] = kept
        else:
            del self._reservations[reservation]
        if self._late and self._flush is None:
            self._schedule_flush()

    def _write_late(self, c: sqlite3.Connection) -> None:
        for (key, row), delta in self._late.items():
            c.execute(
                "UPDATE pool_tokens SET tokens = max(tokens + ?, 0) WHERE pool = ? AND id = ?",
                (delta, key, row),
            )
        self._late.clear()
        for key, at, tokens in self._charges:
            c.execute(
                "INSERT INTO pool_tokens VALUES (?, ?, ?, ?)", (key, uuid.uuid4().hex, at, tokens)
            )
        self._charges.clear()

    async def charge(self, pools: Sequence[str], tokens: int) -> None:
        self.charge_soon(pools, tokens)

    def charge_soon(self, pools: Sequence[str], tokens: int) -> None:
        """Tokens a turn spent in pools it was not admitted in: from their allowances, else
        rows written with the next transaction."""
        now = self._clock.now()
        for name in pools:
            allowance = self._allowances.get(name)
            if allowance is not None and not allowance.returned and allowance.until > now:
                allowance.left -= tokens
            else:
                self._charges.append((self._k(name), now, tokens))
        if self._charges and self._flush is None:
            self._schedule_flush()

    async def window(self, pool: str) -> list[tuple[float, int]]:
        """The (seconds, tokens) rows of a pool's window, allowances counted in full."""
        cutoff = self._clock.now() - TOKEN_WINDOW_S
        rows = self._conn.execute(
            "SELECT at, tokens FROM pool_tokens WHERE pool = ? AND at > ? ORDER BY at",
            (self._k(pool), cutoff),
        ).fetchall()
        return [(float(at), int(tokens)) for at, tokens in rows]

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        with write_transaction(self._conn) as c:
            self._write_pending(c)
            for pool in list(self._allowances):
                self._give_back(c, pool)
        if self._owns:
            self._conn.close()
