"""Performance figures per agent, team and pool, and `Alert` specs evaluated on them.

Role: the turn path records each turn (`record_turn`): response time, error, tokens,
handoffs, escalations, charged to the answering agent, the session's team and the agent's
pools. After each turn the alerts watching those subjects are evaluated on their window; the
sweeper re-evaluates every alert so a window that slides past a burst clears it without new
traffic. The session table tells the monitor which sessions are open against which subjects
(`sessions_opened` / `sessions_closed`): that is the `active_sessions` metric.

Invariants:
  - An alert fires (`on_alert(..., "firing")`) once when its condition starts to hold and
    clears (`"resolved"`) once when it stops: never once per message.
  - A window without turns has no response time or error rate: such an alert is not breached.
  - With monitoring disabled nothing is recorded or evaluated (open sessions are still
    counted: two dict updates per session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal, TypedDict

from runner.runtime.monitoring.series import DEFAULT_WINDOW_S, Series
from runner.spec.models import Alert, parse_duration

__all__ = [
    "AlertState",
    "AlertStatus",
    "OnAlert",
    "PerformanceMonitor",
    "Subject",
    "SubjectKind",
    "alert_subject",
]

SubjectKind = Literal["agent", "team", "pool", "tool"]
Subject = tuple[SubjectKind, str]


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


AlertStatus = Literal["firing", "resolved"]
OnAlert = Callable[[Alert, float | None, AlertStatus], None]


class PerformanceMonitor:
    """Figures per subject and the alerts evaluated on them (see the module docstring)."""

    def __init__(self, *, on_alert: OnAlert, enabled: bool = True) -> None:
        self.enabled = enabled
        self._on_alert = on_alert
        self.series: dict[Subject, Series] = {}
        self.open_sessions: dict[Subject, int] = {}  # the `active_sessions` metric
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

    def record_outcome(
        self,
        subjects: Iterable[Subject],
        now: float,
        *,
        cost: float = 0.0,
        ended: bool = False,
        resolved: bool = False,
    ) -> None:
        """Money a turn cost, or a session that ended (resolved or not), on `subjects`; their
        alerts are evaluated (`cost`, `resolution_rate`)."""
        if not self.enabled:
            return
        for subject in subjects:
            self.get(subject).note(now, cost=cost, ended=int(ended), resolved=int(resolved))
            for alert in self._by_subject.get(subject, ()):
                self._evaluate(alert, now)

    def record_session(self, subjects: Iterable[Subject]) -> None:
        """A new session counts against `subjects` (its team or agent, and its pools)."""
        if not self.enabled:
            return
        for subject in subjects:
            self.get(subject).sessions += 1

    def sessions_opened(self, subjects: Iterable[Subject]) -> None:
        """A session is held open against `subjects` (its pools, team and every agent)."""
        counts = self.open_sessions
        for subject in subjects:
            counts[subject] = counts.get(subject, 0) + 1

    def sessions_closed(self, subjects: Iterable[Subject]) -> None:
        counts = self.open_sessions
        for subject in subjects:
            left = counts.get(subject, 0) - 1
            if left > 0:
                counts[subject] = left
            else:
                counts.pop(subject, None)

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
            return float(self.open_sessions.get(subject, 0))
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
