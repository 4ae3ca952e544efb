"""Status: the runtime's read side — system status and analytics (`system`), the analyses of
conversation quality and cost savings (`analysis`), and `Reports`, the base class through which
`Lifecycle` offers them (`reports`).

May import the runtime's parts before it (sessions, monitoring, pools and the neutral modules).
"""

from runner.runtime.status.analysis import SessionAnalysis
from runner.runtime.status.reports import Reports
from runner.runtime.status.system import (
    ComponentStatus,
    Insights,
    RuntimeStatus,
    SystemAnalytics,
    SystemStatus,
)

__all__ = [
    "ComponentStatus",
    "Insights",
    "Reports",
    "RuntimeStatus",
    "SessionAnalysis",
    "SystemAnalytics",
    "SystemStatus",
]
