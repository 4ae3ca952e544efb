"""Typed spec kinds: the first stop after YAML in the flow (YAML -> load -> *models* -> desired).

Every kind is a strict pydantic v2 model (`extra="forbid"`), so an unknown or misspelt field is an
error with a position, and the published JSON Schemas in `schemas/` are generated from these
classes. Field names and meanings follow `shared/contract/specs`; fields may be added, never
renamed. Semantic rules that need more than one document (references, uniqueness, Foundry naming
per environment) live in `runner.spec.checks`, not here.

No `from __future__ import annotations` here: pydantic would have to evaluate every annotation
string at import (about a tenth of building these classes, paid on every `runner validate`).
"""

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_VERSION = "runner/v1"
SUPPORTED_API_VERSIONS: tuple[str, ...] = (API_VERSION,)

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `250ms`, `60s`, `5m`, `1h`, `2d`; ValueError otherwise."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: write a number and a unit (ms, s, m, h, d), e.g. 60s"
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Duration = Annotated[
    str,
    Field(
        pattern=r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$",
        description="A duration: a number and a unit (ms, s, m, h, d), e.g. 250ms, 60s, 5m, 1h.",
    ),
]
Regex = Annotated[str, Field(description="A Python regular expression.")]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$",
        description="Letters, digits, '-', '_', '.'; starts and ends with a letter or digit.",
    ),
]


class Strict(BaseModel):
    """Base of every spec model: unknown fields are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Envelope(Strict):
    """Fields every document carries."""

    api_version: Literal["runner/v1"] = Field(alias="apiVersion")
    name: Name
    description: str | None = Field(default=None, max_length=512)
    labels: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- Personality


class Traits(Strict):
    formality: Literal["casual", "professional", "formal"] | None = None
    verbosity: Literal["concise", "balanced", "detailed"] | None = None
    helpfulness: Literal["reactive", "balanced", "proactive"] | None = None
    creativity: Literal["conservative", "balanced", "creative"] | None = None
    empathy: Literal["low", "medium", "high"] | None = None


class Personality(Envelope):
    kind: Literal["Personality"]
    traits: Traits = Field(default_factory=Traits)
    prompt_modifiers: list[str] = Field(default_factory=list)
    response_templates: dict[str, str] = Field(default_factory=dict)
    prohibited_behaviors: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------- Template / Agent


class Guideline(Strict):
    condition: str
    action: str
    priority: NonNegInt = 1


class Tool(Strict):
    """A Foundry tool. `type` picks the tool; the other keys are passed to Foundry as written.

    Known types are checked for their required keys in `runner.spec.checks`; the model stays
    open to the keys of each tool type (Foundry has dozens) but closed to a missing `type`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")]


class PromptFields(Strict):
    """Fields a Template provides and an Agent may override."""

    model: str | None = Field(default=None, min_length=1, description="Foundry model deployment.")
    instructions: str | None = Field(default=None, description="Jinja2 template text.")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    tool_choice: str | None = None
    max_turns: PositiveInt | None = None
    personality: str | None = None
    tools: list[Tool] | None = None
    capabilities: list[str] | None = None
    guidelines: list[Guideline] | None = None
    metadata: dict[str, str] | None = None
    layout: str | None = Field(
        default=None,
        description="Jinja2 layout composing the final instructions (overrides the default).",
    )
    vars: dict[str, Any] = Field(default_factory=dict)


class Template(Envelope, PromptFields):
    kind: Literal["Template"]
    category: str | None = None


class Agent(Envelope, PromptFields):
    kind: Literal["Agent"]
    template: str | None = None

    @model_validator(mode="after")
    def _standalone_needs_model_and_instructions(self) -> "Agent":
        if self.template is None:
            missing = [f for f in ("model", "instructions") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    "an agent without a template needs "
                    + " and ".join(f"'{m}'" for m in missing)
                    + " (or set 'template')"
                )
        return self


# ---------------------------------------------------------------- Team / EscalationPath


class TriggerWhen(Strict):
    keywords: list[Annotated[str, Field(min_length=1)]] | None = None
    pattern: Regex | None = None
    requested: list[Annotated[str, Field(min_length=1)]] | None = None
    turns_above: NonNegInt | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return value if value is None else _check_regex(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> "TriggerWhen":
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError("'when' needs one of keywords, pattern, requested, turns_above")
        return self


class HandoffTrigger(Strict):
    name: Name
    when: TriggerWhen
    target: str = Field(description="A specialization in the team, or 'human'.")
    priority: NonNegInt = 1
    active: bool = True


class TeamMember(Strict):
    agent: str
    role: Literal["primary", "specialist", "supervisor", "backup"] = "specialist"
    specialization: str
    priority: NonNegInt = 1
    max_workload: PositiveInt = 10
    capabilities: list[str] = Field(default_factory=list)
    handoff_triggers: list[HandoffTrigger] = Field(default_factory=list)
    availability: Literal["available", "busy", "offline"] = "available"


class Workflow(Strict):
    escalation_path: str | None = None
    parallel_processing: bool = False
    requires_human_approval: bool = False
    on_no_free_member: Literal["escalate", "wait"] = Field(
        default="escalate",
        description="A handoff whose specialization has no free member: follow the escalation "
        "path, or queue until a member frees up.",
    )
    preserve_full_context: bool = True


class Team(Envelope):
    kind: Literal["Team"]
    workspace: str | None = None
    members: list[TeamMember] = Field(min_length=1)
    workflow: Workflow = Field(default_factory=Workflow)


class EscalationWhen(Strict):
    trigger: str | None = None
    turns_above: NonNegInt | None = None
    keywords: list[Annotated[str, Field(min_length=1)]] | None = None
    pattern: Regex | None = None
    no_free_member: bool | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return value if value is None else _check_regex(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> "EscalationWhen":
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError(
                "'when' needs one of trigger, turns_above, keywords, pattern, no_free_member"
            )
        return self


class EscalationLevel(Strict):
    level: PositiveInt
    target: str = Field(description="A specialization in the team, or 'human'.")
    when: EscalationWhen
    auto_escalate: bool = False
    requires_approval: bool = False
    notify: list[str] = Field(default_factory=list)


class EscalationPath(Envelope):
    kind: Literal["EscalationPath"]
    levels: list[EscalationLevel] = Field(min_length=1)


# ---------------------------------------------------------------- ResourcePool


class PoolLimits(Strict):
    max_memory_mb: PositiveInt | None = None
    max_cpu_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    max_concurrent_sessions: PositiveInt | None = None
    max_tokens_per_minute: PositiveInt | None = None
    max_network_bytes_per_second: PositiveInt | None = None
    max_storage_mb: PositiveInt | None = None


class PriorityWeights(Strict):
    response_time: Fraction = 0.25
    throughput: Fraction = 0.25
    quality: Fraction = 0.25
    cost: Fraction = 0.25


class ElasticLimits(Strict):
    min_memory_mb: NonNegInt | None = None
    max_memory_mb: NonNegInt | None = None
    min_cpu_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    max_cpu_percent: Annotated[float, Field(ge=0, le=100)] | None = None


class Allocation(Strict):
    strategy: Literal["conservative", "balanced", "aggressive"] = "balanced"
    reserved_memory_mb: NonNegInt | None = None
    reserved_cpu_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    priority_weights: PriorityWeights = Field(default_factory=PriorityWeights)
    elastic_limits: ElasticLimits = Field(default_factory=ElasticLimits)


class ScalingTrigger(Strict):
    name: Name
    metric: Literal["memory", "cpu", "sessions", "tokens", "response_time", "error_rate"]
    condition: Literal["above", "below"]
    threshold: float
    duration: Duration = "60s"
    action: Literal["scale_up", "scale_down"]
    priority: NonNegInt = 1


class Scaling(Strict):
    enabled: bool = False
    triggers: list[ScalingTrigger] = Field(default_factory=list)
    cooldown: Duration = "5m"
    min_instances: NonNegInt = 1
    max_instances: PositiveInt = 1
    scale_up_threshold: Fraction = 0.8
    scale_down_threshold: Fraction = 0.3
    predictive: bool = False


class AlertThresholds(Strict):
    memory: Fraction | None = None
    cpu: Fraction | None = None
    sessions: Fraction | None = None
    tokens: Fraction | None = None


class Monitoring(Strict):
    enabled: bool = True
    interval: Duration = "15s"
    alert_thresholds: AlertThresholds = Field(default_factory=AlertThresholds)
    retention_days: PositiveInt = 30
    aggregation_level: Literal["basic", "detailed"] = "basic"


class ResourcePool(Envelope):
    kind: Literal["ResourcePool"]
    agents: list[str] = Field(min_length=1)
    limits: PoolLimits = Field(default_factory=PoolLimits)
    allocation: Allocation = Field(default_factory=Allocation)
    scaling: Scaling = Field(default_factory=Scaling)
    monitoring: Monitoring = Field(default_factory=Monitoring)


# ---------------------------------------------------------------- Alert / Channel

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
]


class Alert(Envelope):
    kind: Literal["Alert"]
    agent: str | None = None
    team: str | None = None
    pool: str | None = None
    metric: AlertMetric
    condition: Literal["above", "below"]
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


# ---------------------------------------------------------------- Environment


class Environment(Envelope):
    """Where specs are applied. `${VAR}` values resolve only when the environment is used."""

    kind: Literal["Environment"]
    provider: Literal["local", "foundry"] = "local"
    endpoint: str | None = None
    default: bool = False
    name_prefix: str = ""
    protected: bool = False
    vars: dict[str, Any] = Field(default_factory=dict)
    data_dir: str | None = Field(
        default=None, description="Local provider: where its SQLite store lives (default .runner)."
    )

    @model_validator(mode="after")
    def _foundry_needs_endpoint(self) -> "Environment":
        if self.provider == "foundry" and not self.endpoint:
            raise ValueError("a foundry environment needs 'endpoint'")
        return self


# ---------------------------------------------------------------- Scenario


class Auth(Strict):
    user_id: str = "scenario-user"
    workspace_id: str | None = None
    permissions: list[str] = Field(default_factory=lambda: ["chat:access"])


class SessionOptions(Strict):
    max_turns: PositiveInt | None = None
    idle_timeout: Duration | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)
    priority: Literal["low", "medium", "high", "urgent"] | None = None


class ExpectHandoff(Strict):
    from_: str | None = Field(default=None, alias="from")
    to: str
    trigger: str | None = None


class ExpectEscalation(Strict):
    level: PositiveInt | None = None
    target: str | None = None
    status: str | None = None


class Expect(Strict):
    agent: str | None = None
    handoff: ExpectHandoff | None = None
    escalation: ExpectEscalation | None = None
    state: Literal["active", "paused", "awaiting_human", "ended"] | None = None
    reason: str | None = None
    events: list[str] | None = None


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


SpecDoc = (
    Personality
    | Template
    | Agent
    | Team
    | EscalationPath
    | ResourcePool
    | Alert
    | Channel
    | Environment
    | Scenario
)

KINDS: dict[str, type[Envelope]] = {
    "Personality": Personality,
    "Template": Template,
    "Agent": Agent,
    "Team": Team,
    "EscalationPath": EscalationPath,
    "ResourcePool": ResourcePool,
    "Alert": Alert,
    "Channel": Channel,
    "Environment": Environment,
    "Scenario": Scenario,
}

# Address prefixes used by plans, the registry and the CLI (`agent.tech-agent-1`).
ADDRESS_PREFIX: dict[str, str] = {
    "Personality": "personality",
    "Template": "template",
    "Agent": "agent",
    "Team": "team",
    "EscalationPath": "escalation_path",
    "ResourcePool": "pool",
    "Alert": "alert",
    "Channel": "channel",
    "Environment": "environment",
    "Scenario": "scenario",
}


def address_of(kind: str, name: str) -> str:
    """The stable address of a resource, e.g. `agent.tech-agent-1`."""
    return f"{ADDRESS_PREFIX[kind]}.{name}"
