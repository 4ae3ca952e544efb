"""Cost optimisation of one agent: projected savings and an implementation plan, from figures.

Role: `Lifecycle.optimize_agent_resources` gathers what is known of an agent (its model and its
price, the tokens and turns it has served, its instructions, its error rate and response time,
its pool's limits) and `plan_savings` here proposes changes, each a spec change with its
expected effect and the saving it projects over the same traffic. Nothing is ever applied: a
step names the field to edit, and `runner plan` then shows the change like any other.

Steps, cheapest risk first:
  - `cached_prefix`: Foundry caches a repeated prompt prefix of 1,024+ tokens; instructions
    that long and stable are charged at the cached-input discount (an estimate, 50 %);
  - `shorter_instructions`: instructions are input tokens on every turn; trimming them by a
    quarter (a third when `aggressive`) saves that share of their tokens;
  - `cheaper_model`: a model of the price table that costs less for this agent's mix of input
    and output tokens: the next cheaper one, or the cheapest when `aggressive`. With
    `preserve_performance` it is proposed only while the agent's error rate is under 5 % and
    its p95 response time under the alert threshold (headroom to lose some quality);
  - `max_turns`: a session that runs long costs every turn's growing context; a cap near the
    observed average (when the agent has none);
  - `pool_budget`: a spending budget on the agent's pool (no saving by itself: a limit).
With `target_cost_reduction` (a share, e.g. 0.3), steps are taken in order until it is met and
the plan says whether it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.spec.models import ModelPrice, Pricing

__all__ = ["CACHE_DISCOUNT", "AgentCostFacts", "plan_savings"]

CACHE_DISCOUNT = 0.5  # cached input tokens, as charged by Azure OpenAI deployments (estimate)
CACHE_MIN_TOKENS = 1024
_ERROR_HEADROOM = 0.05


@dataclass(frozen=True, slots=True)
class AgentCostFacts:
    agent: str
    model: str | None
    pricing: Pricing | None
    turns: int
    input_tokens: int
    output_tokens: int
    cost: float
    instructions_tokens: int
    error_rate: float
    p95_ms: float | None
    slow_ms: float
    max_turns: int | None
    average_turns: float | None
    pool: str | None
    pool_has_budget: bool
    notes: list[str] = field(default_factory=list)


def _turn_price(rate: ModelPrice, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * rate.input_per_1k + output_tokens * rate.output_per_1k) / 1000.0


def _step(action: str, change: str, effect: str, saving: float, risk: str) -> dict[str, Any]:
    return {
        "action": action,
        "change": change,
        "expected_effect": effect,
        "saving": round(saving, 6),
        "risk": risk,
    }


def plan_savings(
    facts: AgentCostFacts,
    *,
    aggressive: bool = False,
    preserve_performance: bool = True,
    target_cost_reduction: float | None = None,
) -> dict[str, Any]:
    """Projected savings and the plan for one agent (see the module docstring)."""
    pricing = facts.pricing
    currency = pricing.currency if pricing is not None else None
    rate = pricing.models.get(facts.model or "") if pricing is not None else None
    steps: list[dict[str, Any]] = []
    cost = facts.cost
    notes = list(facts.notes)
    if rate is None:
        notes.append(
            f"model {facts.model!r} has no price in the environment's pricing: savings cannot "
            "be projected in money (add it to pricing.models)"
        )
    per_turn_input = facts.input_tokens / facts.turns if facts.turns else 0.0
    if rate is not None and facts.turns:
        instruction_input = min(facts.instructions_tokens, per_turn_input) * facts.turns
        instruction_cost = instruction_input * rate.input_per_1k / 1000.0
        if facts.instructions_tokens >= CACHE_MIN_TOKENS:
            steps.append(
                _step(
                    "cached_prefix",
                    f"agent.{facts.agent}: keep instructions stable between versions (no "
                    "per-session text before them)",
                    f"{facts.instructions_tokens} instruction tokens per turn charged as cached "
                    f"input (about {CACHE_DISCOUNT:.0%} off)",
                    instruction_cost * CACHE_DISCOUNT,
                    "none for quality",
                )
            )
        share = 1 / 3 if aggressive else 0.25
        if facts.instructions_tokens >= 50:
            steps.append(
                _step(
                    "shorter_instructions",
                    f"agent.{facts.agent}: instructions about {share:.0%} shorter "
                    f"({facts.instructions_tokens} -> "
                    f"{int(facts.instructions_tokens * (1 - share))} tokens)",
                    f"{int(facts.instructions_tokens * share)} fewer input tokens on every turn",
                    instruction_cost * share,
                    "low: review that no rule the agent relies on is lost",
                )
            )
        steps.extend(_cheaper_model(facts, rate, aggressive, preserve_performance))
    if (
        facts.max_turns is None
        and facts.average_turns is not None
        and facts.turns
        and cost > 0
        and facts.average_turns > 4
    ):
        cap = max(5, round(facts.average_turns * 1.5))
        steps.append(
            _step(
                "max_turns",
                f"agent.{facts.agent}: max_turns: {cap}",
                "sessions that run past the usual length end instead of growing their context",
                cost * 0.05,
                "medium: long but useful sessions end early; watch resolution",
            )
        )
    if facts.pool is not None and not facts.pool_has_budget:
        steps.append(
            _step(
                "pool_budget",
                f"pool.{facts.pool}: budget: {{amount: <monthly limit>, per: month}}",
                "a warning before the spend passes the limit (refuse: true to stop there)",
                0.0,
                "none until reached",
            )
        )
    steps.sort(key=lambda s: -s["saving"])
    chosen, saved = steps, sum(s["saving"] for s in steps)
    met = None
    if target_cost_reduction is not None and cost > 0:
        chosen, saved = [], 0.0
        for step in steps:
            if saved >= cost * target_cost_reduction:
                break
            chosen.append(step)
            saved += step["saving"]
        met = saved >= cost * target_cost_reduction
    return {
        "agent": facts.agent,
        "current": {
            "model": facts.model,
            "turns": facts.turns,
            "input_tokens": facts.input_tokens,
            "output_tokens": facts.output_tokens,
            "cost": round(cost, 6),
            "currency": currency,
        },
        "projected_savings": {
            "amount": round(saved, 6),
            "share": round(saved / cost, 4) if cost > 0 else None,
            "currency": currency,
            "over": f"the same {facts.turns} turns",
            "target": target_cost_reduction,
            "target_met": met,
        },
        "implementation_plan": chosen,
        "applied": False,
        "notes": [*notes, "nothing is applied: edit the specs, then `runner plan` shows it"],
    }


def _cheaper_model(
    facts: AgentCostFacts, rate: ModelPrice, aggressive: bool, preserve: bool
) -> list[dict[str, Any]]:
    pricing = facts.pricing
    assert pricing is not None
    current = _turn_price(rate, facts.input_tokens, facts.output_tokens)
    cheaper = sorted(
        (
            (_turn_price(other, facts.input_tokens, facts.output_tokens), name)
            for name, other in pricing.models.items()
            if name != facts.model
        ),
    )
    cheaper = [(price, name) for price, name in cheaper if price < current]
    if not cheaper:
        return []
    if preserve and (
        facts.error_rate >= _ERROR_HEADROOM
        or (facts.p95_ms is not None and facts.p95_ms > facts.slow_ms)
    ):
        return []
    price, name = cheaper[0] if aggressive else cheaper[-1]
    return [
        _step(
            "cheaper_model",
            f"agent.{facts.agent}: model {facts.model} -> {name}",
            f"the same tokens at {price / current:.0%} of today's price",
            current - price,
            "high: answers change; run the team's Scenarios and compare quality first",
        )
    ]
