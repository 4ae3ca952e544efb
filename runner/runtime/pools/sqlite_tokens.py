"""Token windows of the registry's pool limits: allowances, so turns are admitted without a write.

Role: the token half of `SqliteLimits` (`runner.runtime.pools.sqlite_limits`, which it is a base
of: the connection, the pool keys and the batching of late writes are that class's). A pool's
60 s window is the rows of `pool_tokens` (migration 6 of the registry's schema) for that pool.

A turn is admitted against a per-pool *allowance* this process took from the shared window: a
row of `pool_tokens` counted in full by every process from the moment it is taken. It is at most
a 16th of the pool's limit (at least the turn's own reservation) and usable for `ALLOWANCE_S`;
its row is timed at the end of that period, so every token spent from it stays in the window
for 60 s at least. What was not spent goes back (the row shrinks) when the period ends, or at
the next allowance. An allowance that is one turn's exact reservation is used once and timed
now, as a plain reservation. Other processes see up to a 16th of the limit per process reserved
ahead for about a second. A turn is admitted when the window has room for its message (as in
one process); it reserves the larger of that and the largest recent turn.

Invariant: the sum of the rows in the last 60 s, which every admission checks, is at least what
was admitted in that window (a reply larger than its reservation is added when it is known,
as with Redis: one turn may end over the limit).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from runner.runtime.clock import Clock
from runner.runtime.pools.limits_backend import Blocked
from runner.runtime.pools.usage import TOKEN_WINDOW_S
from runner.sqlitefile import write_transaction

__all__ = ["ALLOWANCE_S", "SqliteTokenWindows"]

ALLOWANCE_S = 1.0  # how long an allowance admits turns
_SHARE = 16  # an allowance is at most limit / _SHARE (or the turn's own reservation)


@dataclass
class _Allowance:
    """Room this process took in a pool's window: `left` of it not yet admitted."""

    row: str
    until: float
    left: int
    returned: bool = False


class SqliteTokenWindows:
    """The token operations of `SharedLimits` on the registry file (module docstring)."""

    _clock: Clock
    _conn: sqlite3.Connection
    _flush: asyncio.TimerHandle | None

    def _k(self, pool: str) -> str:
        raise NotImplementedError

    def _write_pending(self, c: sqlite3.Connection) -> None:
        raise NotImplementedError

    def _schedule_flush(self) -> None:
        raise NotImplementedError

    def _init_tokens(self) -> None:
        self._ids = itertools.count(1)  # reservations: this process's own
        self._late: dict[tuple[str, str], int] = {}  # (pool key, row) -> tokens to add
        self._charges: list[tuple[str, float, int]] = []  # (pool key, at, tokens) to insert
        self._allowances: dict[str, _Allowance] = {}
        self._reservations: dict[str, list[tuple[str, _Allowance, int]]] = {}

    @property
    def _tokens_pending(self) -> bool:
        return bool(self._late or self._charges)

    def _give_back_all(self, c: sqlite3.Connection) -> None:
        for pool in list(self._allowances):
            self._give_back(c, pool)

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
