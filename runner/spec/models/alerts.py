"""Alert and Channel: a figure watched over a window, and where its breaches are sent.

Role in the flow: the runtime evaluates each Alert after every turn over its `window` and sends
`performance:alert` / `performance:alert-cleared` to the alert's channels (webhook and Slack by
HTTP POST, email by SMTP). A Channel's string values may hold `${VAR}` references, resolved only
when the channel is used (`runner.spec.secrets`).

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Literal

from pydantic import Field, model_validator

from runner.spec.models.base import Comparison, Duration, Envelope, NonNegInt

__all__ = ["Alert", "AlertMetric", "Channel"]

AlertMetric = Literal[
    "average_response_time",
    "p95_response_time",
    "error_rate",
    "turns",
    "tokens",
    "tokens_per_minute",
    "handoffs",
    "escalations",
    "active_sessions",
    "cost",
    "resolution_rate",
]


class Alert(Envelope):
    kind: Literal["Alert"]
    agent: str | None = None
    team: str | None = None
    pool: str | None = None
    metric: AlertMetric
    condition: Comparison
    threshold: float
    severity: Literal["info", "warning", "critical"] = "warning"
    window: Duration = Field(default="5m", description="Figures are taken over this window.")
    notify: list[str] = Field(default_factory=list)
    enabled: bool = True

    @model_validator(mode="after")
    def _exactly_one_subject(self) -> "Alert":
        subjects = [s for s in ("agent", "team", "pool") if getattr(self, s) is not None]
        if len(subjects) != 1:
            raise ValueError("an alert watches exactly one of 'agent', 'team' or 'pool'")
        return self


class Channel(Envelope):
    """A notification channel. String values may hold `${VAR}` / `${VAR:-default}` references,
    resolved only when the channel is used."""

    kind: Literal["Channel"]
    type: Literal["slack", "webhook", "email"]
    url: str | None = None
    to: list[str] | None = None
    smtp: str | None = None
    sender: str | None = Field(default=None, alias="from")
    headers: dict[str, str] = Field(default_factory=dict)
    retries: NonNegInt = 3
    timeout: Duration = "5s"

    @model_validator(mode="after")
    def _fields_for_type(self) -> "Channel":
        if self.type in ("slack", "webhook") and self.url is None:
            raise ValueError(f"a {self.type} channel needs 'url'")
        if self.type == "email" and not self.to:
            raise ValueError("an email channel needs 'to'")
        return self
