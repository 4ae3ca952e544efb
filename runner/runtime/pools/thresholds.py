"""Pool threshold warnings: `resource:warning` when a pool's use crosses its alert threshold.

Role: `PoolManager` hands a pool's usage here whenever its sessions or its token window move;
a warning is emitted once when the use rises to the pool's `monitoring.alert_thresholds` (a
fraction of the limit) and re-armed when the use falls below it again.

Invariants: one warning per crossing (never one per admission while above); nothing for a
pool without that limit, threshold or with monitoring disabled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from runner.runtime.pools.usage import PoolUsage

__all__ = ["Emit", "PoolThresholds", "PoolWarning"]

Emit = Callable[[str, Mapping[str, Any]], None]


class PoolWarning(TypedDict):
    pool: str
    metric: str
    value: float
    limit: float
    fraction: float
    threshold: float


class PoolThresholds:
    """The warnings of a runtime's pools (see the module docstring)."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def sessions(self, state: PoolUsage) -> None:
        limit = state.spec.limits.max_concurrent_sessions
        if limit is not None:
            self._cross(state, "sessions", state.active, limit)

    def tokens(self, state: PoolUsage) -> None:
        limit = state.spec.limits.max_tokens_per_minute
        if limit is not None:
            self._cross(state, "tokens", state.window_sum, limit)

    def _cross(self, state: PoolUsage, metric: str, value: float, limit: float) -> None:
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
