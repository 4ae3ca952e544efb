"""Prometheus metrics of one `runner serve`: `/metrics` in the text exposition format.

Role: two sources. Figures the runtime already keeps (sessions by state, pools, alerts) are
read from `get_system_analytics()` at scrape time by `RuntimeCollector`, so they are never
out of date and cost nothing between scrapes. What happens in this process (HTTP requests,
turns with their response time and tokens, handoffs, escalations, tool events, Socket.io
connections and emissions) is counted as it happens, by the REST layer and by runtime event
subscriptions (`ServeMetrics.follow`).

Conventions: names `runner_<what>_<unit>`, counters end in `_total`, durations in
`_seconds`. Labels are bounded: agents, teams, pools and alerts come from the specs, routes
are path templates, event names are the runtime's; session ids, user ids and workspace ids
are never labels; an end reason outside the runtime's own becomes `other`, and so do tool
names past `MAX_TOOL_LABELS` distinct ones (the model names the function it calls).

Each app has its own `CollectorRegistry` (several servers in one test process do not mix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from runner import Lifecycle
from runner.runtime.events import Event

__all__ = ["KNOWN_END_REASONS", "MAX_TOOL_LABELS", "RuntimeCollector", "ServeMetrics"]

KNOWN_END_REASONS = frozenset(
    {
        "ended",
        "resolved",
        "abandoned",
        "max_turns",
        "idle_timeout",
        "max_duration",
        "router",
        "agent_cleanup",
    }
)
MAX_TOOL_LABELS = 200
_TOOL_FAILURES = frozenset({"error", "timeout", "bad_arguments", "no_implementation"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class RuntimeCollector(Collector):
    """Figures read from the runtime at scrape time."""

    def __init__(self, lc: Lifecycle, draining: Callable[[], bool]) -> None:
        self._lc = lc
        self._draining = draining

    def collect(self) -> Iterator[Any]:
        analytics = self._lc.get_system_analytics()
        sessions = analytics["sessions"]
        by_state = GaugeMetricFamily("runner_sessions", "Open sessions by state.", labels=["state"])
        for state in ("active", "paused", "awaiting_human"):
            by_state.add_metric([state], float(sessions.get(state, 0)))
        yield by_state
        created = CounterMetricFamily("runner_sessions_created", "Sessions started.")
        created.add_metric([], float(sessions.get("created", 0)))
        yield created
        ended = CounterMetricFamily("runner_sessions_ended", "Sessions ended.", labels=["reason"])
        reasons: dict[str, float] = {}
        for reason, count in dict(sessions.get("ended_reasons") or {}).items():
            key = reason if reason in KNOWN_END_REASONS else "other"
            reasons[key] = reasons.get(key, 0.0) + float(count)
        for reason, count in sorted(reasons.items()):
            ended.add_metric([reason], count)
        yield ended
        yield from self._pools(analytics["resources"].get("pools") or {})
        yield from self._alerts(analytics["performance"].get("alerts") or [])
        yield from self._costs(analytics.get("costs") or {})
        health = analytics["health"]
        status = GaugeMetricFamily(
            "runner_health_status",
            "1 for the current overall status (healthy, degraded, critical).",
            labels=["status"],
        )
        for name in ("healthy", "degraded", "critical"):
            status.add_metric([name], 1.0 if health["status"] == name else 0.0)
        yield status
        draining = GaugeMetricFamily("runner_draining", "1 while shutting down.")
        draining.add_metric([], 1.0 if self._draining() else 0.0)
        yield draining

    def _pools(self, pools: dict[str, Any]) -> Iterator[Any]:
        """Limits and occupancy of each pool. Occupancy (sessions, tokens in the window) carries
        `counted_by`: `process` (this process's own), `host` (every process on the registry
        file) or `hosts` (every host, Redis): shared figures are the same on every instance, so
        aggregate them with max(), not sum()."""
        occupancy = {
            "active_sessions": GaugeMetricFamily(
                "runner_pool_sessions",
                "Sessions holding a slot of the pool (counted_by: whose).",
                labels=["pool", "counted_by"],
            ),
            "tokens_last_minute": GaugeMetricFamily(
                "runner_pool_tokens_per_minute",
                "Tokens in the last 60 s (counted_by: whose).",
                labels=["pool", "counted_by"],
            ),
        }
        families = {
            "max_concurrent_sessions": GaugeMetricFamily(
                "runner_pool_sessions_limit", "The pool's max_concurrent_sessions.", labels=["pool"]
            ),
            "max_tokens_per_minute": GaugeMetricFamily(
                "runner_pool_tokens_per_minute_limit",
                "The pool's max_tokens_per_minute.",
                labels=["pool"],
            ),
        }
        refused = CounterMetricFamily(
            "runner_pool_refused_sessions", "Sessions refused by the pool.", labels=["pool"]
        )
        for name, figures in sorted(pools.items()):
            by = str(figures.get("counted_by") or "process")
            for key, family in occupancy.items():
                family.add_metric([name, by], float(figures.get(key) or 0))
            for key, family in families.items():
                value = figures.get(key)
                if value is not None:
                    family.add_metric([name], float(value))
            refused.add_metric([name], float(figures.get("refused_sessions") or 0))
        yield occupancy["active_sessions"]
        yield from families.values()
        yield occupancy["tokens_last_minute"]
        yield refused

    def _costs(self, costs: dict[str, Any]) -> Iterator[Any]:
        """Spending per agent, team, pool and model, and declared budgets (declared names: a
        bounded label set; workspaces, which any session may name, stay in the JSON analytics)."""
        currency = str(costs.get("currency") or "USD")
        spent = CounterMetricFamily(
            "runner_cost",
            "Money spent on tokens at the environment's pricing, by subject.",
            labels=["kind", "name", "currency"],
        )
        by = costs.get("by") or {}
        for kind in ("environment", "agent", "team", "pool", "model"):
            for name, value in sorted(dict(by.get(kind) or {}).items()):
                spent.add_metric([kind, str(name), currency], float(value))
        yield spent
        budget = GaugeMetricFamily(
            "runner_budget_spent_ratio",
            "Share of a spending budget used in its current period.",
            labels=["budget"],
        )
        for name, figures in sorted(dict(costs.get("budgets") or {}).items()):
            budget.add_metric([name], float(figures["spent"]) / float(figures["amount"]))
        yield budget
        unpriced = CounterMetricFamily(
            "runner_unpriced_tokens", "Tokens of models with no price in the environment."
        )
        unpriced.add_metric([], float(costs.get("unpriced_tokens") or 0))
        yield unpriced

    def _alerts(self, alerts: list[dict[str, Any]]) -> Iterator[Any]:
        firing = GaugeMetricFamily(
            "runner_alert_firing", "1 while the alert is breached.", labels=["alert", "severity"]
        )
        fired = CounterMetricFamily(
            "runner_alert_fired", "Times the alert started firing.", labels=["alert", "severity"]
        )
        for alert in alerts:
            labels = [str(alert["alert"]), str(alert["severity"])]
            firing.add_metric(labels, 1.0 if alert.get("breached") else 0.0)
            fired.add_metric(labels, float(alert.get("fired") or 0))
        yield firing
        yield fired


class ServeMetrics:
    """The metrics of one server (see the module docstring)."""

    def __init__(self, lc: Lifecycle, *, draining: Callable[[], bool]) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.http_requests = Counter(
            "runner_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "runner_http_request_duration_seconds",
            "HTTP request duration by route template.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.turns = Counter(
            "runner_turns",
            "Turns answered, by agent and team.",
            ["agent", "team"],
            registry=registry,
        )
        self.response_seconds = Histogram(
            "runner_response_time_seconds",
            "The agent's response time per turn.",
            ["agent", "team"],
            buckets=_TURN_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "runner_tokens",
            "Tokens used, by agent, team and direction (input, output).",
            ["agent", "team", "direction"],
            registry=registry,
        )
        self.handoffs = Counter(
            "runner_handoffs",
            "Handoffs completed, by source and target member (or human).",
            ["from_agent", "to_agent"],
            registry=registry,
        )
        self.escalations = Counter(
            "runner_escalations",
            "Escalation events by team and event (opened, approved, rejected, ...).",
            ["team", "event"],
            registry=registry,
        )
        self.tool_calls = Counter(
            "runner_tool_calls",
            "Function tool calls ended, by agent, tool and outcome (completed, refused, or why "
            "it failed: error, timeout, bad_arguments, no_implementation).",
            ["agent", "tool", "outcome"],
            registry=registry,
        )
        self._tool_names: set[str] = set()
        self.socket_connections = Gauge(
            "runner_socketio_connections", "Connected Socket.io clients.", registry=registry
        )
        self.socket_emits = Counter(
            "runner_socketio_events_emitted",
            "Runtime events sent to Socket.io rooms, by event name.",
            ["event"],
            registry=registry,
        )
        registry.register(RuntimeCollector(lc, draining))
        # labelled children by label values: `labels()` validates and locks on every call,
        # which showed in profiles at a few calls per request; the label sets are bounded
        self._http_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._turn_children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}

    def follow(self, lc: Lifecycle) -> list[Callable[[], None]]:
        """Subscribe to the runtime's events this module counts; returns the `off`s."""
        return [
            lc.on("handoff:completed", self._on_handoff),
            lc.on("escalation:*", self._on_escalation),
            lc.on("tool:*", self._on_tool),
        ]

    def _on_handoff(self, event: Event) -> None:
        if event.origin is not None:  # another instance's: it counts it (no double count)
            return
        data = event.data
        self.handoffs.labels(_label(data.get("from")), _label(data.get("to"))).inc()

    def _on_escalation(self, event: Event) -> None:
        if event.origin is not None:
            return
        suffix = event.type.split(":", 1)[1][:40]
        self.escalations.labels(_label(event.data.get("team")), suffix).inc()

    def _on_tool(self, event: Event) -> None:
        """A call is counted once, when it ends (`tool:called` only says one started; a call
        refused or failed before running has no `tool:called`)."""
        if event.origin is not None:  # another instance's: it counts it
            return
        kind = event.type
        data = event.data
        if kind == "tool:completed":
            outcome = "completed"
        elif kind == "tool:refused":
            outcome = "refused"
        elif kind == "tool:failed":
            reason = data.get("reason")
            outcome = reason if reason in _TOOL_FAILURES else "failed"
        else:
            return
        self.tool_calls.labels(
            _label(data.get("agent")), self._tool_label(data.get("tool")), outcome
        ).inc()

    def _tool_label(self, value: Any) -> str:
        """The tool's name: the model chooses it (a call to a function the agent does not
        have still names it), so past `MAX_TOOL_LABELS` distinct names the rest are `other`."""
        name = _label(value)[:100]
        if name in self._tool_names:
            return name
        if len(self._tool_names) >= MAX_TOOL_LABELS:
            return "other"
        self._tool_names.add(name)
        return name

    def observe_turn(
        self,
        *,
        agent: str | None,
        team: str | None,
        seconds: float,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        key = (_label(agent), _label(team))
        children = self._turn_children.get(key)
        if children is None:
            a, t = key
            children = self._turn_children[key] = (
                self.turns.labels(a, t),
                self.response_seconds.labels(a, t),
                self.tokens.labels(a, t, "input"),
                self.tokens.labels(a, t, "output"),
            )
        turns, response_seconds, tokens_in, tokens_out = children
        turns.inc()
        if agent is not None:
            response_seconds.observe(seconds)
        tokens_in.inc(input_tokens)
        tokens_out.inc(output_tokens)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request; a method outside HTTP's usual ones is `other` (clients choose it)."""
        key = (method if method in _METHODS else "other", route, str(status))
        children = self._http_children.get(key)
        if children is None:
            children = self._http_children[key] = (
                self.http_requests.labels(*key),
                self.http_seconds.labels(key[0], route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _label(value: Any) -> str:
    """A label value from the specs (agent, team); empty when there is none."""
    return "" if value is None else str(value)[:200]
