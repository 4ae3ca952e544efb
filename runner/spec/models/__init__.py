"""Typed spec kinds: the first stop after YAML in the flow (YAML -> load -> *models* -> desired).

Every kind is a strict pydantic v2 model (`extra="forbid"`), so an unknown or misspelt field is an
error with a position, and the published JSON Schemas in `schemas/` are generated from these
classes. Field names and meanings follow `shared/contract/specs`; fields may be added, never
renamed. Semantic rules that need more than one document (references, uniqueness, Foundry naming
per environment) live in `runner.spec.checks`, not here.

The package's public API is `__all__` below; each name lives in one module, by kind family:
  `base`          the envelope, strict models, durations, field types, apiVersion;
  `prompts`       Personality, Template, Agent (guidelines, tools);
  `configuration` preferences, feature toggles and the Workspace overlay;
  `teams`         Team and EscalationPath (members, triggers, levels, `HUMAN`);
  `pools`         ResourcePool (limits, allocation, scaling, monitoring);
  `alerts`        Alert and Channel;
  `costs`         model prices (an Environment's `pricing`) and budgets (pools, workspaces);
  `environments`  Environment (and what its spans may carry);
  `scenarios`     Scenario (steps, expectations, the session vocabulary);
  `kinds`         `KINDS`, `ADDRESS_PREFIX`, `address_of`.
A kind module imports only `base` (and the field models it embeds: `auth`, `configuration`,
`costs`);
only `kinds` imports every kind module. Importing the package
imports pydantic and every model (what `runner validate` needs anyway), nothing else.
"""

from runner.spec.models.alerts import Alert, AlertMetric, Channel
from runner.spec.models.auth import ApiKeyConfig, AuthConfig, ClaimsMapping, JwtConfig
from runner.spec.models.base import (
    API_VERSION,
    DURATION_PATTERN,
    SUPPORTED_API_VERSIONS,
    ApiVersion,
    Comparison,
    Duration,
    Envelope,
    Fraction,
    Name,
    NonNegInt,
    PositiveInt,
    Regex,
    Strict,
    check_regex,
    parse_duration,
)
from runner.spec.models.configuration import (
    CONFIG_NAME_PATTERN,
    RESERVED_INPUT_PREFIX,
    ConfigName,
    Feature,
    Preference,
    Workspace,
)
from runner.spec.models.costs import Budget, ModelPrice, Pricing
from runner.spec.models.environments import Environment, QualitySettings, TelemetrySettings
from runner.spec.models.kinds import ADDRESS_PREFIX, KINDS, SpecDoc, address_of
from runner.spec.models.pools import (
    AlertThresholds,
    Allocation,
    ElasticLimits,
    Monitoring,
    PoolLimits,
    PriorityWeights,
    ResourcePool,
    Scaling,
    ScalingTrigger,
)
from runner.spec.models.prompts import (
    IMPLEMENTATION_PATTERN,
    RUNNER_ONLY_TOOL_KEYS,
    TOOL_REQUIRED_KEYS,
    Agent,
    Guideline,
    Personality,
    PromptFields,
    Template,
    Tool,
    Traits,
)
from runner.spec.models.scenarios import (
    Auth,
    Expect,
    ExpectEscalation,
    ExpectHandoff,
    ExpectReply,
    ExpectTools,
    Scenario,
    SessionOptions,
    Step,
)
from runner.spec.models.teams import (
    EscalationLevel,
    EscalationPath,
    EscalationWhen,
    HandoffTrigger,
    Team,
    TeamMember,
    TriggerWhen,
    Workflow,
)

__all__ = [
    "ADDRESS_PREFIX",
    "API_VERSION",
    "CONFIG_NAME_PATTERN",
    "DURATION_PATTERN",
    "IMPLEMENTATION_PATTERN",
    "KINDS",
    "RESERVED_INPUT_PREFIX",
    "RUNNER_ONLY_TOOL_KEYS",
    "SUPPORTED_API_VERSIONS",
    "TOOL_REQUIRED_KEYS",
    "Agent",
    "Alert",
    "AlertMetric",
    "AlertThresholds",
    "Allocation",
    "ApiKeyConfig",
    "ApiVersion",
    "Auth",
    "AuthConfig",
    "Budget",
    "Channel",
    "ClaimsMapping",
    "Comparison",
    "ConfigName",
    "Duration",
    "ElasticLimits",
    "Envelope",
    "Environment",
    "EscalationLevel",
    "EscalationPath",
    "EscalationWhen",
    "Expect",
    "ExpectEscalation",
    "ExpectHandoff",
    "ExpectReply",
    "ExpectTools",
    "Feature",
    "Fraction",
    "Guideline",
    "HandoffTrigger",
    "JwtConfig",
    "ModelPrice",
    "Monitoring",
    "Name",
    "NonNegInt",
    "Personality",
    "PoolLimits",
    "PositiveInt",
    "Preference",
    "Pricing",
    "PriorityWeights",
    "PromptFields",
    "QualitySettings",
    "Regex",
    "ResourcePool",
    "Scaling",
    "ScalingTrigger",
    "Scenario",
    "SessionOptions",
    "SpecDoc",
    "Step",
    "Strict",
    "Team",
    "TeamMember",
    "TelemetrySettings",
    "Template",
    "Tool",
    "Traits",
    "TriggerWhen",
    "Workflow",
    "Workspace",
    "address_of",
    "check_regex",
    "parse_duration",
]
