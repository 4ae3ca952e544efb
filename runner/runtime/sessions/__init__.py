"""Sessions at run time: what the runtime runs with, the session table, admission, turns.

Role: everything a session goes through. `AppliedState` holds the specs and applied agent
versions the runtime runs with; `AgentCatalog` pins the version each new session talks to
(applying agents on demand); `Admission` starts sessions; `LiveSessions` holds them and does
the mechanics of their state changes; `SessionChanges` applies routers' decisions, ends
sessions and serves queued handoffs (indexed by `WaitingSessions`); `Turns` answers a message;
`TeamRouters` holds a router per team; `SessionLeases` lets many instances share a store's
sessions (a turn, an end, an expiry hold the session's lease); `SessionConfigs` checks a
session's preferences, feature toggles and workspace overlay and gives the structured inputs
of its turns; `stream_turn` streams a turn (`TurnChunk`s); `SessionService` is the session API
the facade, the `Session` handles and the operator side call.

May import: `runner.spec`, `runner.plan` and `runner.apply` (on-demand apply), `runner.providers`
(the base Protocol), `runner.state` (the session store Protocol, the registry), the runtime's
neutral modules and `runner.runtime.teams`, `.pools`, `.monitoring`, `.tools` (and what they
import).
Never the operator side, the composition root or the facade.

Modules, bottom up: `waiting`, `applied`, `handles`, `provider_calls`, `table`, `leases`,
`routers`, `changes`, `agents`, `configuration`, `admission`, `turns`, `streaming`, `service`.
"""

from runner.runtime.sessions.admission import Admission
from runner.runtime.sessions.agents import (
    LOCK_TIMEOUT_S,
    AgentCatalog,
    AgentStat,
    AgentStats,
    CleanupAllResult,
    CleanupResult,
)
from runner.runtime.sessions.applied import AppliedState, Declared, RegistryChanges
from runner.runtime.sessions.changes import SessionChanges
from runner.runtime.sessions.configuration import SessionConfigs, public_configuration
from runner.runtime.sessions.handles import (
    AgentHandle,
    Session,
    SessionOwner,
    TurnChunk,
    TurnReply,
)
from runner.runtime.sessions.leases import SessionLeases
from runner.runtime.sessions.routers import TeamRouters
from runner.runtime.sessions.service import SessionService
from runner.runtime.sessions.table import LiveSessions
from runner.runtime.sessions.turn_recorder import TurnRecorder
from runner.runtime.sessions.turns import Turns
from runner.runtime.sessions.waiting import WaitingSessions

__all__ = [
    "LOCK_TIMEOUT_S",
    "Admission",
    "AgentCatalog",
    "AgentHandle",
    "AgentStat",
    "AgentStats",
    "AppliedState",
    "CleanupAllResult",
    "CleanupResult",
    "Declared",
    "LiveSessions",
    "RegistryChanges",
    "Session",
    "SessionChanges",
    "SessionConfigs",
    "SessionLeases",
    "SessionOwner",
    "SessionService",
    "TeamRouters",
    "TurnChunk",
    "TurnRecorder",
    "TurnReply",
    "Turns",
    "WaitingSessions",
    "public_configuration",
]
