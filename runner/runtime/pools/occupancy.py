"""Pool figures of every process sharing the limits: occupancy read from the shared backend.

Role: `SharedPools.occupancy` (`runner.runtime.pools.shared`) for `PoolManager.figures`
(analytics, `/metrics`): each pool's leases and tokens in the 60 s window across every process,
read from the backend at most once every `OCCUPANCY_MAX_AGE_S` on the runtime's clock, in the
background, so the hot path never pays for it and a caller never waits. This process's own
counts (`own_counts`, set by `PoolManager`) are taken as they are now: the other processes'
as last read, plus this one's at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from runner.runtime.clock import Clock

__all__ = ["OCCUPANCY_MAX_AGE_S", "SharedOccupancy"]

log = logging.getLogger("runner.runtime.pools")
OCCUPANCY_MAX_AGE_S = 1.0  # pool figures read from the backend at most this often


class _Readable(Protocol):
    @property
    def where(self) -> str: ...

    async def held(self, pool: str) -> int: ...

    async def window(self, pool: str) -> list[tuple[float, int]]: ...


class SharedOccupancy:
    """(leases, tokens in the window) of each pool across every process (module docstring)."""

    def __init__(self, backend: _Readable, clock: Clock) -> None:
        self._backend = backend
        self._clock = clock
        # pool -> (leases, tokens) read from the backend, and this process's own at the read
        self._read: dict[str, tuple[int, int, int, int]] = {}
        # this process's own (sessions, tokens in its window) of a pool: set by PoolManager
        self.own_counts: Callable[[str], tuple[int, int]] = lambda pool: (0, 0)
        self._read_at = -math.inf  # the clock's monotonic() at the last read
        self._reading: asyncio.Task[None] | None = None

    def current(self, pools: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Each pool's (leases, tokens) across every process: the others' as last read, this
        process's as they are now; a read is started when the last is too old (a pool not read
        yet is absent)."""
        stale = self._clock.monotonic() - self._read_at > OCCUPANCY_MAX_AGE_S
        if stale and (self._reading is None or self._reading.done()) and pools:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._reading = loop.create_task(self._read_now(tuple(pools)))
        found = {}
        for pool, (held, tokens, own_held, own_tokens) in self._read.items():
            now_held, now_tokens = self.own_counts(pool)
            found[pool] = (
                max(held - own_held + now_held, now_held),
                max(tokens - own_tokens + now_tokens, now_tokens),
            )
        return found

    async def read(self, pools: Sequence[str]) -> None:
        """Read the backend now (tests; figures otherwise read it in the background)."""
        await self._read_now(tuple(pools))

    async def _read_now(self, pools: tuple[str, ...]) -> None:
        try:
            cutoff = self._clock.now() - 60.0
            for pool in pools:
                held = await self._backend.held(pool)
                tokens = sum(n for at, n in await self._backend.window(pool) if at > cutoff)
                self._read[pool] = (held, tokens, *self.own_counts(pool))
            self._read_at = self._clock.monotonic()
        except Exception as exc:
            log.warning("pool figures not read from %s: %s", self._backend.where, exc)

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
