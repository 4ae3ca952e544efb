"""The kinds an agent is built from: Personality, Template and Agent, with guidelines and tools.

Role in the flow: `runner.spec.render_resolve` merges an Agent with its Template (every
`PromptFields` field the agent sets replaces the template's) and resolves its Personality;
rendering turns the result into the Foundry definition. Tools keep their keys as written
(Foundry has dozens of tool types); `runner.spec.checks` checks the required keys of the types
runner knows.

No `from __future__ import annotations` here: pydantic would evaluate every annotation string at
import, paid on every `runner validate` (see `base`).
"""

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from runner.spec.models.base import Duration, Envelope, NonNegInt, PositiveInt, Strict
from runner.spec.models.configuration import ConfigName, Feature, Preference

__all__ = [
    "IMPLEMENTATION_PATTERN",
    "RUNNER_ONLY_TOOL_KEYS",
    "TOOL_REQUIRED_KEYS",
    "Agent",
    "Guideline",
    "Personality",
    "PromptFields",
    "Template",
    "Tool",
    "Traits",
]

TOOL_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "function": ("name", "parameters", "strict"),
    "file_search": ("vector_store_ids",),
    "bing_grounding": ("bing_grounding",),
    "azure_ai_search": ("azure_ai_search",),
    "mcp": ("server_label",),
    "openapi": ("openapi",),
}
"""Top-level keys Foundry needs per tool type (its wire shapes); published in the JSON Schema
of `tools` as if/then rules, checked with the nested rules by `runner.spec.checks.tools`."""


def _tool_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema of a tool: per known type, the keys it needs."""
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {"required": list(keys)},
        }
        for kind, keys in TOOL_REQUIRED_KEYS.items()
    ]


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


class Guideline(Strict):
    condition: str
    action: str
    priority: NonNegInt = 1


IMPLEMENTATION_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
    r"(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
"""`package.module:function` (the function may be an attribute path, `module:Class.method`)."""


class Tool(Strict):
    """A Foundry tool. `type` picks the tool; the other keys are passed to Foundry as written.

    Known types are checked against Foundry's wire shapes in `runner.spec.checks.tools` (their
    required keys are in the JSON Schema too); the model stays open to the keys of each tool
    type (Foundry has dozens) but closed to a missing `type`.
    """

    model_config = ConfigDict(extra="allow", frozen=True, json_schema_extra=_tool_schema)
    type: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")]
    implementation: Annotated[str, Field(pattern=IMPLEMENTATION_PATTERN)] | None = Field(
        default=None,
        description="Function tools: the Python function the runtime runs for a call, "
        "`package.module:function` (runner-only: never sent to Foundry).",
    )
    timeout: Duration | None = Field(
        default=None,
        description="Function tools: how long one call may run before the model is told it "
        "timed out (runner-only; default 30s).",
    )

    @model_validator(mode="after")
    def _runner_keys_on_functions_only(self) -> "Tool":
        if self.type != "function":
            used = [k for k in ("implementation", "timeout") if getattr(self, k) is not None]
            if used:
                raise ValueError(
                    f"{' and '.join(repr(k) for k in used)} "
                    f"appl{'y' if len(used) > 1 else 'ies'} to function tools only "
                    f"(this tool runs inside Foundry: type {self.type!r})"
                )
        return self


RUNNER_ONLY_TOOL_KEYS = frozenset({"implementation", "timeout"})
"""Tool keys runner keeps for itself: never part of the definition sent to Foundry."""


class PromptFields(Strict):
    """Fields a Template provides and an Agent may override."""

    model: str | None = Field(default=None, min_length=1, description="Foundry model deployment.")
    instructions: str | None = Field(default=None, description="Jinja2 template text.")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    tool_choice: str | None = None
    max_turns: PositiveInt | None = None
    max_tool_rounds: PositiveInt | None = Field(
        default=None,
        description="Most function-call rounds in one turn (runner-only; default 8); a turn "
        "whose model still asks for functions after that ends with an error.",
    )
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
    preferences: dict[ConfigName, Preference] | None = Field(
        default=None,
        description="What a session may set (e.g. `formality`), read as `prefs.<name>` in texts; "
        "merged by name with the template's.",
    )
    features: dict[ConfigName, Feature] | None = Field(
        default=None,
        description="Capabilities switched per environment, workspace or session, read as "
        "`features.<name>` in texts; merged by name with the template's.",
    )


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
