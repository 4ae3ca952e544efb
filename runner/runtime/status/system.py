"""How the runtime is doing: performance insights, system status and analytics.

Role: the read side of the runtime, over the session table, the monitor, the pools, the cost
meter and the channels. `insights`, `system_status` and `system_analytics` back the
`Lifecycle` methods of the same purpose (through `runner.runtime.status.reports`).

Invariants:
  - Reading status changes nothing (no session, pool or alert state).
  - All time comes from the injected Clock.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from runner.providers.base import Provider
from runner.runtime.context import RuntimeContext
from runner.runtime.monitoring import (
    CostMeter,
    Notifier,
    PerformanceMonitor,
    SubjectFigures,
    recommend,
    subject_figures,
)
from runner.runtime.pools import PoolFigures, PoolManager
from runner.runtime.sessions import LiveSessions

__all__ = [
    "ComponentStatus",
    "Insights",
    "RuntimeStatus",
    "SystemAnalytics",
    "SystemStatus",
]

Health = Literal["healthy", "degraded", "critical"]


class ComponentStatus(TypedDict, total=False):
    status: Health
    detail: str


class SystemStatus(TypedDict):
    status: Health
    components: dict[str, ComponentStatus]
    active_sessions: int
    uptime_s: float


class Insights(TypedDict):
    agent: str
    figures: SubjectFigures
    insights: list[str]
    optimizations: list[str]
    alerts: list[str]


class SystemAnalytics(TypedDict):
    sessions: dict[str, Any]
    performance: dict[str, Any]
    resources: dict[str, Any]
    costs: dict[str, Any]
    health: SystemStatus


class RuntimeStatus:
    """Status reports of one runtime (see the module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        provider: Provider,
        table: LiveSessions,
        pools: PoolManager,
        monitor: PerformanceMonitor,
        notifier: Notifier,
        costs: CostMeter,
    ) -> None:
        self._costs = costs
        self._ctx = ctx
        self._provider = provider
        self._table = table
        self._pools = pools
        self._monitor = monitor
        self._notifier = notifier
        self._started_mono = ctx.clock.monotonic()

    # ------------------------------------------------------------ reports

    def insights(self, agent: str) -> Insights:
        ctx = self._ctx
        monitor = self._monitor
        figures = subject_figures(monitor.get(("agent", agent)), ctx.clock.now())
        insights, recs = recommend(
            figures, name=f"agent.{agent}", slow_ms=ctx.config.alert_threshold_ms
        )
        if not ctx.config.optimization_enabled:
            recs = []
        alerts = [a.name for a in monitor.breached() if a.agent == agent]
        if alerts:
            insights.append("alerts breached now: " + ", ".join(sorted(alerts)))
        return {
            "agent": agent,
            "figures": figures,
            "insights": insights,
            "optimizations": recs,
            "alerts": alerts,
        }

    def system_status(self) -> SystemStatus:
        ctx = self._ctx
        components: dict[str, ComponentStatus] = {}
        provider = self._provider
        components["provider"] = {
            "status": "healthy",
            "detail": f"{provider.name} ({'remote' if provider.remote else 'embedded'})",
        }
        components["config"] = (
            {"status": "degraded", "detail": "; ".join(ctx.config.problems)}
            if ctx.config.problems
            else {"status": "healthy"}
        )
        breached = self._monitor.breached()
        if any(a.severity == "critical" for a in breached):
            monitoring: ComponentStatus = {"status": "critical"}
        elif any(a.severity == "warning" for a in breached):
            monitoring = {"status": "degraded"}
        else:
            monitoring = {"status": "healthy"}
        monitoring["detail"] = (
            "breached: " + ", ".join(sorted(a.name for a in breached))
            if breached
            else ("monitoring on" if self._monitor.enabled else "monitoring off")
        )
        components["monitoring"] = monitoring
        worst = self._pools.worst_utilization()
        components["pools"] = {
            "status": "critical" if worst >= 1.0 else "degraded" if worst >= 0.9 else "healthy",
            "detail": f"highest utilisation {worst:.0%}",
        }
        failed = sum(s["failed"] for s in self._notifier.stats.values())
        components["channels"] = {
            "status": "degraded" if failed else "healthy",
            "detail": f"{failed} failed deliveries",
        }
        components["events"] = {
            "status": "degraded" if ctx.events.errors else "healthy",
            "detail": f"{ctx.events.errors} callback errors",
        }
        order = {"healthy": 0, "degraded": 1, "critical": 2}
        overall = max(
            (c.get("status", "healthy") for c in components.values()), key=order.__getitem__
        )
        return {
            "status": overall,
            "components": components,
            "active_sessions": len(self._table.live),
            "uptime_s": ctx.clock.monotonic() - self._started_mono,
        }

    def system_analytics(self) -> SystemAnalytics:
        ctx = self._ctx
        table = self._table
        now = ctx.clock.now()
        states: dict[str, int] = {"active": 0, "paused": 0, "awaiting_human": 0}
        for row in table.rows():
            states[row.state] = states.get(row.state, 0) + 1
        ended = sum(table.ended_reasons.values())
        sessions = {
            **states,
            "created": table.created,
            "ended": ended,
            "ended_reasons": dict(table.ended_reasons),
            "average_turns_of_ended": (table.ended_turns / ended) if ended else None,
        }
        performance: dict[str, Any] = {"agents": {}, "teams": {}, "pools": {}, "tools": {}}
        for (kind, name), series in sorted(self._monitor.series.items()):
            performance[kind + "s"][name] = subject_figures(series, now)
        performance["alerts"] = self._monitor.alert_states()
        config = ctx.config
        pools: dict[str, PoolFigures] = {
            name: self._pools.figures(name, auto_scaling=config.auto_scaling_enabled)
            for name in self._pools.names()
        }
        resources = {
            "pools": pools,
            "defaults": {
                "session_limit_per_agent": config.default_session_limit,
                "memory_limit_mb": config.default_memory_limit_mb,
                "cpu_limit_percent": config.default_cpu_limit_percent,
                "memory_and_cpu": "reported only: Foundry-hosted prompt agents expose neither",
            },
            "channels": {name: dict(stats) for name, stats in self._notifier.stats.items()},
        }
        return {
            "sessions": sessions,
            "performance": performance,
            "resources": resources,
            "costs": self._costs.figures(),
            "health": self.system_status(),
        }
