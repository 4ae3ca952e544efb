"""Resource pools at run time: concurrent-session slots and token budgets.

Role: admission asks `acquire` before a session starts and the session table `release`s when
it ends; the turn path calls `admit_tokens` / `record_tokens` around each turn (see the package
docstring for what each limit means). Waiters for a slot are served by session priority
(`runner.spec.vocabulary.priority_rank`: urgent > high > medium/none > low), then arrival order.

With a `SharedPools` (`runner.runtime.pools.shared`: Redis or the registry), slots and token
windows are decided by the shared backend for every process; this process's counts still move
the same way (its figures, warnings and the fallback window while the backend is down).
Threshold warnings (`resource:warning`) are `runner.runtime.pools.thresholds`.

Invariants: counts only move under the event loop (no locks needed); a refused acquire takes
nothing; release never goes below zero; without a shared backend, limits are per process.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence

from runner.runtime.clock import Clock
from runner.runtime.errors import (
    AgentLimitError,
    PoolLimitError,
    SharedLimitsUnavailableError,
    TokenBudgetError,
)
from runner.runtime.pools.figures import PoolFigures, pool_figures
from runner.runtime.pools.shared import SharedPools, TokenTicket
from runner.runtime.pools.thresholds import Emit, PoolThresholds
from runner.runtime.pools.usage import PoolUsage
from runner.spec.models import ResourcePool
from runner.spec.vocabulary import priority_rank

__all__ = ["PoolManager"]

log = logging.getLogger("runner.runtime.pools")


class PoolManager:
    def __init__(
        self,
        *,
        clock: Clock,
        emit: Emit,
        default_session_limit: int | None,
        shared: SharedPools | None = None,
    ) -> None:
        self._clock = clock
        self.shared = shared
        if shared is not None:
            shared.occupancy.own_counts = self._own_counts
        self._thresholds = PoolThresholds(emit)
        self._pools: dict[str, PoolUsage] = {}
        self._by_agent: dict[str, tuple[str, ...]] = {}
        self._default_limit = default_session_limit
        self._agent_active: dict[str, int] = {}
        self._seq = itertools.count()
        self._limited_cache: dict[tuple[tuple[str, ...], str], list[tuple[str, int]]] = {}
        self._names_cache: dict[tuple[tuple[str, ...], str], tuple[str, ...]] = {}

    # ------------------------------------------------------------ configuration

    def configure(self, pools: Mapping[str, ResourcePool]) -> None:
        """Swap the pool specs; figures of pools that keep their name carry over."""
        states: dict[str, PoolUsage] = {}
        for name, spec in pools.items():
            state = self._pools.get(name) or PoolUsage(spec=spec)
            state.spec = spec
            states[name] = state
        self._pools = states
        self._limited_cache.clear()
        self._names_cache.clear()
        by_agent: dict[str, list[str]] = {}
        for name, spec in pools.items():
            for agent in spec.agents:
                by_agent.setdefault(agent, []).append(name)
        self._by_agent = {a: tuple(p) for a, p in by_agent.items()}
        for state in states.values():
            self._wake(state)

    def pools_of(self, agents: Iterable[str]) -> list[str]:
        """The pools (sorted, no repeats) that contain any of `agents`."""
        found: set[str] = set()
        for agent in agents:
            found.update(self._by_agent.get(agent, ()))
        return sorted(found)

    def pools_for(self, agent: str) -> tuple[str, ...]:
        """The pools that contain `agent` (the turn path: no set, no sort)."""
        return self._by_agent.get(agent, ())

    def names(self) -> list[str]:
        return list(self._pools)

    # ------------------------------------------------------------ session slots

    def _full(self, pools: Iterable[str]) -> PoolUsage | None:
        for name in pools:
            state = self._pools.get(name)
            if state is None:
                continue
            limit = state.spec.limits.max_concurrent_sessions
            if limit is not None and state.active >= limit:
                return state
        return None

    def _agent_full(self, agents: Iterable[str], pools: Iterable[str]) -> str | None:
        if self._default_limit is None:
            return None
        limited = {
            a
            for name in pools
            if (s := self._pools.get(name)) and s.spec.limits.max_concurrent_sessions
            for a in s.spec.agents
        }
        for agent in agents:
            if agent not in limited and self._agent_active.get(agent, 0) >= self._default_limit:
                return agent
        return None

    async def acquire(
        self,
        *,
        agents: Iterable[str],
        pools: list[str],
        wait: float | None = None,
        priority: str | None = None,
        holder: str | None = None,
    ) -> None:
        """Take one slot in each of `pools` (and per agent), all or nothing. `holder` (the
        session id) keys the lease when the limits are shared."""
        agents = list(agents)
        if self.shared is not None:
            await self._acquire_shared(agents, pools, wait, priority, holder)
            return
        deadline = None if not wait else self._clock.monotonic() + wait
        started = self._clock.monotonic()
        queued = False
        while True:
            full = self._full(pools)
            agent_full = None if full else self._agent_full(agents, pools)
            if full is None and agent_full is None:
                break
            if agent_full is not None:
                raise AgentLimitError(agent_full, self._default_limit or 0)
            assert full is not None
            remaining = None if deadline is None else deadline - self._clock.monotonic()
            if remaining is None or remaining <= 0:
                full.refused += 1
                limit = full.spec.limits.max_concurrent_sessions or 0
                waited = self._clock.monotonic() - started
                raise PoolLimitError(full.spec.name, limit, waited=waited)
            if not queued:
                full.waited += 1
                queued = True
            await self._wait_for_slot(full, remaining, priority)
        self._count(agents, pools, check=True)

    def _limited(self, pools: Iterable[str], what: str) -> list[tuple[str, int]]:
        """The (pool, limit) of `pools` that set `what` (remembered per pools tuple: the turn
        path asks for the same few on every turn; forgotten by `configure`)."""
        key = (tuple(pools), what)
        found = self._limited_cache.get(key)
        if found is None:
            found = []
            for name in key[0]:
                state = self._pools.get(name)
                limit = None if state is None else getattr(state.spec.limits, what)
                if limit is not None:
                    found.append((name, int(limit)))
            self._limited_cache[key] = found
        return found

    def _limited_names(self, pools: Sequence[str], what: str) -> tuple[str, ...]:
        """The names of `_limited(pools, what)` (remembered the same way)."""
        key = (tuple(pools), what)
        found = self._names_cache.get(key)
        if found is None:
            found = self._names_cache[key] = tuple(n for n, _ in self._limited(pools, what))
        return found

    async def _acquire_shared(
        self,
        agents: list[str],
        pools: list[str],
        wait: float | None,
        priority: str | None,
        holder: str | None,
    ) -> None:
        assert self.shared is not None
        agent_full = self._agent_full(agents, pools)
        if agent_full is not None:
            raise AgentLimitError(agent_full, self._default_limit or 0)
        slots = self._limited(pools, "max_concurrent_sessions")
        if slots:
            refused = await self.shared.acquire(
                holder or uuid.uuid4().hex, slots, rank=priority_rank(priority), wait=wait
            )
            if refused is not None:
                name, waited = refused
                state = self._pools[name]
                state.refused += 1
                if wait:
                    state.waited += 1
                limit = state.spec.limits.max_concurrent_sessions or 0
                raise PoolLimitError(name, limit, waited=waited)
        self._count(agents, pools, check=True)

    def _count(self, agents: Iterable[str], pools: Iterable[str], *, check: bool) -> None:
        for name in pools:
            state = self._pools.get(name)
            if state is not None:
                state.active += 1
                state.peak = max(state.peak, state.active)
                if check:
                    self._thresholds.sessions(state)
        for agent in agents:
            self._agent_active[agent] = self._agent_active.get(agent, 0) + 1

    async def _wait_for_slot(self, state: PoolUsage, timeout: float, priority: str | None) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (priority_rank(priority), next(self._seq), fut)
        heapq.heappush(state.waiters, entry)
        sleeper = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            await asyncio.wait({fut, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not fut.done():
                fut.cancel()
            if entry in state.waiters:
                state.waiters.remove(entry)
                heapq.heapify(state.waiters)

    def _wake(self, state: PoolUsage) -> None:
        while state.waiters:
            _, _, fut = heapq.heappop(state.waiters)
            if not fut.done():
                fut.set_result(None)
                return

    def occupy(
        self, *, agents: Iterable[str], pools: Iterable[str], holder: str | None = None
    ) -> None:
        """Count a session found at start-up (restart) without checking limits."""
        pools = list(pools)
        self._count(agents, pools, check=False)
        if self.shared is not None and holder is not None:
            self.shared.hold(
                holder, [n for n, _ in self._limited(pools, "max_concurrent_sessions")]
            )

    def release(
        self, *, agents: Iterable[str], pools: Iterable[str], holder: str | None = None
    ) -> None:
        pools = list(pools)
        if self.shared is not None and holder is not None:
            self.shared.release(
                holder, [n for n, _ in self._limited(pools, "max_concurrent_sessions")]
            )
        for name in pools:
            state = self._pools.get(name)
            if state is None:
                continue
            state.active = max(0, state.active - 1)
            self._thresholds.sessions(state)
            self._wake(state)
        for agent in agents:
            left = self._agent_active.get(agent, 0) - 1
            if left > 0:
                self._agent_active[agent] = left
            else:
                self._agent_active.pop(agent, None)

    def active(self, pool: str) -> int:
        state = self._pools.get(pool)
        return 0 if state is None else state.active

    # ------------------------------------------------------------ tokens

    def token_wait(
        self, pools: Iterable[str], *, estimate: int = 0
    ) -> tuple[str, int, int, float] | None:
        """None when every pool admits a turn whose input is about `estimate` tokens; else
        (pool, limit, used, seconds until it would: infinite when `estimate` alone is over the
        limit)."""
        now = self._clock.now()
        for name in pools:
            state = self._pools.get(name)
            if state is None:
                continue
            limit = state.spec.limits.max_tokens_per_minute
            if limit is None:
                continue
            wait = state.seconds_until_room(limit, estimate, now)
            if wait is not None:
                return name, limit, state.window_sum, wait
        return None

    async def admit_tokens(
        self, pools: Sequence[str], *, wait: float | None, estimate: int = 0
    ) -> TokenTicket | None:
        """Return when every pool has room for a turn of about `estimate` input tokens (waiting
        up to `wait` seconds); TokenBudgetError naming the pool, its limit and the estimate
        otherwise — before anything is sent. With shared limits, the room is reserved: pass
        the ticket to `record_tokens`."""
        if not pools:
            return None
        deadline = None if not wait else self._clock.monotonic() + wait
        limited = self._limited(pools, "max_tokens_per_minute") if self.shared else []
        while True:
            ticket = None
            if limited and self.shared is not None:
                try:
                    blocked, ticket = await self.shared.reserve(limited, estimate=estimate)
                except SharedLimitsUnavailableError as exc:
                    # A live session goes on: this process's own window decides meanwhile.
                    log.warning("%s; this turn is checked against this process's window", exc)
                    limited = []
                    continue
            else:
                blocked = self.token_wait(pools, estimate=estimate)
            if blocked is None:
                return ticket
            name, limit, used, retry_after = blocked
            remaining = None if deadline is None else deadline - self._clock.monotonic()
            if remaining is None or remaining < retry_after:
                self._pools[name].token_refusals += 1
                raise TokenBudgetError(name, limit, used, retry_after, estimate=estimate)
            await self._clock.sleep(max(retry_after, 0.001))

    def record_tokens(
        self, pools: Iterable[str], tokens: int, *, ticket: TokenTicket | None = None
    ) -> None:
        pools = list(pools)
        if self.shared is not None and (ticket is not None or tokens > 0):
            limited = self._limited_names(pools, "max_tokens_per_minute")
            self.shared.settle(ticket, limited, max(tokens, 0))
        if tokens <= 0:
            return
        now = self._clock.now()
        for name in pools:
            state = self._pools.get(name)
            if state is None:
                continue
            state.tokens_total += tokens
            if state.spec.limits.max_tokens_per_minute is None:
                continue
            state.window.append((now, tokens))
            state.window_sum += tokens
            state.trim(now)
            self._thresholds.tokens(state)

    async def close(self) -> None:
        """Close the shared backend (when there is one)."""
        if self.shared is not None:
            await self.shared.close()

    def sweep(self) -> None:
        """Slide token windows on the clock (re-arms warnings as old usage leaves)."""
        now = self._clock.now()
        for state in self._pools.values():
            state.trim(now)
            self._thresholds.tokens(state)

    # ------------------------------------------------------------ analytics

    def figures(self, name: str, *, auto_scaling: bool) -> PoolFigures:
        """The pool's figures; occupancy from the shared backend when there is one (as last
        read, at most a second old: `runner.runtime.pools.occupancy`)."""
        state = self._pools[name]
        state.trim(self._clock.now())
        if self.shared is None:
            return pool_figures(state, auto_scaling=auto_scaling)
        shared = self.shared.occupancy.current(self.names()).get(name)
        return pool_figures(
            state,
            auto_scaling=auto_scaling,
            shared=shared,
            counted_by=self.shared.scope,
            counted_in=self.shared.backend.where,
        )

    def _own_counts(self, name: str) -> tuple[int, int]:
        state = self._pools.get(name)
        return (0, 0) if state is None else (state.active, state.window_sum)

    def worst_utilization(self) -> float:
        worst = 0.0
        for name in self._pools:
            f = self.figures(name, auto_scaling=False)
            for u in (f["session_utilization"], f["token_utilization"]):
                if u is not None:
                    worst = max(worst, u)
        return worst
