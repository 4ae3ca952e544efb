"""Per-session figures the turn path writes and conversation quality reads: each answered turn's
response time, the handoffs it carried, and what the session has cost.

Role: `Turns` records every turn here (`record`); `Lifecycle.analyze_conversation_quality`
reads a session's figures back (`of`). Held in memory by this process, bounded: the figures of
the latest `SESSIONS_KEPT` sessions, the latest `TURNS_KEPT` response times of each.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["SESSIONS_KEPT", "TURNS_KEPT", "SessionFigures", "SessionLedger"]

SESSIONS_KEPT = 100_000
TURNS_KEPT = 1_000


@dataclass(slots=True)
class SessionFigures:
    response_times_ms: deque[float] = field(default_factory=lambda: deque(maxlen=TURNS_KEPT))
    handoffs: int = 0
    cost: float = 0.0
    priced: bool = False


class SessionLedger:
    """Figures per session, the latest `kept` sessions (see the module docstring)."""

    def __init__(self, kept: int = SESSIONS_KEPT) -> None:
        self._kept = kept
        self._sessions: dict[str, SessionFigures] = {}

    def record(
        self, session_id: str, *, ms: float | None, handoffs: int, cost: float | None
    ) -> None:
        """One turn of the session: its response time (None: nobody answered), its handoffs
        and its cost (None: no price)."""
        figures = self._sessions.get(session_id)
        if figures is None:
            figures = self._sessions[session_id] = SessionFigures()
            if len(self._sessions) > self._kept:
                del self._sessions[next(iter(self._sessions))]
        if ms is not None:
            figures.response_times_ms.append(ms)
        figures.handoffs += handoffs
        if cost is not None:
            figures.cost += cost
            figures.priced = True

    def of(self, session_id: str) -> SessionFigures | None:
        return self._sessions.get(session_id)
