"""Pool limits shared by several runtime processes: this process's side of the backend.

Role: `PoolManager` enforces `max_concurrent_sessions` and `max_tokens_per_minute` on its own
counts by default (the in-memory backend: one process, no shared state). Given a `SharedLimits`
backend (`runner.runtime.pools.limits_backend`: `RedisLimits` for many hosts, `SqliteLimits` for
the processes of one host), it asks the backend instead, through `SharedPools`, which keeps this
process's side of the bargain:

  slots    a session holds a *lease* in each of its pools, keyed by its session id, that a
           heartbeat of every process that knows the session open extends every `ttl / 3`; a
           process that dies stops extending and its places come back after `ttl`. Extending
           never writes a released place back: the process that ends a session (often not the
           one that admitted it, under `runner serve --workers`) releases its places for good,
           and the others drop the session at their next sweep. Places are *taken again* where
           they may have been lost: for a session found open (another process admitted it, or
           this one before a restart), and for each session whose place a heartbeat found
           missing (its lease expired, Redis restarted empty, or its session ended elsewhere);
           the session store is then asked which of them ended (`ended_elsewhere`), and those
           are given back at once. A caller that may wait enters the pools' waiting lines,
           ranked by session priority then arrival (the in-memory semantics, across
           processes). This process's own waiters are ranked the same way here: a slot it
           releases wakes the best of them in that pool, and a waiter that got its place wakes
           the next (room left by other processes' waiters is filled at once, and a release
           costs one refused take, not one per waiter). A backend that `WakesWaiters` (Redis)
           also tells this process when a place another process freed is there for one of
           its waiters; every waiter still retries every `poll` seconds (a lease that expired,
           a hint lost).
  tokens   a turn *reserves* tokens in each pool's sliding 60 s window when it is admitted (the
           larger of its estimate and the largest turn this process charged to the pool in the
           last window), atomically with the check, so processes admitting at the same moment
           cannot all spend the same room; the reply's real count replaces the reservation.

When the backend cannot be reached, admission fails closed (`SharedLimitsUnavailableError`
naming it: `runner serve` answers 503); sessions already admitted go on: their turns are
checked against this process's own window, their ends are retried by the heartbeat, and
their places are taken again when it is back.

Figures: `occupancy` (`runner.runtime.pools.occupancy`) gives each pool's leases and tokens in
the window across every process, for analytics and `/metrics`.

Invariants: a session id is held at most once per pool whatever the retries (leases are keyed
by it); a refused take leaves nothing held; a place released, here or by the process that
ended its session, is never extended back.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from runner.runtime.clock import Clock
from runner.runtime.errors import SharedLimitsUnavailableError
from runner.runtime.pools.limits_backend import Blocked, LocalWrites, SharedLimits, WakesWaiters
from runner.runtime.pools.occupancy import SharedOccupancy

__all__ = ["SharedPools", "TokenTicket"]

log = logging.getLogger("runner.runtime.pools")
T = TypeVar("T")


@dataclass
class TokenTicket:
    """What an admitted turn reserved: settled by `SharedPools.settle` when the reply came."""

    reservation: str
    pools: tuple[str, ...]
    reserved: int


@dataclass
class _Largest:
    """The largest turn charged to a pool recently (a window of one minute)."""

    value: int = 0
    at: float = field(default=0.0)


class SharedPools:
    """This process's side of a `SharedLimits` backend (see the module docstring)."""

    def __init__(
        self,
        backend: SharedLimits,
        *,
        clock: Clock,
        ttl: float = 30.0,
        poll: float = 0.05,
        scope: str = "hosts",
        ended_elsewhere: Callable[[Sequence[str]], Collection[str]] | None = None,
    ) -> None:
        """`ended_elsewhere(ids)`: which of these sessions another process ended (the session
        store says), asked after their places were taken again."""
        self.backend = backend
        self.scope = scope  # who shares the limits: "host" (the registry file) or "hosts"
        self._local = backend if isinstance(backend, LocalWrites) else None
        self._clock = clock
        self.ttl = ttl
        self.poll = poll
        self._holders: dict[str, tuple[str, ...]] = {}  # sessions held open here: extended
        self._to_take: dict[str, tuple[str, ...]] = {}  # of those, to take again
        self._ended_elsewhere = ended_elsewhere
        self._released: dict[str, tuple[str, ...]] = {}  # to retry while the backend is down
        self._largest: dict[str, _Largest] = {}
        # pool -> this process's waiters for a place in it: (rank, arrival, woken when freed)
        self._waiting: dict[str, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._arrivals = itertools.count()
        self._waiting_holders: dict[str, asyncio.Future[None]] = {}
        if isinstance(backend, WakesWaiters):
            backend.on_wake = self._wake_holder
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.occupancy = SharedOccupancy(backend, clock)  # the figures of every process

    # ------------------------------------------------------------ slots

    async def acquire(
        self,
        holder: str,
        pools: Sequence[tuple[str, int]],
        *,
        rank: int,
        wait: float | None,
    ) -> tuple[str, float] | None:
        """Hold `holder` in every pool: None, or (the full pool, seconds waited) when refused."""
        self._start()
        names = [name for name, _ in pools]
        started = self._clock.monotonic()
        deadline = None if not wait else started + wait
        queued = False
        arrival: int | None = None
        try:
            while True:
                full = await self._call(
                    self.backend.take(holder, pools, rank=rank, queue=bool(wait))
                )
                if full is None:
                    queued = False
                    self._holders[holder] = tuple(names)
                    if arrival is not None:  # it waited: there may be room for the next one too
                        self._wake(names)
                    return None
                queued = bool(wait)
                remaining = None if deadline is None else deadline - self._clock.monotonic()
                if remaining is None or remaining <= 0:
                    return full, self._clock.monotonic() - started
                if arrival is None:  # its place among this process's waiters: kept
                    arrival = next(self._arrivals)
                await self._wait_for_room(holder, names, (rank, arrival), remaining)
        finally:
            if queued:
                with contextlib.suppress(Exception):
                    await self.backend.leave(holder, names)

    async def _wait_for_room(
        self, holder: str, pools: Sequence[str], place: tuple[int, int], remaining: float | None
    ) -> None:
        """Until this process releases a place in one of `pools` and this caller is the best
        of its waiters there, or the backend says a place freed elsewhere is there for it, or
        `poll` seconds pass, or the wait's deadline, whichever is first."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        entry = (*place, woken)
        for name in pools:
            heapq.heappush(self._waiting.setdefault(name, []), entry)
        delay = self.poll if remaining is None else min(self.poll, remaining)
        timer = loop.call_later(delay, _resolve, woken)
        self._waiting_holders[holder] = woken
        try:
            await woken
        finally:
            timer.cancel()
            if self._waiting_holders.get(holder) is woken:
                del self._waiting_holders[holder]
            if not woken.done():
                woken.cancel()
            for name in pools:
                line = self._waiting.get(name)
                if line and entry in line:  # not popped by a wake: leave the line
                    line.remove(entry)
                    heapq.heapify(line)

    def _wake_holder(self, holder: str) -> None:
        woken = self._waiting_holders.get(holder)
        if woken is not None and not woken.done():
            woken.set_result(None)

    def _wake(self, pools: Sequence[str]) -> None:
        """A place was freed in each of `pools`: wake the best waiter of each."""
        for name in pools:
            line = self._waiting.get(name)
            while line:
                _, _, woken = heapq.heappop(line)
                if not woken.done():
                    woken.set_result(None)
                    break

    def hold(self, holder: str, pools: Sequence[str]) -> None:
        """Count a session found open (at start-up, or opened by another process): its places
        are taken again (soon, with the others found meanwhile) in case they expired, then
        extended like those of the sessions admitted here."""
        if not pools:
            return
        self._holders[holder] = self._to_take[holder] = tuple(pools)
        self._start()
        if len(self._to_take) == 1:
            self._spawn(self._take_again())

    async def _take_again(self) -> None:
        """Take again the places that may have been lost, then give back at once those of the
        sessions that ended elsewhere meanwhile (their ender released them before)."""
        batch, self._to_take = self._to_take, {}
        try:
            await self.backend.renew(batch)
        except Exception:  # the heartbeat tries again (those still held)
            again = {h: pools for h, pools in batch.items() if h in self._holders}
            self._to_take = {**again, **self._to_take}
            return
        try:
            ended = self._ended_elsewhere(list(batch)) if self._ended_elsewhere else ()
        except Exception as exc:  # the next sweep drops those that ended
            log.warning("could not tell which sessions ended elsewhere: %s", exc)
            return
        for holder in ended:
            if holder in self._holders:
                self.release(holder, batch[holder])

    def release(self, holder: str, pools: Sequence[str]) -> None:
        """Give the slots back (in the background; retried by the heartbeat when it fails)."""
        self._to_take.pop(holder, None)
        held = self._holders.pop(holder, None)
        names = tuple(pools) if held is None else held
        if not names:
            return
        if self._local is not None:
            self._local.release_soon(holder, names)
            self._wake(names)
            return
        self._spawn(self._release(holder, names))

    async def _release(self, holder: str, pools: tuple[str, ...]) -> None:
        try:
            await self.backend.release(holder, pools)
        except Exception as exc:
            log.warning(
                "could not release %s in %s (%s); retrying", holder, self.backend.where, exc
            )
            self._released[holder] = pools
        self._wake(pools)

    # ------------------------------------------------------------ tokens

    def expected(self, pool: str, estimate: int) -> int:
        largest = self._largest.get(pool)
        if largest is None or self._clock.now() - largest.at > 60.0:
            return estimate
        return max(estimate, largest.value)

    async def reserve(
        self, pools: Sequence[tuple[str, int]], *, estimate: int
    ) -> tuple[Blocked | None, TokenTicket | None]:
        tokens = estimate
        if self._largest:
            now = self._clock.now()
            for name, _ in pools:
                largest = self._largest.get(name)
                if largest is not None and now - largest.at <= 60.0 and largest.value > tokens:
                    tokens = largest.value
        if self._local is not None:
            local = self._local.reserve_now(pools, tokens, estimate=estimate)
            if local is not None:
                return None, TokenTicket(local, tuple(name for name, _ in pools), tokens)
        blocked, reservation = await self._call(
            self.backend.reserve(pools, tokens, estimate=estimate)
        )
        if blocked is not None:
            return blocked, None
        return None, TokenTicket(reservation, tuple(name for name, _ in pools), tokens)

    def settle(self, ticket: TokenTicket | None, pools: Sequence[str], tokens: int) -> None:
        """Replace a turn's reservation by its real count; pools it did not reserve in are
        charged the count (the answering agent's pools)."""
        now = self._clock.now()
        for name in pools:
            largest = self._largest.setdefault(name, _Largest())
            if tokens >= largest.value or now - largest.at > 60.0:
                largest.value, largest.at = tokens, now
        if ticket is not None and ticket.pools == tuple(pools):  # the common turn
            if self._local is not None:
                self._local.settle_soon(ticket.reservation, pools, tokens)
            else:
                self._spawn(self._quiet(self.backend.settle(ticket.reservation, pools, tokens)))
            return
        reserved = () if ticket is None else ticket.pools
        charged = [name for name in pools if name not in reserved]
        if ticket is not None:
            kept = [name for name in ticket.pools if name in pools]
            dropped = [name for name in ticket.pools if name not in pools]
            if self._local is not None:
                self._local.settle_soon(ticket.reservation, kept, tokens)
                if dropped:
                    self._local.settle_soon(ticket.reservation, dropped, 0)
            else:
                if kept:
                    self._spawn(self._quiet(self.backend.settle(ticket.reservation, kept, tokens)))
                if dropped:
                    self._spawn(self._quiet(self.backend.settle(ticket.reservation, dropped, 0)))
        if charged and tokens > 0:
            if self._local is not None:
                self._local.charge_soon(charged, tokens)
            else:
                self._spawn(self._quiet(self.backend.charge(charged, tokens)))

    # ------------------------------------------------------------ life

    def _start(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on the loop yet: the first acquire starts it
                return
            self._heartbeat = loop.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if self._released:
                    for holder, pools in list(self._released.items()):
                        await self.backend.release(holder, pools)
                        self._released.pop(holder, None)
                if self._holders:
                    for holder in await self.backend.extend(dict(self._holders)):
                        if holder in self._holders:  # ended elsewhere, or lost: the store says
                            self._to_take[holder] = self._holders[holder]
                if self._to_take:
                    await self._take_again()
            except Exception as exc:
                log.warning("pool leases not extended in %s: %s", self.backend.where, exc)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        """An admission call: any failure of the backend refuses, naming it."""
        try:
            return await awaitable
        except SharedLimitsUnavailableError:
            raise
        except Exception as exc:
            log.warning("pool limits unavailable in %s: %s", self.backend.where, exc)
            raise SharedLimitsUnavailableError(self.backend.where, exc) from exc

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet(self, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception as exc:
            log.warning("pool tokens not recorded in %s: %s", self.backend.where, exc)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop extending, finish the releases in flight, close the backend. Sessions still
        open keep their leases until they expire (or a process holding them extends them)."""
        self.occupancy.close()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            # bounded: a cancellation landing inside a client call may be swallowed
            await asyncio.wait({self._heartbeat}, timeout=2.0)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        for holder, pools in list(self._released.items()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.backend.release(holder, pools), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.backend.close(), 2.0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
