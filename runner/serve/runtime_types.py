"""The serve layer's view of the runtime: every runtime-, spec-, state- and watch-internal name
`runner serve` uses, imported here and nowhere else in `runner/serve`.

Role: the one place to repoint when those packages are restructured (issue 16 moves
`runner.runtime.*` into subpackages; runner/spec, state and watch move too). The rest of the
serve layer uses the public facade (`from runner import Lifecycle`) and the names below, always
as `from runner.serve.runtime_types import X`. Nothing here is re-exported to users.
"""

from __future__ import annotations

from runner.runtime.errors import (
    AgentLimitError,
    LifecycleError,
    NotAppliedError,
    PermissionDeniedError,
    PoolLimitError,
    SessionNotFoundError,
    SessionStateError,
    SpecProblemsError,
    TokenBudgetError,
    TurnFailedError,
    UnknownAgentError,
    UnknownTeamError,
)
from runner.runtime.escalation import Escalation
from runner.runtime.escalations import EscalationNotPendingError
from runner.runtime.events import Event
from runner.runtime.human_queue import HumanQueueError
from runner.runtime.opening import load_specs
from runner.runtime.operators import HandoffResult
from runner.runtime.session import AuthContext, Session, TurnReply
from runner.spec.models import Duration, Environment, Strict, parse_duration
from runner.spec.project import Project
from runner.spec.secrets import MissingSecretError, SecretSyntaxError, find_references, resolve
from runner.state.humanqueue import QueueItem, StoredEscalation, TranscriptEntry
from runner.state.sessions import SessionRow
from runner.watch.engine import ReloadEngine
from runner.watch.outcome import ReloadOutcome
from runner.watch.watcher import SpecWatcher, lifecycle_hook

__all__ = [
    "AgentLimitError",
    "AuthContext",
    "Duration",
    "Environment",
    "Escalation",
    "EscalationNotPendingError",
    "Event",
    "HandoffResult",
    "HumanQueueError",
    "LifecycleError",
    "MissingSecretError",
    "NotAppliedError",
    "PermissionDeniedError",
    "PoolLimitError",
    "Project",
    "QueueItem",
    "ReloadEngine",
    "ReloadOutcome",
    "SecretSyntaxError",
    "Session",
    "SessionNotFoundError",
    "SessionRow",
    "SessionStateError",
    "SpecProblemsError",
    "SpecWatcher",
    "StoredEscalation",
    "Strict",
    "TokenBudgetError",
    "TranscriptEntry",
    "TurnFailedError",
    "TurnReply",
    "UnknownAgentError",
    "UnknownTeamError",
    "find_references",
    "lifecycle_hook",
    "load_specs",
    "parse_duration",
    "resolve",
]
