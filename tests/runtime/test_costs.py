"""Costs and budgets through real sessions on the local provider: each turn charged at its
model's price (known answers from the turn's own token counts), totals per agent, team, pool,
workspace and environment, a budget that warns then refuses until its period ends, unpriced
models counted, not guessed; and validate's `cost.unpriced`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runtime_support import AUTH, contract_project, copy_contract

from runner.runtime.clock import FakeClock
from runner.runtime.errors import SpendingBudgetError, UnknownAgentError
from runner.runtime.events import Event

PRICED_ENV = """
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
data_dir: {data_dir}
pricing:
  currency: EUR
  models:
    gpt-4o: {{input_per_1k: 2.5, output_per_1k: 10.0}}
    gpt-4o-mini: {{input_per_1k: 0.15, output_per_1k: 0.6}}
"""

BUDGET_POOL = """
apiVersion: runner/v1
kind: ResourcePool
name: high-performance
agents: [general-agent-1, tech-agent-1, billing-agent-1]
limits: {max_concurrent_sessions: 100, max_tokens_per_minute: 1000000}
budget: {amount: %s, per: day, warn_at: 0.5, refuse: true}
"""

PRICES = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}


def expected(model: str, reply: Any) -> float:
    rate_in, rate_out = PRICES[model]
    return (reply.input_tokens * rate_in + reply.output_tokens * rate_out) / 1000.0


@pytest.fixture
def priced(tmp_path: Path, clock: FakeClock) -> Any:
    from runner.runtime.lifecycle import Lifecycle

    def opener(*extra: str) -> Any:
        return Lifecycle.open(
            contract_project(PRICED_ENV.format(data_dir=tmp_path / "store"), *extra),
            env="local",
            registry_path=tmp_path / "state.db",
            environ={},
            clock=clock,
            background=False,
        )

    return opener


async def test_each_turn_is_charged_at_its_models_price_and_totalled_everywhere(
    priced: Any,
) -> None:
    async with priced() as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        first = await session.send("Hi, I have a question about my account settings")
        second = await session.send("The dashboard shows an Error every time I log in")
        figures = lc.get_system_analytics()["costs"]
    assert (first.agent, second.agent) == ("general-agent-1", "tech-agent-1")
    # general-agent-1 answers with its template's gpt-4o-mini, tech-agent-1 with gpt-4o
    assert first.cost == pytest.approx(expected("gpt-4o-mini", first))
    assert second.cost == pytest.approx(expected("gpt-4o", second))
    total = first.cost + second.cost
    assert figures["currency"] == "EUR" and figures["priced"] is True
    assert figures["total"] == pytest.approx(total, abs=1e-6)
    by = figures["by"]
    assert by["environment"] == {"local": pytest.approx(total, abs=1e-6)}
    assert by["team"] == {"customer-support": pytest.approx(total, abs=1e-6)}
    assert by["agent"]["general-agent-1"] == pytest.approx(first.cost, abs=1e-6)
    assert by["agent"]["tech-agent-1"] == pytest.approx(second.cost, abs=1e-6)
    assert by["model"]["gpt-4o"] == pytest.approx(second.cost, abs=1e-6)
    assert by["workspace"] == {"workspace-123": pytest.approx(total, abs=1e-6)}
    assert by["pool"]["high-performance"] == pytest.approx(total, abs=1e-6)
    assert figures["unpriced_tokens"] == 0


async def test_a_budget_warns_refuses_then_opens_again_the_next_day(
    priced: Any, clock: FakeClock
) -> None:
    async with priced(BUDGET_POOL % "0.0001") as lc:
        warnings: list[Event] = []
        lc.on("resource:warning", warnings.append)
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        reply = await session.send("Hello there, I need help with my invoice please")
        assert reply.cost is not None and reply.cost >= 0.0001  # one turn spends it
        costs = [w.data for w in warnings if w.data.get("metric") == "cost"]
        assert [(c["pool"], c["threshold"], c["refusing"]) for c in costs] == [
            ("high-performance", 0.5, False),
            ("high-performance", 1.0, True),
        ]
        with pytest.raises(SpendingBudgetError) as refused:
            await session.send("And another question")
        message = str(refused.value)
        assert "pool.high-performance" in message and "daily budget of 0.0001 EUR" in message
        assert session.turns == 1  # refused before anything was sent
        clock.advance(86_400)
        again = await session.send("Good morning")
        assert again.agent == "general-agent-1"
        budgets = lc.get_system_analytics()["costs"]["budgets"]
        assert budgets["pool.high-performance"]["spent"] == pytest.approx(again.cost, abs=1e-6)


async def test_a_model_without_a_price_costs_nothing_and_is_counted(open_lc: Any) -> None:
    async with open_lc() as lc:  # no pricing at all
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        reply = await session.send("Hello")
        figures = lc.get_system_analytics()["costs"]
    assert reply.cost is None
    assert figures["priced"] is False and figures["total"] == 0
    assert figures["unpriced_tokens"] == reply.input_tokens + reply.output_tokens


def test_validate_names_each_unpriced_model_once_at_the_price_table(tmp_path: Path) -> None:
    specs = copy_contract(tmp_path / "specs")
    env = PRICED_ENV.replace("    gpt-4o: {{input_per_1k: 2.5, output_per_1k: 10.0}}\n", "")
    priced_env = env.format(data_dir=tmp_path / "store").replace("name: local", "name: priced")
    (specs / "priced-env.yaml").write_text(priced_env.replace("default: true", "default: false"))
    done = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(specs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "has no price" in line]
    assert len(lines) == 1, done.stdout
    # at the price table's entries (line 11, column 5), where the price is to be added
    assert lines[0].startswith(f"{specs / 'priced-env.yaml'}:11:5: error: Environment 'priced'")
    assert "model 'gpt-4o'" in lines[0] and "add pricing.models.gpt-4o" in lines[0]


async def test_optimizing_an_agent_projects_savings_from_its_figures_and_applies_nothing(
    priced: Any,
) -> None:
    async with priced() as lc:
        session = await lc.create_agent_session(agent="tech-agent-1", auth=AUTH)
        replies = [await session.send(f"My laptop shows error {i} at boot") for i in range(3)]
        versions = {v.name: v.version for v in lc.provider.list_agents()}
        plan = lc.optimize_agent_resources("tech-agent-1")
        aggressive = lc.optimize_agent_resources("tech-agent-1", target_cost_reduction=0.5)
        with pytest.raises(UnknownAgentError):
            lc.optimize_agent_resources("ghost-agent")
        assert {v.name: v.version for v in lc.provider.list_agents()} == versions
    spent = sum(r.cost for r in replies)
    inputs = sum(r.input_tokens for r in replies)
    outputs = sum(r.output_tokens for r in replies)
    assert plan["current"] == {
        "model": "gpt-4o",
        "turns": 3,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "cost": pytest.approx(spent, abs=1e-6),
        "currency": "EUR",
    }
    steps = {s["action"]: s for s in plan["implementation_plan"]}
    cheaper = steps["cheaper_model"]
    assert cheaper["change"] == "agent.tech-agent-1: model gpt-4o -> gpt-4o-mini"
    mini = (inputs * 0.15 + outputs * 0.6) / 1000
    assert cheaper["saving"] == pytest.approx(spent - mini, abs=1e-6)
    assert "pool_budget" in steps  # its pool has no budget: a limit, no saving of its own
    assert plan["applied"] is False
    assert plan["projected_savings"]["amount"] == pytest.approx(
        sum(s["saving"] for s in plan["implementation_plan"]), abs=1e-6
    )
    # a target takes the largest savings first and stops once it is met
    chosen = aggressive["implementation_plan"]
    assert chosen[0]["action"] == "cheaper_model" and aggressive["projected_savings"]["target_met"]
    assert len(chosen) < len(plan["implementation_plan"])


COST_ALERTS = """
apiVersion: runner/v1
kind: Alert
name: general-spend
agent: general-agent-1
metric: cost
condition: above
threshold: 0.00001
window: 1h
---
apiVersion: runner/v1
kind: Alert
name: support-unresolved
team: customer-support
metric: resolution_rate
condition: below
threshold: 0.5
window: 1h
"""


async def test_cost_and_resolution_rate_are_alert_metrics(priced: Any) -> None:
    async with priced(COST_ALERTS) as lc:
        fired: list[Event] = []
        lc.on("performance:alert", fired.append)
        solo = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        await solo.send("Hello, a question about my invoice")
        assert [e.data["alert"] for e in fired] == ["general-spend"]
        team = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await team.send("Hello")
        await team.end("user_ended")  # ended, not resolved: the team's rate drops to 0
        assert [e.data["alert"] for e in fired] == ["general-spend", "support-unresolved"]
        states = {a["alert"]: a for a in lc.get_system_analytics()["performance"]["alerts"]}
    assert states["support-unresolved"]["value"] == 0.0
    assert states["general-spend"]["value"] > 0.00001
