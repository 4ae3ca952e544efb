"""The REST API's bodies: what callers send and get back, as pydantic v2 models (OpenAPI).

Role: validation at the edge (`runner.serve.routes_*` take these, FastAPI answers 422 for
anything else) and the response shapes the OpenAPI document advertises. Request models are
strict about unknown fields and bound every string, list and number; responses are built from
the runtime's values by the `*_out` functions here.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from runner.runtime.sessions.configuration import public_configuration
from runner.runtime.sessions.handles import Session
from runner.state.operators import QueueItem, StoredEscalation, TranscriptEntry

__all__ = [
    "MAX_TEXT",
    "AnswerIn",
    "AvailabilityIn",
    "ConfigurationOut",
    "CreateSessionIn",
    "EndIn",
    "ErrorOut",
    "HandoffIn",
    "RejectIn",
    "SendIn",
    "SessionOut",
    "escalation_out",
    "queue_item_out",
    "session_out",
    "transcript_out",
]

MAX_TEXT = 16_000
MAX_PREFERENCES_BYTES = 8_192
Priority = Literal["low", "medium", "high", "urgent"]
Name = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSessionIn(_In):
    agent: str | None = Field(default=None, min_length=1, max_length=200)
    team: str | None = Field(default=None, min_length=1, max_length=200)
    max_turns: int | None = Field(default=None, ge=1, le=100_000)
    idle_timeout: float | None = Field(
        default=None,
        ge=0,
        le=604_800,
        description="Seconds without a message before the "
        "session ends (0: never); default from AGENT_DEFAULT_IDLE_TIMEOUT_MS.",
    )
    preferences: dict[str, Any] = Field(
        default_factory=dict,
        description="Values of the preferences the agent (or the team's members) declare.",
    )
    features: dict[str, StrictBool] = Field(
        default_factory=dict,
        max_length=64,
        description="Feature toggles the agent (or the team's members) declare: true or false.",
    )
    priority: Priority | None = None
    workspace_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Required when your credentials hold several workspaces.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> CreateSessionIn:
        if (self.agent is None) == (self.team is None):
            raise ValueError("give exactly one of agent or team")
        return self

    @field_validator("preferences")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > MAX_PREFERENCES_BYTES:
            raise ValueError(f"preferences: at most {MAX_PREFERENCES_BYTES} bytes of JSON")
        return value


class SendIn(_In):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class EndIn(_In):
    reason: str = Field(default="ended", min_length=1, max_length=200)


class HandoffIn(_In):
    target_specialization: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=1000)
    urgency: Priority = "medium"


class RejectIn(_In):
    reason: str | None = Field(default=None, max_length=1000)


class AnswerIn(_In):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class AvailabilityIn(_In):
    status: Literal["available", "busy", "offline"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class ConfigurationOut(BaseModel):
    """A session's effective configuration (fixed when it started)."""

    workspace: str | None = None
    overlay: str | None = Field(default=None, description="The Workspace document applied.")
    preferences: dict[str, Any] = Field(default_factory=dict)
    features: dict[str, bool] = Field(default_factory=dict)
    disabled_tools: dict[str, list[str]] = Field(
        default_factory=dict, description="Per agent, the function tools switched off."
    )


class SessionOut(BaseModel):
    id: str
    state: str
    agent: str | None
    team: str | None
    workspace_id: str | None
    conversation_id: str
    turns: int
    max_turns: int | None
    reason: str | None
    tokens: int
    escalation: dict[str, Any] | None
    preferences: dict[str, Any] = Field(default_factory=dict, description="As the session asked.")
    features: dict[str, Any] = Field(default_factory=dict, description="As the session asked.")
    configuration: ConfigurationOut = Field(default_factory=ConfigurationOut)


class HandoffOut(BaseModel):
    from_agent: str | None = Field(alias="from")
    to: str
    trigger: str | None = None
    reason: str | None = None
    queued_for_s: float | None = None

    model_config = ConfigDict(populate_by_name=True)


class ReplyOut(BaseModel):
    session_id: str
    text: str
    agent: str | None
    agent_version: str | None
    turn: int
    state: str
    reason: str | None
    handoffs: list[HandoffOut]
    escalation: dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    response_time_ms: float


class QueueItemOut(BaseModel):
    session_id: str
    team: str | None
    workspace_id: str | None
    user_id: str
    reason: str | None
    trigger: str | None
    escalation_id: str | None
    level: int | None
    previous_agent: str | None
    priority: str | None
    enqueued_at: float
    claimed_by: str | None
    claimed_at: float | None


class EscalationOut(BaseModel):
    session_id: str
    team: str | None
    status: str
    escalation: dict[str, Any]


class TranscriptEntryOut(BaseModel):
    role: str
    author: str | None
    text: str
    at: float


def session_out(session: Session) -> SessionOut:
    row = session.row
    return SessionOut(
        id=row.id,
        state=row.state,
        agent=row.current_agent,
        team=row.target if row.kind == "team" else None,
        workspace_id=row.workspace_id,
        conversation_id=row.conversation_id,
        turns=row.turns,
        max_turns=row.max_turns,
        reason=row.reason,
        tokens=row.input_tokens + row.output_tokens,
        escalation=None if row.escalation is None else dict(row.escalation),
        preferences=dict(row.preferences),
        features=dict(row.features),
        configuration=ConfigurationOut.model_validate(
            public_configuration(row.config, workspace=row.workspace_id)
        ),
    )


def queue_item_out(item: QueueItem) -> QueueItemOut:
    return QueueItemOut(
        session_id=item.session_id,
        team=item.team,
        workspace_id=item.workspace_id,
        user_id=item.user_id,
        reason=item.reason,
        trigger=item.trigger,
        escalation_id=item.escalation_id,
        level=item.level,
        previous_agent=item.previous_agent,
        priority=item.priority,
        enqueued_at=item.enqueued_at,
        claimed_by=item.claimed_by,
        claimed_at=item.claimed_at,
    )


def escalation_out(stored: StoredEscalation) -> EscalationOut:
    return EscalationOut(
        session_id=stored.session_id,
        team=stored.team,
        status=stored.status,
        escalation=dict(stored.escalation),
    )


def transcript_out(entry: TranscriptEntry) -> TranscriptEntryOut:
    return TranscriptEntryOut(role=entry.role, author=entry.author, text=entry.text, at=entry.at)
