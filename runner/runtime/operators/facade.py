"""The operator side of the `Lifecycle` facade, one of its base classes: escalation decisions,
the human queue, requested handoffs, teams created from code and member availability.

Role: `Lifecycle` inherits these methods; each hands the call to the runtime's `Operators`
(`runner.runtime.operators.api`), which checks the caller: every call needs the `operator`
permission and a workspace the caller covers (`create_team`: `admin`); another workspace's
session looks like a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.runtime.auth import AuthLike
from runner.runtime.escalation import Escalation
from runner.runtime.operators.api import HandoffResult, Operators
from runner.spec.models import Team
from runner.spec.vocabulary import Priority
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry

__all__ = ["OperatorCalls"]


class OperatorCalls:
    """What operators do through the facade (see the module docstring)."""

    def __init__(self, operators: Operators) -> None:
        self._operators = operators

    @property
    def operators(self) -> Operators:
        """The operator API of this runtime (see runner.runtime.operators)."""
        return self._operators

    async def approve_escalation(self, session_id: str, *, auth: AuthLike) -> Escalation:
        return await self._operators.approve_escalation(session_id, auth=auth)

    async def reject_escalation(
        self, session_id: str, *, auth: AuthLike, reason: str | None = None
    ) -> Escalation:
        return await self._operators.reject_escalation(session_id, auth=auth, reason=reason)

    async def accept_escalation(self, session_id: str, *, auth: AuthLike) -> Escalation:
        return await self._operators.accept_escalation(session_id, auth=auth)

    def pending_escalations(
        self, *, auth: AuthLike, workspace: str | None = None
    ) -> list[StoredEscalation]:
        return self._operators.pending_escalations(auth=auth, workspace=workspace)

    def human_queue(self, workspace: str | None = None, *, auth: AuthLike) -> list[QueueItem]:
        return self._operators.human_queue(workspace, auth=auth)

    def transcript(self, session_id: str, *, auth: AuthLike) -> list[TranscriptEntry]:
        return self._operators.transcript(session_id, auth=auth)

    async def claim(self, session_id: str, *, auth: AuthLike) -> QueueItem:
        return await self._operators.claim(session_id, auth=auth)

    async def answer(self, session_id: str, *, auth: AuthLike, text: str) -> TranscriptEntry:
        return await self._operators.answer(session_id, auth=auth, text=text)

    async def hand_back(self, session_id: str, *, auth: AuthLike) -> str:
        return await self._operators.hand_back(session_id, auth=auth)

    async def handle_agent_handoff(
        self,
        session_id: str,
        *,
        target_specialization: str,
        reason: str,
        urgency: Priority = "medium",
        auth: AuthLike,
    ) -> HandoffResult:
        return await self._operators.handle_agent_handoff(
            session_id,
            target_specialization=target_specialization,
            reason=reason,
            urgency=urgency,
            auth=auth,
        )

    async def create_team(self, spec: Team | Mapping[str, Any], *, auth: AuthLike) -> Team:
        return await self._operators.create_team(spec, auth=auth)

    def set_member_availability(
        self, team: str, agent: str, status: str, *, auth: AuthLike
    ) -> None:
        self._operators.set_member_availability(team, agent, status, auth=auth)
