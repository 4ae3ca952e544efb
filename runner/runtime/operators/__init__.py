"""The operator side: escalation decisions, the human queue, requested handoffs, teams in code.

Role: people acting on a running runtime. `Operators` follows the runtime's events (escalations
recorded in the history and notified by the `EscalationDesk`; sessions waiting for a person
queued by the `HumanQueue`) and offers the operator API the `Lifecycle` facade exposes
(approve/reject/accept escalations, claim/answer/hand back, handoffs on request, member
availability, teams created from code).

May import: everything of the runtime below it (`sessions`, `teams`, `escalation`,
`monitoring`, the neutral modules), `runner.state` (the operator store Protocols) and
`runner.spec`. Never the composition root or the facade: what it needs from above (reloading
the runtime) it is given as `Reload`.

Modules: `acting` (sessions as operators see and change them), `desk`, `human_queue`,
`team_from_code`, `api` (`Operators`), `facade` (`OperatorCalls`, the `Lifecycle` facade's
operator methods).
"""

from runner.runtime.operators.api import HandoffResult, Operators, Reload
from runner.runtime.operators.desk import EscalationDesk, EscalationNotPendingError
from runner.runtime.operators.facade import OperatorCalls
from runner.runtime.operators.human_queue import ConversationItems, HumanQueue, HumanQueueError

__all__ = [
    "ConversationItems",
    "EscalationDesk",
    "EscalationNotPendingError",
    "HandoffResult",
    "HumanQueue",
    "HumanQueueError",
    "OperatorCalls",
    "Operators",
    "Reload",
]
