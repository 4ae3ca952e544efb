"""The read side of the `Lifecycle` facade, its base class: insights, system status and
analytics, conversation quality and cost optimisation.

Role: `Lifecycle` inherits these methods; each checks what it must (a session read with the
caller's authority: another workspace's session looks missing; an agent that is declared) and
asks `RuntimeStatus` or `SessionAnalysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.runtime.auth import AuthLike
from runner.runtime.errors import UnknownAgentError
from runner.runtime.sessions import Declared, SessionService
from runner.runtime.status.analysis import SessionAnalysis
from runner.runtime.status.system import Insights, RuntimeStatus, SystemAnalytics, SystemStatus

__all__ = ["Reports"]


class Reports:
    """Reports of one runtime (see the module docstring)."""

    def __init__(
        self,
        *,
        status: RuntimeStatus,
        analysis: SessionAnalysis,
        sessions: SessionService,
        declared: Callable[[], Declared],
    ) -> None:
        self._status = status
        self._analysis = analysis
        self._sessions = sessions
        self._declared = declared

    def get_performance_insights(self, agent: str) -> Insights:
        return self._status.insights(agent)

    def get_system_status(self) -> SystemStatus:
        return self._status.system_status()

    def get_system_analytics(self) -> SystemAnalytics:
        return self._status.system_analytics()

    async def analyze_conversation_quality(
        self,
        session_id: str,
        *,
        auth: AuthLike,
        user_goals: Sequence[str] = (),
        expected_outcomes: Sequence[str] = (),
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Scores of one session (resolution, goal coverage, outcomes, response time, the
        evaluator's verdict), each with its evidence; `auth` must be able to read the session."""
        self._sessions.get(session_id, auth=auth)  # authorises: another workspace's is missing
        row = self._sessions.session_row(session_id)
        assert row is not None  # it was just read
        return await self._analysis.conversation_quality(
            row, user_goals=user_goals, expected_outcomes=expected_outcomes, context=context
        )

    def optimize_agent_resources(
        self,
        agent: str,
        *,
        aggressive: bool = False,
        preserve_performance: bool = True,
        target_cost_reduction: float | None = None,
    ) -> dict[str, Any]:
        """Projected savings and an implementation plan for `agent` from its figures; each
        step is a spec change to make, never applied here."""
        declared = self._declared()
        if agent not in declared.agents:
            raise UnknownAgentError(f"agent.{agent} is not declared")
        return self._analysis.optimize_agent(
            agent,
            declared=declared,
            aggressive=aggressive,
            preserve_performance=preserve_performance,
            target_cost_reduction=target_cost_reduction,
        )
