"""Money at run time: each turn's tokens charged at the environment's prices, totals per
agent, team, pool, workspace, model and environment, and the spending budgets.

Role: the turn path asks `refusal(...)` before a turn (a spent budget with `refuse: true`
refuses it, like a tokens-per-minute limit) and `charge(...)` after it; status and analytics
read `figures()`; `runner serve` exports the totals to Prometheus. Prices come from the
Environment's `pricing` (`runner.spec.models.costs`), the answering agent's model from the
applied specs (`model_of`).

Invariants:
  - A model with no price (or no `pricing` at all) costs nothing and its tokens are counted as
    `unpriced_tokens`: costs are never guessed.
  - A budget's period is the UTC day or calendar month of the runtime's clock; spending starts
    at zero in each new period.
  - A budget warns once per period when spending crosses `warn_at` and once when it is spent
    (`resource:warning`, metric `cost`); only `refuse: true` refuses turns.
  - Figures are held in memory by this process (like the pools' token windows); a session's
    own cost is kept by the `SessionLedger`.
"""

from __future__ import annotations

import calendar
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.runtime.clock import Clock
from runner.runtime.errors import SpendingBudgetError
from runner.spec.models import Budget, Pricing, ResourcePool, Workspace

__all__ = ["CostMeter", "TurnCost"]

Emit = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class TurnCost:
    """What one turn cost (`amount` None: its model has no price)."""

    amount: float | None
    currency: str
    model: str | None


@dataclass(slots=True)
class _Spending:
    budget: Budget
    period: str = ""
    spent: float = 0.0
    warned: set[str] = field(default_factory=set)


def _period(per: str, now: float) -> str:
    day = time.gmtime(now)
    return f"{day.tm_year:04d}-{day.tm_mon:02d}" + (f"-{day.tm_mday:02d}" if per == "day" else "")


def _period_left(per: str, now: float) -> float:
    """Seconds until the period that holds `now` ends (UTC)."""
    day = time.gmtime(now)
    if per == "day":
        ends = time.struct_time((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, 0))
        return max(0.0, _timegm(ends) + 86400.0 - now)
    year, month = (day.tm_year + 1, 1) if day.tm_mon == 12 else (day.tm_year, day.tm_mon + 1)
    ends = time.struct_time((year, month, 1, 0, 0, 0, 0, 0, 0))
    return max(0.0, _timegm(ends) - now)


def _timegm(moment: time.struct_time) -> float:
    return float(calendar.timegm(moment))


class CostMeter:
    """Costs and budgets of one runtime (see the module docstring)."""

    def __init__(self, *, env: str, clock: Clock, emit: Emit) -> None:
        self._env = env
        self._clock = clock
        self._emit = emit
        self._pricing: Pricing | None = None
        self._model_of: Callable[[str], str | None] = lambda _agent: None
        self._budgets: dict[tuple[str, str], _Spending] = {}  # ("pool"|"workspace", name)
        self.totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.unpriced_tokens = 0
        self.turns = 0
        self.agent_tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        """agent -> [turns, input tokens, output tokens] (priced or not)."""

    @property
    def pricing(self) -> Pricing | None:
        return self._pricing

    @property
    def currency(self) -> str:
        return self._pricing.currency if self._pricing is not None else "USD"

    def configure(
        self,
        *,
        pricing: Pricing | None,
        pools: Mapping[str, ResourcePool],
        workspaces: Iterable[Workspace],
        model_of: Callable[[str], str | None],
    ) -> None:
        """Take the prices and budgets of (re)loaded specs; a budget keeps what was spent in its
        period when it is still declared."""
        self._pricing = pricing
        self._model_of = model_of
        declared: dict[tuple[str, str], Budget] = {
            ("pool", name): pool.budget for name, pool in pools.items() if pool.budget is not None
        }
        declared.update(
            {("workspace", ws.id): ws.budget for ws in workspaces if ws.budget is not None}
        )
        kept = {
            key: _Spending(budget, old.period, old.spent, old.warned)
            if (old := self._budgets.get(key)) is not None and old.budget.per == budget.per
            else _Spending(budget)
            for key, budget in declared.items()
        }
        self._budgets = kept

    def price(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """The cost of these tokens on `model`, or None when it has no price."""
        if model is None or self._pricing is None:
            return None
        rate = self._pricing.models.get(model)
        if rate is None:
            return None
        return (input_tokens * rate.input_per_1k + output_tokens * rate.output_per_1k) / 1000.0

    def _subjects(self, pools: Iterable[str], workspace: str | None) -> list[tuple[str, str]]:
        subjects = [("pool", p) for p in pools]
        if workspace is not None:
            subjects.append(("workspace", workspace))
        return [s for s in subjects if s in self._budgets]

    def refusal(self, *, pools: Iterable[str], workspace: str | None) -> None:
        """Raise `SpendingBudgetError` when a refusing budget of these is spent this period."""
        if not self._budgets:
            return
        now = self._clock.now()
        for key in self._subjects(pools, workspace):
            spending = self._budgets[key]
            budget = spending.budget
            if not budget.refuse:
                continue
            spent = spending.spent if spending.period == _period(budget.per, now) else 0.0
            if spent >= budget.amount:
                raise SpendingBudgetError(
                    f"{key[0]}.{key[1]}",
                    budget.amount,
                    spent,
                    per=budget.per,
                    currency=self.currency,
                    retry_after=_period_left(budget.per, now),
                )

    def charge(
        self,
        *,
        agent: str,
        team: str | None,
        pools: Iterable[str],
        workspace: str | None,
        input_tokens: int,
        output_tokens: int,
    ) -> TurnCost:
        """Charge one answered turn; returns its cost."""
        self.turns += 1
        served = self.agent_tokens[agent]
        served[0] += 1
        served[1] += input_tokens
        served[2] += output_tokens
        model = self._model_of(agent)
        amount = self.price(model, input_tokens, output_tokens)
        if amount is None:
            self.unpriced_tokens += input_tokens + output_tokens
            return TurnCost(None, self.currency, model)
        pools = tuple(pools)
        totals = self.totals
        totals["environment"][self._env] += amount
        totals["agent"][agent] += amount
        if model is not None:
            totals["model"][model] += amount
        if team is not None:
            totals["team"][team] += amount
        for pool in pools:
            totals["pool"][pool] += amount
        if workspace is not None:
            totals["workspace"][workspace] += amount
        if self._budgets:
            self._spend(self._subjects(pools, workspace), amount)
        return TurnCost(amount, self.currency, model)

    def _spend(self, subjects: list[tuple[str, str]], amount: float) -> None:
        now = self._clock.now()
        for key in subjects:
            spending = self._budgets[key]
            budget = spending.budget
            period = _period(budget.per, now)
            if spending.period != period:
                spending.period, spending.spent, spending.warned = period, 0.0, set()
            spending.spent += amount
            for level, threshold in (("warn", budget.warn_at), ("spent", 1.0)):
                if level in spending.warned or spending.spent < budget.amount * threshold:
                    continue
                spending.warned.add(level)
                self._emit(
                    "resource:warning",
                    {
                        key[0]: key[1],
                        "metric": "cost",
                        "value": round(spending.spent, 6),
                        "limit": budget.amount,
                        "threshold": threshold,
                        "currency": self.currency,
                        "period": period,
                        "refusing": budget.refuse and level == "spent",
                    },
                )

    def figures(self) -> dict[str, Any]:
        """Totals per subject kind, the budgets' spending this period, unpriced tokens."""
        now = self._clock.now()
        budgets = {}
        for (kind, name), spending in sorted(self._budgets.items()):
            budget = spending.budget
            current = spending.period == _period(budget.per, now)
            budgets[f"{kind}.{name}"] = {
                "amount": budget.amount,
                "per": budget.per,
                "spent": round(spending.spent if current else 0.0, 6),
                "refuse": budget.refuse,
            }
        totals = {
            kind: {name: round(value, 6) for name, value in sorted(values.items())}
            for kind, values in self.totals.items()
        }
        return {
            "currency": self.currency,
            "priced": self._pricing is not None,
            "total": round(sum(self.totals["environment"].values()), 6),
            "by": totals,
            "budgets": budgets,
            "unpriced_tokens": self.unpriced_tokens,
        }
