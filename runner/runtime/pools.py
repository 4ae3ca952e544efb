"""Resource pools at runtime: concurrent-session slots, token budgets and threshold warnings.

Role: `Lifecycle` asks `acquire` before a session starts and `release` when it ends, and
`admit_tokens` / `record_tokens` around each turn. What a `ResourcePool` limit means here:

  enforced   max_concurrent_sessions  a session holds one slot in every pool that contains one
                                      of its agents (a team session: any member) from creation to
                                      end. Full pool: `PoolLimitError(pool, limit)`, or with
                                      `wait=` a queue served by session priority
                                      (urgent > high > medium/none > low), then arrival order.
             max_tokens_per_minute    a sliding 60 s window (injected clock) of the tokens replies
                                      reported, charged to the pools of the answering agent. A
                                      turn is admitted while the window is under the limit (a
                                      reply's size is only known afterwards, so one turn may end
                                      over it); otherwise `TokenBudgetError(retry_after)`, or with
                                      `wait=` the send waits until enough tokens left the window.
             monitoring.alert_thresholds.sessions / .tokens  `resource:warning` once per crossing
                                      (re-armed when the figure falls back under the threshold).
             AGENT_DEFAULT_SESSION_LIMIT  per-agent concurrent sessions when set.
  reported   max_memory_mb, max_cpu_percent, max_network_bytes_per_second, max_storage_mb,
             allocation.reserved_*/elastic_limits, scaling.*, alert_thresholds.memory/cpu:
             prompt agents run inside Foundry, which neither exposes nor lets a client cap their
             memory, CPU, network or storage, and scales them itself. `analytics()` lists each
             such setting with why it is not enforced and recommendations drawn from the
             enforced figures (e.g. raise max_concurrent_sessions when sessions stay above the
             scale-up threshold). allocation.strategy/priority_weights order the recommendations.

Invariants: counts only move under the event loop (no locks needed); a refused acquire takes
nothing; release never goes below zero; limits are per runtime process.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from runner.runtime.clock import Clock
from runner.runtime.errors import AgentLimitError, PoolLimitError, TokenBudgetError
from runner.spec.models import ResourcePool

TOKEN_WINDOW_S = 60.0
PRIORITY_RANK = {"urgent": 0, "high": 1, "medium": 2, None: 2, "low": 3}

Emit = Callable[[str, Mapping[str, Any]], None]


@dataclass
class _PoolState:
    spec: ResourcePool
    active: int = 0
    peak: int = 0
    refused: int = 0
    waited: int = 0
    token_refusals: int = 0
    tokens_total: int = 0
    window: deque[tuple[float, int]] = field(default_factory=deque)
    window_sum: int = 0
    crossed: dict[str, bool] = field(default_factory=dict)
    warnings: int = 0
    waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)

    def trim(self, now: float) -> None:
        cutoff = now - TOKEN_WINDOW_S
        window = self.window
        while window and window[0][0] <= cutoff:
            self.window_sum -= window.popleft()[1]


class PoolWarning(TypedDict):
    pool: str
    metric: str
    value: float
    limit: float
    fraction: float
    threshold: float


class PoolFigures(TypedDict):
    active_sessions: int
    peak_sessions: int
    max_concurrent_sessions: int | None
    session_utilization: float | None
    tokens_last_minute: int
    max_tokens_per_minute: int | None
    token_utilization: float | None
    tokens_total: int
    refused_sessions: int
    waited_sessions: int
    token_refusals: int
    warnings: int
    enforced: list[str]
    reported: dict[str, str]
    recommendations: list[str]


class PoolManager:
    def __init__(self, *, clock: Clock, emit: Emit, default_session_limit: int | None) -> None:
        self._clock = clock
        self._emit = emit
        self._pools: dict[str, _PoolState] = {}
        self._by_agent: dict[str, tuple[str, ...]] = {}
        self._default_limit = default_session_limit
        self._agent_active: dict[str, int] = {}
        self._seq = itertools.count()

    # ------------------------------------------------------------ configuration

    def configure(self, pools: Mapping[str, ResourcePool]) -> None:
        """Swap the pool specs; figures of pools that keep their name carry over."""
        states: dict[str, _PoolState] = {}
        for name, spec in pools.items():
            state = self._pools.get(name) or _PoolState(spec=spec)
            state.spec = spec
            states[name] = state
        self._pools = states
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

    def _full(self, pools: Iterable[str]) -> _PoolState | None:
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
    ) -> None:
        """Take one slot in each of `pools` (and per agent), all or nothing."""
        agents = list(agents)
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
        for name in pools:
            state = self._pools.get(name)
            if state is not None:
                state.active += 1
                state.peak = max(state.peak, state.active)
                self._check_sessions(state)
        for agent in agents:
            self._agent_active[agent] = self._agent_active.get(agent, 0) + 1

    async def _wait_for_slot(self, state: _PoolState, timeout: float, priority: str | None) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (PRIORITY_RANK.get(priority, 2), next(self._seq), fut)
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

    def _wake(self, state: _PoolState) -> None:
        while state.waiters:
            _, _, fut = heapq.heappop(state.waiters)
            if not fut.done():
                fut.set_result(None)
                return

    def occupy(self, *, agents: Iterable[str], pools: Iterable[str]) -> None:
        """Count a session found at start-up (restart) without checking limits."""
        for name in pools:
            state = self._pools.get(name)
            if state is not None:
                state.active += 1
                state.peak = max(state.peak, state.active)
        for agent in agents:
            self._agent_active[agent] = self._agent_active.get(agent, 0) + 1

    def release(self, *, agents: Iterable[str], pools: Iterable[str]) -> None:
        for name in pools:
            state = self._pools.get(name)
            if state is None:
                continue
            state.active = max(0, state.active - 1)
            self._check_sessions(state)
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

    def token_wait(self, pools: Iterable[str]) -> tuple[str, int, int, float] | None:
        """None when every pool admits a turn; else (pool, limit, used, seconds until it would)."""
        now = self._clock.now()
        for name in pools:
            state = self._pools.get(name)
            if state is None:
                continue
            limit = state.spec.limits.max_tokens_per_minute
            if limit is None:
                continue
            state.trim(now)
            if state.window_sum < limit:
                continue
            # Oldest entries leave first: find when the sum drops under the limit.
            need = state.window_sum - limit + 1
            freed = 0
            at = now
            for t, tokens in state.window:
                freed += tokens
                at = t + TOKEN_WINDOW_S
                if freed >= need:
                    break
            return name, limit, state.window_sum, max(0.0, at - now)
        return None

    async def admit_tokens(self, pools: Sequence[str], *, wait: float | None) -> None:
        if not pools:
            return
        deadline = None if not wait else self._clock.monotonic() + wait
        while True:
            blocked = self.token_wait(pools)
            if blocked is None:
                return
            name, limit, used, retry_after = blocked
            remaining = None if deadline is None else deadline - self._clock.monotonic()
            if remaining is None or remaining < retry_after:
                self._pools[name].token_refusals += 1
                raise TokenBudgetError(name, limit, used, retry_after)
            await self._clock.sleep(max(retry_after, 0.001))

    def record_tokens(self, pools: Iterable[str], tokens: int) -> None:
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
            self._check_tokens(state)

    # ------------------------------------------------------------ warnings

    def _cross(self, state: _PoolState, metric: str, value: float, limit: float) -> None:
        threshold = getattr(state.spec.monitoring.alert_thresholds, metric)
        if threshold is None or not state.spec.monitoring.enabled:
            return
        fraction = value / limit
        above = fraction >= threshold
        if above and not state.crossed.get(metric):
            state.crossed[metric] = True
            state.warnings += 1
            warning: PoolWarning = {
                "pool": state.spec.name,
                "metric": metric,
                "value": value,
                "limit": limit,
                "fraction": round(fraction, 4),
                "threshold": threshold,
            }
            self._emit("resource:warning", dict(warning))
        elif not above and state.crossed.get(metric):
            state.crossed[metric] = False

    def _check_sessions(self, state: _PoolState) -> None:
        limit = state.spec.limits.max_concurrent_sessions
        if limit is not None:
            self._cross(state, "sessions", state.active, limit)

    def _check_tokens(self, state: _PoolState) -> None:
        limit = state.spec.limits.max_tokens_per_minute
        if limit is not None:
            self._cross(state, "tokens", state.window_sum, limit)

    def sweep(self) -> None:
        """Slide token windows on the clock (re-arms warnings as old usage leaves)."""
        now = self._clock.now()
        for state in self._pools.values():
            state.trim(now)
            self._check_tokens(state)

    # ------------------------------------------------------------ analytics

    def figures(self, name: str, *, auto_scaling: bool) -> PoolFigures:
        state = self._pools[name]
        state.trim(self._clock.now())
        spec = state.spec
        limits = spec.limits
        sessions_util = (
            state.active / limits.max_concurrent_sessions
            if limits.max_concurrent_sessions
            else None
        )
        tokens_util = (
            state.window_sum / limits.max_tokens_per_minute
            if limits.max_tokens_per_minute
            else None
        )
        enforced = [
            f
            for f in ("max_concurrent_sessions", "max_tokens_per_minute")
            if getattr(limits, f) is not None
        ]
        reported = _reported_settings(spec)
        return {
            "active_sessions": state.active,
            "peak_sessions": state.peak,
            "max_concurrent_sessions": limits.max_concurrent_sessions,
            "session_utilization": None if sessions_util is None else round(sessions_util, 4),
            "tokens_last_minute": state.window_sum,
            "max_tokens_per_minute": limits.max_tokens_per_minute,
            "token_utilization": None if tokens_util is None else round(tokens_util, 4),
            "tokens_total": state.tokens_total,
            "refused_sessions": state.refused,
            "waited_sessions": state.waited,
            "token_refusals": state.token_refusals,
            "warnings": state.warnings,
            "enforced": enforced,
            "reported": reported,
            "recommendations": _recommend(
                state, sessions_util, tokens_util, auto_scaling=auto_scaling
            ),
        }

    def worst_utilization(self) -> float:
        worst = 0.0
        for name in self._pools:
            f = self.figures(name, auto_scaling=False)
            for u in (f["session_utilization"], f["token_utilization"]):
                if u is not None:
                    worst = max(worst, u)
        return worst


_NOT_ENFORCED = (
    "prompt agents run inside Foundry, which neither exposes nor lets a client cap their {what}; "
    "the limit applies to hosted agents' containers only and is reported, not enforced"
)


def _reported_settings(spec: ResourcePool) -> dict[str, str]:
    limits = spec.limits
    out: dict[str, str] = {}
    for fld, what in (
        ("max_memory_mb", "memory"),
        ("max_cpu_percent", "CPU"),
        ("max_network_bytes_per_second", "network bandwidth"),
        ("max_storage_mb", "storage"),
    ):
        if getattr(limits, fld) is not None:
            out[f"limits.{fld}"] = _NOT_ENFORCED.format(what=what)
    alloc = spec.allocation
    if alloc.reserved_memory_mb is not None or alloc.reserved_cpu_percent is not None:
        out["allocation.reserved"] = (
            "Foundry allocates compute for prompt agents; reservations cannot be made from a client"
        )
    if any(v is not None for v in alloc.elastic_limits.model_dump().values()):
        out["allocation.elastic_limits"] = _NOT_ENFORCED.format(what="memory or CPU")
    if spec.scaling.enabled:
        out["scaling"] = (
            "Foundry scales prompt agents itself; scaling triggers become recommendations here"
        )
    thresholds = spec.monitoring.alert_thresholds
    for metric in ("memory", "cpu"):
        if getattr(thresholds, metric) is not None:
            out[f"monitoring.alert_thresholds.{metric}"] = (
                f"no {metric} figure exists for Foundry-hosted agents; no warning can fire"
            )
    return out


def _recommend(
    state: _PoolState,
    sessions_util: float | None,
    tokens_util: float | None,
    *,
    auto_scaling: bool,
) -> list[str]:
    spec = state.spec
    weights = spec.allocation.priority_weights
    recs: list[tuple[float, str]] = []
    up = spec.scaling.scale_up_threshold
    down = spec.scaling.scale_down_threshold
    if state.refused:
        recs.append(
            (
                weights.throughput + 1,
                f"{state.refused} sessions were refused: raise max_concurrent_sessions or pass "
                "wait= so callers queue",
            )
        )
    if state.token_refusals:
        recs.append(
            (
                weights.throughput + 1,
                f"{state.token_refusals} turns hit max_tokens_per_minute: raise it, or shorten "
                "instructions and conversations",
            )
        )
    if auto_scaling and spec.scaling.enabled:
        if sessions_util is not None and sessions_util >= up:
            recs.append(
                (
                    weights.response_time,
                    f"sessions at {sessions_util:.0%} of the limit (scale_up_threshold {up:.0%}): "
                    "raise max_concurrent_sessions (Foundry scales the agents themselves)",
                )
            )
        elif sessions_util is not None and state.peak and sessions_util <= down:
            recs.append(
                (
                    weights.cost,
                    f"sessions at {sessions_util:.0%} of the limit (scale_down_threshold "
                    f"{down:.0%}): the pool is oversized; lower max_concurrent_sessions",
                )
            )
        if tokens_util is not None and tokens_util >= up:
            recs.append(
                (
                    weights.cost,
                    f"tokens at {tokens_util:.0%} of max_tokens_per_minute: raise the budget or "
                    "move agents to a smaller model",
                )
            )
    if spec.limits.max_memory_mb is not None or spec.limits.max_cpu_percent is not None:
        recs.append(
            (
                0.0,
                "memory/CPU limits do not apply to Foundry-hosted prompt agents; watch tokens "
                "and response time instead",
            )
        )
    recs.sort(key=lambda r: -r[0])
    return [text for _, text in recs]
