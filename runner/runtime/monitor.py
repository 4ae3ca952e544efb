"""Performance figures per agent, team and pool, and `Alert` specs evaluated on them.

Role: `Lifecycle` records each turn (`record_turn`): response time, error, tokens, handoffs,
escalations, charged to the answering agent, the session's team and the agent's pools. After
each turn the alerts watching those subjects are evaluated on their window; the sweeper
re-evaluates every alert so a window that slides past a burst clears it without new traffic.

Invariants:
  - An alert fires (`performance:alert`) once when its condition starts to hold and clears
    (`performance:alert-cleared`) once when it stops: never once per message.
  - A window without turns has no response time or error rate: such an alert is not breached.
  - Memory per subject is bounded: figures are kept in one-second buckets (one deque of buckets
    per distinct window length, with running sums, so a window query costs O(1) amortised) plus
    a capped reservoir of recent response times for percentiles.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from runner.spec.models import Alert, parse_duration

SubjectKind = Literal["agent", "team", "pool"]
Subject = tuple[SubjectKind, str]
DEFAULT_WINDOW_S = 300.0
RESERVOIR = 2048


class _Bucket:
    __slots__ = ("errors", "escalations", "handoffs", "ms", "second", "tokens", "turns")

    def __init__(self, second: int) -> None:
        self.second = second
        self.turns = 0
        self.errors = 0
        self.tokens = 0
        self.ms = 0.0
        self.handoffs = 0
        self.escalations = 0


class _Window:
    __slots__ = ("buckets", "errors", "escalations", "handoffs", "ms", "seconds", "tokens", "turns")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.buckets: deque[_Bucket] = deque()
        self.turns = 0
        self.errors = 0
        self.tokens = 0
        self.ms = 0.0
        self.handoffs = 0
        self.escalations = 0

    def evict(self, now: float) -> None:
        cutoff = now - self.seconds
        buckets = self.buckets
        while buckets and buckets[0].second + 1 <= cutoff:
            b = buckets.popleft()
            self.turns -= b.turns
            self.errors -= b.errors
            self.tokens -= b.tokens
            self.ms -= b.ms
            self.handoffs -= b.handoffs
            self.escalations -= b.escalations


class WindowFigures(TypedDict):
    window_s: float
    turns: int
    errors: int
    error_rate: float | None
    average_response_time: float | None
    p95_response_time: float | None
    tokens: int
    tokens_per_minute: float
    handoffs: int
    escalations: int


@dataclass
class Series:
    """Figures of one subject: totals, windows and a reservoir of recent response times."""

    turns: int = 0
    errors: int = 0
    tokens: int = 0
    ms_total: float = 0.0
    handoffs: int = 0
    escalations: int = 0
    sessions: int = 0
    windows: dict[float, _Window] = field(default_factory=dict)
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    _current: _Bucket | None = None

    def window(self, seconds: float) -> _Window:
        w = self.windows.get(seconds)
        if w is None:
            w = self.windows[seconds] = _Window(seconds)
        return w

    def add(
        self, now: float, ms: float, *, error: bool, tokens: int, handoffs: int, escalations: int
    ) -> None:
        self.turns += 1
        self.errors += error
        self.tokens += tokens
        self.ms_total += ms
        self.handoffs += handoffs
        self.escalations += escalations
        self.recent.append((now, ms))
        second = int(now)
        current = self._current
        if current is None or current.second != second:
            current = self._current = _Bucket(second)
            for w in self.windows.values():
                w.buckets.append(current)
        current.turns += 1
        current.errors += error
        current.tokens += tokens
        current.ms += ms
        current.handoffs += handoffs
        current.escalations += escalations
        for w in self.windows.values():
            if not w.buckets or w.buckets[-1] is not current:
                w.buckets.append(current)
            w.turns += 1
            w.errors += error
            w.tokens += tokens
            w.ms += ms
            w.handoffs += handoffs
            w.escalations += escalations

    def figures(self, seconds: float, now: float, *, percentile: bool = True) -> WindowFigures:
        w = self.window(seconds)
        w.evict(now)
        turns = w.turns
        p95 = None
        if percentile and turns:
            cutoff = now - seconds
            times = sorted(ms for t, ms in self.recent if t > cutoff)
            p95 = _percentile(times, 0.95)
        return {
            "window_s": seconds,
            "turns": turns,
            "errors": w.errors,
            "error_rate": (w.errors / turns) if turns else None,
            "average_response_time": (w.ms / turns) if turns else None,
            "p95_response_time": p95,
            "tokens": w.tokens,
            "tokens_per_minute": w.tokens / (seconds / 60.0),
            "handoffs": w.handoffs,
            "escalations": w.escalations,
        }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]


class AlertState(TypedDict):
    alert: str
    subject: str
    metric: str
    condition: str
    threshold: float
    severity: str
    window_s: float
    breached: bool
    value: float | None
    fired: int


OnAlert = Callable[[Alert, float | None, Literal["firing", "resolved"]], None]
ActiveSessions = Callable[[Subject], int]


class PerformanceMonitor:
    def __init__(
        self, *, on_alert: OnAlert, active_sessions: ActiveSessions, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self._on_alert = on_alert
        self._active_sessions = active_sessions
        self.series: dict[Subject, Series] = {}
        self._alerts: dict[str, Alert] = {}
        self._by_subject: dict[Subject, list[Alert]] = {}
        self._breached: dict[str, bool] = {}
        self._values: dict[str, float | None] = {}
        self._fired: dict[str, int] = {}

    # ------------------------------------------------------------ alerts

    def configure(self, alerts: Mapping[str, Alert]) -> None:
        """Swap the alert specs; an alert that keeps its name keeps its breach state."""
        self._alerts = {n: a for n, a in alerts.items() if a.enabled}
        self._by_subject = {}
        for alert in self._alerts.values():
            subject = alert_subject(alert)
            self._by_subject.setdefault(subject, []).append(alert)
            if self.enabled:
                self.get(subject).window(parse_duration(alert.window))
        self._breached = {n: b for n, b in self._breached.items() if n in self._alerts}

    def get(self, subject: Subject) -> Series:
        series = self.series.get(subject)
        if series is None:
            series = self.series[subject] = Series()
            series.window(DEFAULT_WINDOW_S)
        return series

    def record_turn(
        self,
        subjects: Iterable[Subject],
        *,
        now: float,
        ms: float,
        error: bool,
        tokens: int,
        handoffs: int = 0,
        escalations: int = 0,
    ) -> None:
        if not self.enabled:
            return
        for subject in subjects:
            self.get(subject).add(
                now, ms, error=error, tokens=tokens, handoffs=handoffs, escalations=escalations
            )
            alerts = self._by_subject.get(subject)
            if alerts:
                for alert in alerts:
                    self._evaluate(alert, now)

    def record_session(self, subjects: Iterable[Subject]) -> None:
        if not self.enabled:
            return
        for subject in subjects:
            self.get(subject).sessions += 1

    def evaluate_subjects(self, subjects: Iterable[Subject], now: float) -> None:
        """Re-evaluate alerts on `subjects` (e.g. active_sessions after a session starts)."""
        if not self.enabled:
            return
        for subject in subjects:
            for alert in self._by_subject.get(subject, ()):
                if alert.metric == "active_sessions":
                    self._evaluate(alert, now)

    def evaluate_all(self, now: float) -> None:
        if not self.enabled:
            return
        for alert in self._alerts.values():
            self._evaluate(alert, now)

    def value_of(self, alert: Alert, now: float) -> float | None:
        subject = alert_subject(alert)
        if alert.metric == "active_sessions":
            return float(self._active_sessions(subject))
        seconds = parse_duration(alert.window)
        figures = self.get(subject).figures(
            seconds, now, percentile=alert.metric == "p95_response_time"
        )
        value = figures[alert.metric]
        return None if value is None else float(value)

    def _evaluate(self, alert: Alert, now: float) -> None:
        value = self.value_of(alert, now)
        self._values[alert.name] = value
        if value is None:
            breached = False
        elif alert.condition == "above":
            breached = value > alert.threshold
        else:
            breached = value < alert.threshold
        was = self._breached.get(alert.name, False)
        if breached == was:
            return
        self._breached[alert.name] = breached
        if breached:
            self._fired[alert.name] = self._fired.get(alert.name, 0) + 1
        self._on_alert(alert, value, "firing" if breached else "resolved")

    def alert_states(self) -> list[AlertState]:
        out: list[AlertState] = []
        for name, alert in sorted(self._alerts.items()):
            kind, subject = alert_subject(alert)
            out.append(
                {
                    "alert": name,
                    "subject": f"{kind}.{subject}",
                    "metric": alert.metric,
                    "condition": alert.condition,
                    "threshold": alert.threshold,
                    "severity": alert.severity,
                    "window_s": parse_duration(alert.window),
                    "breached": self._breached.get(name, False),
                    "value": self._values.get(name),
                    "fired": self._fired.get(name, 0),
                }
            )
        return out

    def breached(self) -> list[Alert]:
        return [self._alerts[n] for n, b in self._breached.items() if b and n in self._alerts]


def alert_subject(alert: Alert) -> Subject:
    if alert.agent is not None:
        return ("agent", alert.agent)
    if alert.team is not None:
        return ("team", alert.team)
    assert alert.pool is not None
    return ("pool", alert.pool)


class SubjectFigures(TypedDict):
    turns: int
    errors: int
    error_rate: float
    average_response_time_ms: float | None
    p95_response_time_ms: float | None
    tokens: int
    tokens_per_turn: float | None
    handoffs: int
    escalations: int
    sessions: int
    window: WindowFigures


def subject_figures(series: Series, now: float) -> SubjectFigures:
    times = sorted(ms for _, ms in series.recent)
    turns = series.turns
    return {
        "turns": turns,
        "errors": series.errors,
        "error_rate": (series.errors / turns) if turns else 0.0,
        "average_response_time_ms": (series.ms_total / turns) if turns else None,
        "p95_response_time_ms": _percentile(times, 0.95),
        "tokens": series.tokens,
        "tokens_per_turn": (series.tokens / turns) if turns else None,
        "handoffs": series.handoffs,
        "escalations": series.escalations,
        "sessions": series.sessions,
        "window": series.figures(DEFAULT_WINDOW_S, now),
    }


def recommend(figures: SubjectFigures, *, name: str, slow_ms: float) -> tuple[list[str], list[str]]:
    """(insights, optimisation recommendations) drawn from one subject's figures."""
    insights: list[str] = []
    recs: list[str] = []
    turns = figures["turns"]
    if not turns:
        insights.append(f"{name} has answered no turn yet: no figures to judge")
        return insights, recs
    avg = figures["average_response_time_ms"] or 0.0
    p95 = figures["p95_response_time_ms"] or 0.0
    insights.append(
        f"{turns} turns in {figures['sessions']} sessions; average response {avg:.0f} ms, "
        f"p95 {p95:.0f} ms; error rate {figures['error_rate']:.1%}"
    )
    if avg > slow_ms:
        insights.append(f"responses average {avg:.0f} ms, above the {slow_ms:.0f} ms threshold")
        recs.append(
            "use a faster model deployment, shorten the instructions or trim tools to cut "
            "response time"
        )
    elif p95 > slow_ms:
        insights.append(f"p95 response {p95:.0f} ms is above the {slow_ms:.0f} ms threshold")
        recs.append("tail latency is high: look for slow tool calls or long conversations")
    if avg and p95 > 3 * avg and p95 > 100:
        insights.append("response times vary widely (p95 above 3x the average)")
    if figures["error_rate"] > 0.05:
        insights.append(f"{figures['error_rate']:.1%} of turns failed")
        recs.append(
            "check provider errors (quota 429s, content filters); add retries or a backup member"
        )
    per_turn = figures["tokens_per_turn"] or 0.0
    if per_turn > 2000:
        insights.append(f"{per_turn:.0f} tokens per turn")
        recs.append("long conversations are costly: lower max_turns or summarise and start over")
    if figures["handoffs"] and figures["handoffs"] / turns > 0.3:
        insights.append(f"{figures['handoffs']} handoffs in {turns} turns")
        recs.append(
            "frequent handoffs: review handoff triggers, or make the specialist the primary member"
        )
    if not recs:
        insights.append("figures are within thresholds")
    return insights, recs
