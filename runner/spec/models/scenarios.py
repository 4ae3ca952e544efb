"""Scenario: a conversation to replay against a team or an agent, with what to expect.

Role in the flow: `runner test` runs each Scenario on a throwaway store with a virtual clock;
its steps (`user`, `end`, `approve`/`reject`, `advance`) drive a session and its `expect`s are
compared with what the session did. `session` sets the session's preferences and feature
toggles; `auth.workspace_id` picks its workspace (and so the workspace's overlay). It speaks
the session vocabulary of `runner.spec.vocabulary` (`SessionState`, `Priority`), as the
runtime's sessions do.

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Any, Literal

from pydantic import Field, model_validator

from runner.spec.models.base import Duration, Envelope, PositiveInt, Strict
from runner.spec.models.configuration import ConfigName
from runner.spec.vocabulary import Priority, SessionState

__all__ = [
    "Auth",
    "Expect",
    "ExpectEscalation",
    "ExpectHandoff",
    "ExpectReply",
    "ExpectTools",
    "Scenario",
    "SessionOptions",
    "Step",
]


class Auth(Strict):
    user_id: str = "scenario-user"
    workspace_id: str | None = None
    permissions: list[str] = Field(default_factory=lambda: ["chat:access"])


class SessionOptions(Strict):
    max_turns: PositiveInt | None = None
    idle_timeout: Duration | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)
    features: dict[ConfigName, bool] = Field(default_factory=dict)
    priority: Priority | None = None


class ExpectHandoff(Strict):
    from_: str | None = Field(default=None, alias="from")
    to: str
    trigger: str | None = None


class ExpectEscalation(Strict):
    level: PositiveInt | None = None
    target: str | None = None
    status: str | None = None


class ExpectReply(Strict):
    """The text of the step's last reply: every `contains` text in it, no `not_contains` text."""

    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)


class ExpectTools(Strict):
    """Function tools in the step, by name: run (`tool:called`), never run, refused because a
    feature switched them off (`tool:refused`), and run or asked for but failed (`tool:failed`:
    a bad argument, an exception, a timeout, no implementation)."""

    called: list[str] = Field(default_factory=list)
    not_called: list[str] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class Expect(Strict):
    agent: str | None = None
    handoff: ExpectHandoff | None = None
    escalation: ExpectEscalation | None = None
    state: SessionState | None = None
    reason: str | None = None
    events: list[str] | None = None
    reply: ExpectReply | None = None
    tools: ExpectTools | None = None
    error: str | None = Field(
        default=None,
        description="The step fails with an error whose message contains this text (e.g. "
        "'max_tool_rounds'); without it a failing step fails the scenario.",
    )


class Step(Strict):
    user: str | None = None
    repeat: PositiveInt = 1
    end: str | None = None
    approve: Literal["escalation"] | None = None
    reject: Literal["escalation"] | None = None
    by: str | None = None
    advance: Duration | None = None
    expect: Expect | None = None

    @model_validator(mode="after")
    def _one_action(self) -> "Step":
        actions = [a for a in ("user", "end", "approve", "reject", "advance") if getattr(self, a)]
        if len(actions) > 1:
            raise ValueError("a step does one thing: " + ", ".join(actions) + " were all given")
        if not actions and self.expect is None:
            raise ValueError(
                "a step needs an action (user, end, approve, reject, advance) or an 'expect'"
            )
        return self


class Scenario(Envelope):
    kind: Literal["Scenario"]
    team: str | None = None
    agent: str | None = None
    auth: Auth = Field(default_factory=Auth)
    session: SessionOptions = Field(default_factory=SessionOptions)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _team_or_agent(self) -> "Scenario":
        if (self.team is None) == (self.agent is None):
            raise ValueError("a scenario drives exactly one of 'team' or 'agent'")
        return self
