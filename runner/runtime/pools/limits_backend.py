"""What a backend of pool limits shared by several processes must do (the Protocols).

Role: `SharedPools` (`runner.runtime.pools.shared`) drives a `SharedLimits` backend: `RedisLimits`
for many hosts, `SqliteLimits` for the processes of one host. A backend may also offer
`LocalWrites` (writes recorded in this process first, written by its next transaction) and
`WakesWaiters` (it tells this process when a place another process freed is there for one of
its waiters); `SharedPools` uses them when they are there.

Invariants every backend keeps: operations are atomic across processes; a take is all or
nothing over its pools; a holder is held at most once per pool (leases keyed by its id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Blocked", "LocalWrites", "SharedLimits", "WakesWaiters"]

# (pool, limit, used, seconds until there is room: infinite when the turn alone is over it)
Blocked = tuple[str, int, int, float]


class SharedLimits(Protocol):
    """Slots with leases and token windows that several processes share (atomic operations)."""

    @property
    def where(self) -> str:
        """What the backend is, for messages (`redis://host:6379/0`, never credentials)."""
        ...

    async def take(
        self, holder: str, pools: Sequence[tuple[str, int]], *, rank: int, queue: bool
    ) -> str | None:
        """A slot in each (pool, limit) for `holder`, all or nothing: None when taken, else the
        first full pool. `queue`: stay in the pools' waiting lines (ranked by `rank`, then
        arrival) when refused; a holder ahead in a line is served before this one."""
        ...

    async def leave(self, holder: str, pools: Sequence[str]) -> None:
        """Leave the waiting lines (gave up, or timed out)."""
        ...

    async def release(self, holder: str, pools: Sequence[str]) -> None: ...

    async def renew(self, holders: Mapping[str, Sequence[str]]) -> None:
        """Extend (or take again, without checking the limit) the leases of live holders."""
        ...

    async def extend(self, holders: Mapping[str, Sequence[str]]) -> list[str]:
        """Extend the leases these holders still have, never taking one again; the holders
        that missed one (released by the process that ended the session, or lost: expired, a
        restarted server), for the caller to judge."""
        ...

    async def reserve(
        self, pools: Sequence[tuple[str, int]], tokens: int, *, estimate: int
    ) -> tuple[Blocked | None, str]:
        """Check every pool's window has room for `estimate` and, if so, reserve `tokens` in
        each: (None, reservation id) or (why not, "")."""
        ...

    async def settle(self, reservation: str, pools: Sequence[str], tokens: int) -> None:
        """Replace the reservation by the real count (0: drop it)."""
        ...

    async def charge(self, pools: Sequence[str], tokens: int) -> None:
        """Add tokens to the windows without a reservation."""
        ...

    async def held(self, pool: str) -> int:
        """How many leases the pool has now, across every process."""
        ...

    async def window(self, pool: str) -> list[tuple[float, int]]:
        """The (seconds since the epoch, tokens) entries of the pool's token window."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class LocalWrites(Protocol):
    """A `SharedLimits` backend whose releases and token counts are recorded in this process
    first and written by its next transaction (or soon after): `SharedPools` calls these on
    the spot instead of spawning a task per write (`SqliteLimits`)."""

    def release_soon(self, holder: str, pools: Sequence[str]) -> None: ...

    def settle_soon(self, reservation: str, pools: Sequence[str], tokens: int) -> None: ...

    def charge_soon(self, pools: Sequence[str], tokens: int) -> None: ...

    def reserve_now(
        self, pools: Sequence[tuple[str, int]], tokens: int, *, estimate: int
    ) -> str | None:
        """`reserve` when this process's own room answers it, without a transaction: the
        reservation id, or None (then `reserve` decides)."""
        ...


@runtime_checkable
class WakesWaiters(Protocol):
    """A `SharedLimits` backend that tells this process when a place freed by another process
    is there for one of its waiters (by holder id), so it need not wait for its next poll."""

    on_wake: Callable[[str], None] | None
