"""Agent resolution: an Agent merged with its Template, checked, and the types that carry it.

Role in the flow: the first step of `runner.spec.render`. `resolve_agent` merges an Agent with its
Template and resolves its Personality into a `ResolvedAgent`; `check_metadata` checks what
Foundry allows in user metadata; `texts_to_render` lists every text to render, in a fixed order.
`RenderedAgent` is the result of rendering (built by `runner.spec.render`), and `RenderError`
the one error every step raises.

Merging (template -> agent):
  - every PromptFields field the agent sets replaces the template's value as a whole (lists and
    `metadata` included: an agent's `guidelines` replace the template's, they are not appended);
  - `vars` are merged, never replaced (nested mappings merge key by key, `merge_vars`);
  - `preferences` and `features` merge by name: an agent's declaration of a name replaces the
    template's declaration of that name, the others are kept;
  - the personality is the agent's if set, else the template's.

Invariants:
  - No Jinja here, and nothing environment-dependent: a `ResolvedAgent` is the same for every
    environment, and `sources` names the document that supplied each field, so an error points
    at the text actually used.
  - `RenderedAgent.content_hash()` is deterministic: the same definition, description and
    metadata give the same sha256 in any process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.providers.base import (
    ADDRESS_KEY,
    ENVIRONMENT_KEY,
    HASH_KEY,
    MANAGED_BY_KEY,
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
    PROJECT_KEY,
)
from runner.spec.models import (
    Agent,
    Feature,
    Guideline,
    Personality,
    Preference,
    Template,
    Tool,
    address_of,
)
from runner.spec.project import PathItem, Project

__all__ = [
    "MAX_USER_METADATA",
    "RESERVED_METADATA_KEYS",
    "RenderError",
    "RenderedAgent",
    "ResolvedAgent",
    "check_metadata",
    "merge_vars",
    "resolve_agent",
    "texts_to_render",
]

# Keys runner writes into every managed agent's Foundry metadata; user metadata may not use them.
RESERVED_METADATA_KEYS: frozenset[str] = frozenset(
    {MANAGED_BY_KEY, ADDRESS_KEY, ENVIRONMENT_KEY, HASH_KEY, PROJECT_KEY}
)
# Foundry allows MAX_METADATA_PAIRS per version; runner keeps the reserved ones for itself.
MAX_USER_METADATA = MAX_METADATA_PAIRS - len(RESERVED_METADATA_KEYS)

# ---------------------------------------------------------------- errors


class RenderError(Exception):
    """A text that cannot be rendered, located in the document that holds it.

    `address` is the document (`agent.x`, `template.t`, `personality.p`); `path` is the value
    inside it (`("instructions",)`, `("prompt_modifiers", 2)`); `line` is the 1-based line inside
    that text when Jinja knows it; `agent` is the agent being rendered when the error came up;
    `code` is the problem code: `render.limit` when the text overran its budget
    (`runner.spec.render_limits`), else `render.template`; `detail` is the engine's error alone
    (the same for every agent and environment it affects).
    """

    def __init__(
        self,
        message: str,
        *,
        address: str,
        path: tuple[PathItem, ...] = (),
        line: int | None = None,
        agent: str | None = None,
        code: str = "render.template",
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        """The template engine's own words, the same for every agent and environment."""
        self.address = address
        self.path = path
        self.line = line
        self.agent = agent

    def __str__(self) -> str:
        where = self.address + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path
        )
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


# ---------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ResolvedAgent:
    """An Agent merged with its Template, before any text is rendered.

    `sources` maps each PromptFields field name to the address of the document that supplied it
    (the agent's or the template's), so a render error points at the text that was actually used.
    """

    name: str
    description: str | None
    template: str | None
    model: str | None
    instructions: str | None
    temperature: float | None
    top_p: float | None
    tool_choice: str | None
    max_turns: int | None
    personality_name: str | None
    personality: Personality | None
    tools: tuple[Tool, ...]
    capabilities: tuple[str, ...]
    guidelines: tuple[Guideline, ...]
    metadata: Mapping[str, str]
    layout: str | None
    vars: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    preferences: Mapping[str, Preference] = field(default_factory=dict)
    features: Mapping[str, Feature] = field(default_factory=dict)
    overlaid: frozenset[str] = frozenset()
    """Top-level `vars` keys some Workspace sets: read per session, never baked in."""

    @property
    def address(self) -> str:
        return address_of("Agent", self.name)

    def source_of(self, field_name: str) -> str:
        return self.sources.get(field_name, self.address)


_MERGED_FIELDS = (
    "model",
    "instructions",
    "temperature",
    "top_p",
    "tool_choice",
    "max_turns",
    "personality",
    "tools",
    "capabilities",
    "guidelines",
    "metadata",
    "layout",
)


def merge_vars(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_vars(old, value)
        else:
            merged[key] = value
    return merged


def resolve_agent(project: Project, name: str) -> ResolvedAgent:
    """Merge agent `name` with its template and resolve its personality.

    RenderError when the agent, its template or its personality does not exist.
    """
    agent: Agent | None = project.agents.get(name)
    if agent is None:
        raise RenderError(
            f"no agent named {name!r} in the project", address=address_of("Agent", name)
        )
    agent_address = address_of("Agent", name)
    template: Template | None = None
    if agent.template is not None:
        template = project.templates.get(agent.template)
        if template is None:
            known = ", ".join(sorted(project.templates)) or "none declared"
            raise RenderError(
                f"template {agent.template!r} does not exist (known templates: {known})",
                address=agent_address,
                path=("template",),
                agent=name,
            )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field_name in _MERGED_FIELDS:
        value = getattr(agent, field_name)
        source = agent_address
        if value is None and template is not None:
            value = getattr(template, field_name)
            source = address_of("Template", template.name)
        values[field_name] = value
        if value is not None:
            sources[field_name] = source
    merged_vars = merge_vars(template.vars if template is not None else {}, agent.vars)
    template_address = address_of("Template", template.name) if template is not None else ""
    declared: dict[str, dict[str, Any]] = {"preferences": {}, "features": {}}
    for field_name, by_name in declared.items():
        for owner, address in ((template, template_address), (agent, agent_address)):
            if owner is None:
                continue
            for key, value in (getattr(owner, field_name) or {}).items():
                by_name[key] = value
                sources[f"{field_name}.{key}"] = address

    personality: Personality | None = None
    personality_name: str | None = values["personality"]
    if personality_name is not None:
        personality = project.personalities.get(personality_name)
        if personality is None:
            known = ", ".join(sorted(project.personalities)) or "none declared"
            raise RenderError(
                f"personality {personality_name!r} does not exist (known personalities: {known})",
                address=sources["personality"],
                path=("personality",),
                agent=name,
            )
    return ResolvedAgent(
        name=name,
        description=agent.description,
        template=agent.template,
        model=values["model"],
        instructions=values["instructions"],
        temperature=values["temperature"],
        top_p=values["top_p"],
        tool_choice=values["tool_choice"],
        max_turns=values["max_turns"],
        personality_name=personality_name,
        personality=personality,
        tools=tuple(values["tools"] or ()),
        capabilities=tuple(values["capabilities"] or ()),
        guidelines=tuple(values["guidelines"] or ()),
        metadata=dict(values["metadata"] or {}),
        layout=values["layout"],
        vars=merged_vars,
        sources=sources,
        preferences=declared["preferences"],
        features=declared["features"],
        overlaid=frozenset(k for w in project.workspaces.values() for k in w.vars),
    )


# ---------------------------------------------------------------- the rendered agent


@dataclass(frozen=True)
class RenderedAgent:
    """What one agent is in one environment: the Foundry definition plus runner-side settings."""

    name: str
    foundry_name: str
    model: str
    instructions: str
    temperature: float | None
    top_p: float | None
    tool_choice: str | None
    tools: list[dict[str, Any]]
    description: str | None
    metadata: dict[str, str]
    max_turns: int | None
    capabilities: list[str]
    personality: str | None
    structured_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    session: Any = field(default=None, compare=False, repr=False)
    """The agent's `runner.spec.render_session.SessionPlan` (None: nothing varies per session)."""

    def definition(self) -> dict[str, Any]:
        """The prompt-agent definition as the SDK sends it: None values omitted, `kind` last."""
        body: dict[str, Any] = {"model": self.model, "instructions": self.instructions}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.tools:
            body["tools"] = json.loads(json.dumps(self.tools))
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        if self.structured_inputs:
            body["structured_inputs"] = json.loads(json.dumps(self.structured_inputs))
        body["kind"] = "prompt"
        return body

    def content_hash(self) -> str:
        """sha256 hex of the canonical JSON of definition + description + user metadata."""
        payload = {
            "definition": self.definition(),
            "description": self.description,
            "metadata": self.metadata,
        }
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- checks and texts


def check_metadata(resolved: ResolvedAgent) -> None:
    source = resolved.source_of("metadata")
    for key, value in resolved.metadata.items():
        if key in RESERVED_METADATA_KEYS:
            raise RenderError(
                f"metadata key {key!r} is reserved for runner's own bookkeeping; use another key",
                address=source,
                path=("metadata", key),
                agent=resolved.name,
            )
        if len(key) > MAX_METADATA_KEY or len(value) > MAX_METADATA_VALUE:
            raise RenderError(
                f"metadata {key!r}: Foundry allows keys of at most {MAX_METADATA_KEY} characters "
                f"and values of at most {MAX_METADATA_VALUE}",
                address=source,
                path=("metadata", key),
                agent=resolved.name,
            )
    if len(resolved.metadata) > MAX_USER_METADATA:
        raise RenderError(
            f"{len(resolved.metadata)} metadata entries: Foundry allows {MAX_METADATA_PAIRS} per "
            f"agent and runner keeps {len(RESERVED_METADATA_KEYS)}, so at most "
            f"{MAX_USER_METADATA} are yours",
            address=source,
            path=("metadata",),
            agent=resolved.name,
        )


def texts_to_render(resolved: ResolvedAgent) -> Iterator[tuple[str, tuple[PathItem, ...], str]]:
    """(address, path, source) of every text rendered before the layout, in a fixed order."""
    if resolved.instructions is not None:
        yield resolved.source_of("instructions"), ("instructions",), resolved.instructions
    p = resolved.personality
    if p is not None:
        p_address = address_of("Personality", p.name)
        for i, text in enumerate(p.prompt_modifiers):
            yield p_address, ("prompt_modifiers", i), text
        for key, text in p.response_templates.items():
            yield p_address, ("response_templates", key), text
        for i, text in enumerate(p.prohibited_behaviors):
            yield p_address, ("prohibited_behaviors", i), text
    g_address = resolved.source_of("guidelines")
    for i, g in enumerate(resolved.guidelines):
        yield g_address, ("guidelines", i, "condition"), g.condition
        yield g_address, ("guidelines", i, "action"), g.action
