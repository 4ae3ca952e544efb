"""What the runtime runs with: the applied state of its environment, plus specs where allowed.

Role: first step of `Lifecycle.open` and of every `reload`. `AppliedState.load` reads the
environment's applied resources from the registry (agents' Foundry name and version; teams,
escalation paths, pools, alerts, channels, templates, personalities, workspaces as their spec
bodies) and, unless the environment is protected, fills in declarations from the specs that were
never applied (agents among them are applied on demand by `runner.runtime.sessions.agents`).
`refresh` re-reads applied agents when the registry changed since (`RegistryChanges`: with
SQLite, the file's `data_version`, which only another connection's commit moves).

Invariants:
  - A protected environment runs only what was applied: specs never fill in there.
  - Nothing here runs on the turn path unless the registry changed: `refresh` is one
    `data_version()` when nobody else wrote it.
  - An applied body that no longer validates is ignored with a warning, never fatal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from runner.spec.models import (
    KINDS,
    Agent,
    Alert,
    Channel,
    Environment,
    EscalationPath,
    Personality,
    ResourcePool,
    Team,
    Template,
    Workspace,
)
from runner.spec.project import KIND_ATTRIBUTES, Position, Project, SpecDocument
from runner.state.base import AppliedResource, Registry

__all__ = [
    "DECLARED_FIELDS",
    "AppliedState",
    "Declared",
    "Pin",
    "RegistryChanges",
    "spec_from_body",
]

log = logging.getLogger("runner.runtime")


@dataclass(slots=True)
class Pin:
    """An applied agent version: what new sessions of the agent talk to."""

    foundry_name: str
    version: str
    applied_at: float = 0.0


@dataclass
class Declared:
    """Specs the runtime runs with: applied bodies, plus not-yet-applied specs when allowed."""

    agents: dict[str, Agent] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    personalities: dict[str, Personality] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    escalation_paths: dict[str, EscalationPath] = field(default_factory=dict)
    pools: dict[str, ResourcePool] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    workspaces: dict[str, Workspace] = field(default_factory=dict)


# Kind -> attribute holding its specs, the same name on `Declared` and on `Project`: every kind
# the runtime runs with (environments and scenarios are not applied resources).
DECLARED_FIELDS = {
    kind: attr for kind, attr in KIND_ATTRIBUTES.items() if kind not in ("Environment", "Scenario")
}


class RegistryChanges(Protocol):
    """A counter that moves when someone else wrote the registry (SQLite: `data_version` of
    the file, read on the runtime's own connection)."""

    def data_version(self) -> int: ...


def _pin_of(resource: AppliedResource) -> Pin | None:
    if resource.kind == "Agent" and resource.foundry_name and resource.foundry_version:
        return Pin(resource.foundry_name, resource.foundry_version, resource.applied_at)
    return None


class AppliedState:
    """The declared specs and applied agent versions of one environment (see module doc)."""

    def __init__(
        self,
        *,
        env: Environment,
        registry: Registry,
        changes: RegistryChanges,
        project: Project,
    ) -> None:
        self._env = env
        self._registry = registry
        self._changes = changes
        self.project = project
        self.declared = Declared()
        self.agents: dict[str, Pin] = {}  # agent -> applied version
        self.data_version = -1

    def load(self, project: Project) -> Declared:
        """Applied bodies first; not-yet-applied specs fill in unless the env is protected."""
        env = self._env
        self.project = project
        self.data_version = self._changes.data_version()
        declared = Declared()
        agents: dict[str, Pin] = {}
        for resource in self._registry.applied(env.name).values():
            attr = DECLARED_FIELDS.get(resource.kind)
            if attr is None:
                continue
            pin = _pin_of(resource)
            if pin is not None:
                agents[resource.name] = pin
            spec = spec_from_body(resource)
            if spec is not None:
                getattr(declared, attr)[resource.name] = spec
        if not env.protected:
            for kind, attr in DECLARED_FIELDS.items():
                mine: dict[str, Any] = getattr(declared, attr)
                for name, spec in getattr(project, attr).items():
                    if name not in mine or (kind == "Agent" and name not in agents):
                        mine[name] = spec
        self.declared = declared
        self.agents = agents
        return declared

    def refresh(self) -> None:
        """Re-read applied agents when another connection wrote the registry file."""
        version = self._changes.data_version()
        if version == self.data_version:
            return
        self.data_version = version
        env = self._env
        agents: dict[str, Pin] = {}
        for resource in self._registry.applied(env.name).values():
            pin = _pin_of(resource)
            if pin is not None:
                agents[resource.name] = pin
                spec = spec_from_body(resource)
                if isinstance(spec, Agent) and (
                    env.protected or resource.name not in self.project.agents
                ):
                    self.declared.agents[resource.name] = spec
        self.agents = agents

    def seen_own_write(self) -> None:
        """This runtime wrote the registry itself: no reason to re-read it on the next turn."""
        self.data_version = self._changes.data_version()

    def model_of(self, name: str) -> str | None:
        """The model deployment an agent answers with: its own `model`, else its template's."""
        declared = self.declared
        agent = declared.agents.get(name)
        if agent is None:
            return None
        if agent.model is not None:
            return agent.model
        template = declared.templates.get(agent.template or "")
        return template.model if template is not None else None

    def project_with(self, agent: Agent | None) -> Project:
        """The specs to render from: the declared set (plus `agent`, defined in code)."""
        project = Project()
        specs_win = not self._env.protected  # get_or_create renders the specs as written now
        for attr in ("personalities", "templates", "workspaces"):
            merged = dict(getattr(self.declared, attr))
            if specs_win:
                merged.update(getattr(self.project, attr))
            for spec in merged.values():
                project.add(SpecDocument(spec=spec, position=Position("<runtime>", 1, 1)))
        agents = dict(self.declared.agents)
        if specs_win:
            agents.update(self.project.agents)
        if agent is not None:
            agents[agent.name] = agent
        for spec in agents.values():
            project.add(SpecDocument(spec=spec, position=Position("<runtime>", 1, 1)))
        return project


def spec_from_body(resource: AppliedResource) -> Any:
    """The spec an applied resource was applied from (None: no body, or it no longer
    validates)."""
    model = KINDS.get(resource.kind)
    if model is None or not resource.body:
        return None
    try:
        return model.model_validate(dict(resource.body))
    except ValidationError:
        log.warning("%s: applied body does not validate any more; ignored", resource.address)
        return None
