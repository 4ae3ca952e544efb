"""Money: the price of a model's tokens (an Environment's `pricing`) and spending budgets (on a
ResourcePool or a Workspace).

Role in the flow: validate checks the table's shape here (non-negative prices, an ISO 4217
currency code) and, in `runner.spec.checks`, that every model an environment's agents use has a
price; the runtime's cost meter (`runner.runtime.monitoring.costs`) charges each turn's tokens
at these prices and holds the budgets: a warning (`resource:warning`, metric `cost`) when
spending crosses `warn_at`, and, with `refuse: true`, new turns refused once the budget is
spent, like a tokens-per-minute limit.

Prices live on the Environment because they belong to a deployment (region, agreement,
provisioned or pay-as-you-go), like its endpoint.

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Annotated, Literal

from pydantic import Field

from runner.spec.models.base import Fraction, Strict

__all__ = ["Budget", "ModelPrice", "Pricing"]

Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ModelPrice(Strict):
    """What 1,000 tokens of one model deployment cost, in the table's currency."""

    input_per_1k: Amount = Field(description="Price of 1,000 input (prompt) tokens.")
    output_per_1k: Amount = Field(description="Price of 1,000 output (completion) tokens.")


class Pricing(Strict):
    """An environment's price table: model deployment name -> prices."""

    currency: str = Field(
        default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD or EUR."
    )
    models: dict[str, ModelPrice] = Field(min_length=1)


class Budget(Strict):
    """A spending limit per day or per calendar month (UTC), in the environment's currency."""

    amount: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    per: Literal["day", "month"] = "month"
    warn_at: Fraction = Field(
        default=0.8, description="Warn (resource:warning) when this share is spent."
    )
    refuse: bool = Field(
        default=False, description="Refuse new turns once the budget is spent (else warn only)."
    )
