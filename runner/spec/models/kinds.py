"""The closed set of spec kinds: the model of each, and the address every resource goes by.

Role in the flow: the loader picks a document's model from `KINDS` by its `kind`; plans, the
registry, the CLI and the runtime name a resource by `address_of(kind, name)`
(`agent.tech-agent-1`); `runner.spec.schema` publishes one JSON Schema per kind.

Invariant: `KINDS`, `ADDRESS_PREFIX` and `SpecDoc` name the same eleven kinds (and
`runner.spec.project.KIND_ATTRIBUTES` the Project attribute of each).
"""

from runner.spec.models.alerts import Alert, Channel
from runner.spec.models.base import Envelope
from runner.spec.models.configuration import Workspace
from runner.spec.models.environments import Environment
from runner.spec.models.pools import ResourcePool
from runner.spec.models.prompts import Agent, Personality, Template
from runner.spec.models.scenarios import Scenario
from runner.spec.models.teams import EscalationPath, Team

__all__ = ["ADDRESS_PREFIX", "KINDS", "SpecDoc", "address_of"]

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
    | Workspace
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
    "Workspace": Workspace,
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
    "Workspace": "workspace",
    "Scenario": "scenario",
}


def address_of(kind: str, name: str) -> str:
    """The stable address of a resource, e.g. `agent.tech-agent-1`."""
    return f"{ADDRESS_PREFIX[kind]}.{name}"
