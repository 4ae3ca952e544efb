"""Resource pools at run time: what a `ResourcePool` limit means here, and its enforcement.

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
             listed in analytics with why they are not enforced, and recommendations drawn from
             the enforced figures (`figures`).

Modules: `usage` (one pool's counts and token window), `figures` (analytics), `manager`
(`PoolManager`: slots, tokens, warnings), `shared` (the `SharedLimits` Protocol and
`SharedPools`, this process's side of limits shared by several processes: leases renewed by a
heartbeat, waiting lines by priority, token reservations), and its backends `redis_limits`
(`RedisLimits`, Lua scripts; imported only when an Environment declares `redis:`, redis-py
being the optional `redis` extra) and `sqlite_limits` (`SqliteLimits`, the processes of one
host on the registry file: the default without `redis:` on SQLite state; its token windows in
`sqlite_tokens`), and `occupancy` (the figures of every process sharing them). Without a shared
backend (`RUNNER_POOL_LIMITS=process`, or PostgreSQL state without Redis) the limits are this
process's own (in memory).

May import: `runner.spec`, `runner.sqlitefile`, `runner.state.sqlite_schema` (the tables of
`sqlite_limits`) and the runtime's neutral modules (clock, errors).
"""

from runner.runtime.pools.figures import PoolFigures
from runner.runtime.pools.limits_backend import SharedLimits
from runner.runtime.pools.manager import PoolManager
from runner.runtime.pools.shared import SharedPools, TokenTicket
from runner.runtime.pools.thresholds import PoolWarning
from runner.runtime.pools.usage import estimate_tokens

__all__ = [
    "PoolFigures",
    "PoolManager",
    "PoolWarning",
    "SharedLimits",
    "SharedPools",
    "TokenTicket",
    "estimate_tokens",
]
