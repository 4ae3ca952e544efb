"""Pool analytics: what each limit means here, the figures, and recommendations.

Role: `PoolManager.figures` (behind `Lifecycle.get_system_analytics`) reports each pool:
which limits are enforced (`max_concurrent_sessions`, `max_tokens_per_minute`) and which are
reported only, with why (prompt agents run inside Foundry, which neither exposes nor lets a
client cap their memory, CPU, network or storage, and scales them itself), and
recommendations drawn from the enforced figures, ordered by the pool's
`allocation.priority_weights`.

Occupancy (`active_sessions`, `tokens_last_minute` and their utilizations) is the shared
backend's when the limits are shared (`counted_by: host`: every process of the host, on the
registry file; `hosts`: every host, on Redis; `counted_in` names it; `process_*` keep this
process's share), else this process's own (`counted_by: process`). The other counters (peak,
refusals, waits, warnings) are this process's.

Invariant: reading figures changes nothing.
"""

from __future__ import annotations

from typing import TypedDict

from runner.runtime.pools.usage import PoolUsage
from runner.spec.models import ResourcePool

__all__ = ["PoolFigures", "pool_figures"]


class PoolFigures(TypedDict):
    counted_by: str  # whose counts active_sessions and tokens_last_minute are: process|host|hosts
    counted_in: str  # where: "this process", the registry file, or the Redis server
    active_sessions: int
    process_active_sessions: int  # this process's own share of them
    process_tokens_last_minute: int
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


def pool_figures(
    state: PoolUsage,
    *,
    auto_scaling: bool,
    shared: tuple[int, int] | None = None,
    counted_by: str = "process",
    counted_in: str = "this process",
) -> PoolFigures:
    """The figures of a pool (its token window trimmed to now by the caller). `shared`: the
    (leases, tokens in the window) of every process sharing the limits (`counted_by`: the
    processes of this host, or of every host), as read from `counted_in`; without it the
    figures are this process's own."""
    spec = state.spec
    limits = spec.limits
    active, window = (state.active, state.window_sum) if shared is None else shared
    sessions_util = (
        active / limits.max_concurrent_sessions if limits.max_concurrent_sessions else None
    )
    tokens_util = window / limits.max_tokens_per_minute if limits.max_tokens_per_minute else None
    enforced = [
        f
        for f in ("max_concurrent_sessions", "max_tokens_per_minute")
        if getattr(limits, f) is not None
    ]
    reported = _reported_settings(spec)
    return {
        "counted_by": "process" if shared is None else counted_by,
        "counted_in": "this process" if shared is None else counted_in,
        "active_sessions": active,
        "process_active_sessions": state.active,
        "process_tokens_last_minute": state.window_sum,
        "peak_sessions": state.peak,
        "max_concurrent_sessions": limits.max_concurrent_sessions,
        "session_utilization": None if sessions_util is None else round(sessions_util, 4),
        "tokens_last_minute": window,
        "max_tokens_per_minute": limits.max_tokens_per_minute,
        "token_utilization": None if tokens_util is None else round(tokens_util, 4),
        "tokens_total": state.tokens_total,
        "refused_sessions": state.refused,
        "waited_sessions": state.waited,
        "token_refusals": state.token_refusals,
        "warnings": state.warnings,
        "enforced": enforced,
        "reported": reported,
        "recommendations": _recommend(state, sessions_util, tokens_util, auto_scaling=auto_scaling),
    }


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
    state: PoolUsage,
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
