"""The analyses behind `Lifecycle.analyze_conversation_quality` and
`Lifecycle.optimize_agent_resources`: they gather the facts and hand them to the pure scoring of
`runner.runtime.monitoring.quality` and `runner.runtime.monitoring.optimize`.

Role: quality reads one session's row, its conversation's messages (the provider's
`conversation_messages`), its ledger figures and, when the Environment names an evaluator
agent, that agent's verdict on a conversation of its own; optimisation reads an agent's spec,
its cost and token figures and its monitor figures.

Invariants: reading changes nothing but the evaluator's own conversation; the caller's
authority is checked by `runner.runtime.status.reports` before anything is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.providers.base import Provider
from runner.runtime.context import RuntimeContext
from runner.runtime.monitoring import (
    AgentCostFacts,
    CostMeter,
    PerformanceMonitor,
    QualityFacts,
    SessionLedger,
    assess_quality,
    plan_savings,
    subject_figures,
)
from runner.runtime.pools import PoolManager, estimate_tokens
from runner.runtime.sessions import AgentCatalog, Declared, LiveSessions
from runner.runtime.sessions.provider_calls import call_provider
from runner.state.sessions import SessionRow

__all__ = ["SessionAnalysis"]

MESSAGES_READ = 200  # the latest messages of a conversation read for quality
MESSAGES_JUDGED = 40  # of which the evaluator sees the latest
_SCORE = re.compile(r"SCORE:\s*([0-9]+(?:\.[0-9]+)?)")


class SessionAnalysis:
    """Quality of sessions and savings of agents (see the module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        provider: Provider,
        table: LiveSessions,
        monitor: PerformanceMonitor,
        pools: PoolManager,
        costs: CostMeter,
        ledger: SessionLedger,
        agents: AgentCatalog,
    ) -> None:
        self._ctx = ctx
        self._provider = provider
        self._table = table
        self._monitor = monitor
        self._pools = pools
        self._costs = costs
        self._ledger = ledger
        self._agents = agents

    # ------------------------------------------------------------ cost optimisation

    def optimize_agent(
        self,
        agent: str,
        *,
        declared: Declared,
        aggressive: bool,
        preserve_performance: bool,
        target_cost_reduction: float | None,
    ) -> dict[str, Any]:
        """Projected savings and an implementation plan for one declared agent."""
        spec = declared.agents[agent]
        template = declared.templates.get(spec.template or "")
        instructions = spec.instructions or (template.instructions if template else None) or ""
        max_turns = spec.max_turns or (template.max_turns if template else None)
        now = self._ctx.clock.now()
        figures = subject_figures(self._monitor.get(("agent", agent)), now)
        turns, input_tokens, output_tokens = self._costs.agent_tokens.get(agent, [0, 0, 0])
        pools = self._pools.pools_for(agent)
        table = self._table
        ended = sum(table.ended_reasons.values())
        facts = AgentCostFacts(
            agent=agent,
            model=spec.model or (template.model if template else None),
            pricing=self._costs.pricing,
            turns=turns,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=self._costs.totals["agent"].get(agent, 0.0),
            instructions_tokens=estimate_tokens(instructions),
            error_rate=figures["error_rate"],
            p95_ms=figures["p95_response_time_ms"],
            slow_ms=self._ctx.config.alert_threshold_ms,
            max_turns=max_turns,
            average_turns=(table.ended_turns / ended) if ended else None,
            pool=pools[0] if pools else None,
            pool_has_budget=bool(pools) and declared.pools[pools[0]].budget is not None,
        )
        return plan_savings(
            facts,
            aggressive=aggressive,
            preserve_performance=preserve_performance,
            target_cost_reduction=target_cost_reduction,
        )

    # ------------------------------------------------------------ conversation quality

    async def conversation_quality(
        self,
        row: SessionRow,
        *,
        user_goals: Sequence[str],
        expected_outcomes: Sequence[str],
        context: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The quality of one session (a row its caller may read) with the evidence."""
        provider = self._provider
        read = await call_provider(
            provider,
            provider.conversation_messages,
            conversation_id=row.conversation_id,
            limit=MESSAGES_READ,
        )
        messages = [(m.role, m.text) for m in read]
        settings = self._ctx.env.quality
        context = dict(context or {})
        if settings.response_time_target_ms is not None:
            context.setdefault("response_time_target_ms", settings.response_time_target_ms)
        judged = None
        if settings.evaluator is not None:
            judged = await self._judge(settings.evaluator, messages, user_goals, expected_outcomes)
        figures = self._ledger.of(row.id)
        facts = QualityFacts(
            session_id=row.id,
            state=row.state,
            reason=row.reason,
            turns=row.turns,
            created_at=row.created_at,
            ended_at=row.ended_at,
            escalated=row.escalation is not None or row.state == "awaiting_human",
            handoffs=figures.handoffs if figures is not None else 0,
            response_times_ms=list(figures.response_times_ms) if figures is not None else [],
            messages=messages,
            judged=judged,
            evaluator=settings.evaluator,
            cost=figures.cost if figures is not None and figures.priced else None,
        )
        return assess_quality(
            facts, user_goals=user_goals, expected_outcomes=expected_outcomes, context=context
        )

    async def _judge(
        self,
        evaluator: str,
        messages: Sequence[tuple[str, str]],
        goals: Sequence[str],
        outcomes: Sequence[str],
    ) -> tuple[float | None, str]:
        """Ask the evaluator agent (its applied version, a conversation of its own)."""
        pin = await self._agents.pin(evaluator)
        provider = self._provider
        conversation = await call_provider(
            provider, provider.create_conversation, metadata={"runner-purpose": "quality"}
        )
        transcript = "\n".join(f"{role}: {text}" for role, text in messages[-MESSAGES_JUDGED:])
        prompt = (
            "Score how well this support conversation served the user, from 0 (not at all) to "
            "1 (fully).\n"
            f"User goals: {'; '.join(goals) or 'not stated'}\n"
            f"Expected outcomes: {'; '.join(outcomes) or 'not stated'}\n"
            f"Conversation:\n{transcript}\n"
            "Answer with a line SCORE: <number> and one sentence of reasons."
        )
        reply = await call_provider(
            provider,
            provider.respond,
            conversation_id=conversation,
            agent_name=pin.foundry_name,
            agent_version=pin.version,
            text=prompt,
        )
        found = _SCORE.findall(reply.text)
        if not found:
            return None, f"{evaluator} gave no SCORE: line"
        value = float(found[-1])
        if value > 1 and value <= 100:  # a score out of 5, 10 or 100
            value /= 5 if value <= 5 else 10 if value <= 10 else 100
        return min(1.0, max(0.0, value)), f"{evaluator}: {' '.join(reply.text.split())[:200]}"
