"""Time for the runtime, injected: every timestamp, window, idle timeout and wait reads a Clock.

Role: sessions (idle expiry, turn timestamps), pools (the 60 s token window, waits for a free
slot), monitoring (alert windows, response times) and the sweeper all ask the Clock, never
`time` directly, so tests move time with `FakeClock.advance` and run instantly.

Invariants:
  - `now()` is seconds since the epoch (timestamps that are persisted and compared across
    processes); `monotonic()` only measures durations inside one process.
  - `FakeClock.sleep` returns once the fake time reached the deadline, i.e. after enough
    `advance` calls; it never sleeps for real (it yields to the event loop meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations only)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to: `advance(seconds)` (or `set(t)`)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = float(start)
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.set(self._t + seconds)

    def set(self, t: float) -> None:
        self._t = float(t)
        still: list[tuple[float, asyncio.Future[None]]] = []
        for deadline, fut in self._waiters:
            if fut.done():
                continue
            if deadline <= self._t:
                fut.set_result(None)
            else:
                still.append((deadline, fut))
        self._waiters = still

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._t + seconds, fut))
        await fut

    @property
    def sleepers(self) -> int:
        """How many `sleep` calls are waiting (tests wait for a waiter to be parked)."""
        return sum(1 for _, fut in self._waiters if not fut.done())
