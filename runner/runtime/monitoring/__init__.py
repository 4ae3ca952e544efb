"""Monitoring: performance figures, alerts evaluated on them, and the channels they notify.

Role: the turn path records every turn in the `PerformanceMonitor` (per agent, team and pool:
`series`), which evaluates the declared `Alert`s after each turn and on every sweep; the
`AlertRelay` turns an alert that fires or clears into an event and a notification; the
`Notifier` delivers notifications to webhook, Slack and email channels in the background.
`insights` draws insights and recommendations from a subject's figures. The `CostMeter`
(`costs`) charges each turn's tokens at the environment's prices and holds spending budgets.

May import: `runner.spec` (models, secrets) and the runtime's neutral modules (clock, events).
Nothing here knows sessions: the session table tells the monitor which sessions are open.
"""

from runner.runtime.monitoring.channels import (
    ChannelStats,
    Notification,
    Notifier,
    RecordingNotifier,
)
from runner.runtime.monitoring.costs import SESSIONS_KEPT, CostMeter, TurnCost
from runner.runtime.monitoring.insights import SubjectFigures, recommend, subject_figures
from runner.runtime.monitoring.monitor import (
    AlertState,
    AlertStatus,
    PerformanceMonitor,
    Subject,
    SubjectKind,
    alert_subject,
)
from runner.runtime.monitoring.relay import AlertRelay, channel_failures
from runner.runtime.monitoring.series import Series, WindowFigures

__all__ = [
    "SESSIONS_KEPT",
    "AlertRelay",
    "AlertState",
    "AlertStatus",
    "ChannelStats",
    "CostMeter",
    "Notification",
    "Notifier",
    "PerformanceMonitor",
    "RecordingNotifier",
    "Series",
    "Subject",
    "SubjectFigures",
    "SubjectKind",
    "TurnCost",
    "WindowFigures",
    "alert_subject",
    "channel_failures",
    "recommend",
    "subject_figures",
]
