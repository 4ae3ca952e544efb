"""Monitoring: performance figures, alerts evaluated on them, and the channels they notify.

Role: the turn path records every turn in the `PerformanceMonitor` (per agent, team and pool:
`series`), which evaluates the declared `Alert`s after each turn and on every sweep; the
`AlertRelay` turns an alert that fires or clears into an event and a notification; the
`Notifier` delivers notifications to webhook, Slack and email channels in the background.
`insights` draws insights and recommendations from a subject's figures. The `CostMeter`
(`costs`) charges each turn's tokens at the environment's prices and holds spending budgets;
the `SessionLedger` keeps each session's turn figures, which `quality` scores; `optimize`
plans an agent's savings from its figures.

May import: `runner.spec` (models, secrets) and the runtime's neutral modules (clock, events).
Nothing here knows sessions: the session table tells the monitor which sessions are open.
"""

from runner.runtime.monitoring.channels import (
    ChannelStats,
    Notification,
    Notifier,
    RecordingNotifier,
)
from runner.runtime.monitoring.costs import CostMeter, TurnCost
from runner.runtime.monitoring.insights import SubjectFigures, recommend, subject_figures
from runner.runtime.monitoring.ledger import SessionFigures, SessionLedger
from runner.runtime.monitoring.monitor import (
    AlertState,
    AlertStatus,
    PerformanceMonitor,
    Subject,
    SubjectKind,
    alert_subject,
)
from runner.runtime.monitoring.optimize import AgentCostFacts, plan_savings
from runner.runtime.monitoring.quality import QualityFacts, assess_quality
from runner.runtime.monitoring.relay import AlertRelay, channel_failures
from runner.runtime.monitoring.series import Series, WindowFigures

__all__ = [
    "AgentCostFacts",
    "AlertRelay",
    "AlertState",
    "AlertStatus",
    "ChannelStats",
    "CostMeter",
    "Notification",
    "Notifier",
    "PerformanceMonitor",
    "QualityFacts",
    "RecordingNotifier",
    "Series",
    "SessionFigures",
    "SessionLedger",
    "Subject",
    "SubjectFigures",
    "SubjectKind",
    "TurnCost",
    "WindowFigures",
    "alert_subject",
    "assess_quality",
    "channel_failures",
    "plan_savings",
    "recommend",
    "subject_figures",
]
