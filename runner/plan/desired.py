"""Desired state: what the specs say one environment should hold (specs -> *desired* -> plan).

`compute_desired(project, env)` renders every Agent into the Foundry agent runner wants (name
`env.name_prefix + name`, prompt definition, description, user metadata plus runner's bookkeeping
keys) and turns every other applied kind (all but Environment and Scenario) into a registry-only
resource whose body is the spec as written.

Invariants:
  - Bodies are `spec.model_dump(mode="json", by_alias=True, exclude_none=True)`: `${VAR}`
    references stay as written, so no secret value ever reaches the registry, and the runtime
    reads a body back with `KINDS[kind].model_validate(body)`.
  - A resource's hash is sha256 of the canonical JSON of its body; an agent's hash is the
    rendered agent's `content_hash()`, also written into Foundry metadata as `runner-hash`.
  - The result is plain data with a stable JSON form (`to_json`/`from_json`): golden tests and
    saved plans depend on it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.providers.base import (
    ADDRESS_KEY,
    ENVIRONMENT_KEY,
    HASH_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    PROJECT_KEY,
)
from runner.spec.models import Environment, address_of
from runner.spec.project import Project

# Kinds that never become registry resources: they configure runner itself.
NOT_APPLIED_KINDS: frozenset[str] = frozenset({"Environment", "Scenario", "Agent"})


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for hashes and fingerprints."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DesiredAgent:
    """One Foundry agent as the specs want it in one environment."""

    address: str
    name: str
    foundry_name: str
    definition: Mapping[str, Any]
    description: str | None
    metadata: Mapping[str, str]  # user metadata + managed-by/runner-address/runner-env/runner-hash
    hash: str
    body: Mapping[str, Any] = field(default_factory=dict)  # the Agent spec, for the registry

    kind = "Agent"

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "foundry_name": self.foundry_name,
            "definition": dict(self.definition),
            "description": self.description,
            "metadata": dict(self.metadata),
            "hash": self.hash,
            "body": dict(self.body),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DesiredAgent:
        return cls(
            address=data["address"],
            name=data["name"],
            foundry_name=data["foundry_name"],
            definition=dict(data["definition"]),
            description=data.get("description"),
            metadata=dict(data.get("metadata") or {}),
            hash=data["hash"],
            body=dict(data.get("body") or {}),
        )


@dataclass(frozen=True)
class DesiredResource:
    """A registry-only resource (team, pool, alert, channel, ...): its spec body and hash."""

    address: str
    kind: str
    name: str
    body: Mapping[str, Any]
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "name": self.name,
            "body": dict(self.body),
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DesiredResource:
        body = dict(data["body"])
        return cls(
            address=data["address"],
            kind=data["kind"],
            name=data["name"],
            body=body,
            hash=data.get("hash") or sha256_json(body),
        )


@dataclass(frozen=True)
class DesiredState:
    env: str
    name_prefix: str = ""
    protected: bool = False
    agents: tuple[DesiredAgent, ...] = ()
    resources: tuple[DesiredResource, ...] = ()
    project: str = ""
    """The runner project that owns this state ("" = none known: every runner agent of the
    environment counts as its own, the behaviour before projects existed)."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "env": self.env,
            "name_prefix": self.name_prefix,
            "protected": self.protected,
            "agents": [a.to_json() for a in self.agents],
            "resources": [r.to_json() for r in self.resources],
        }
        if self.project:
            document["project"] = self.project
        return document

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DesiredState:
        return cls(
            env=data["env"],
            name_prefix=data.get("name_prefix", ""),
            protected=bool(data.get("protected", False)),
            project=str(data.get("project") or ""),
            agents=tuple(
                sorted(
                    (DesiredAgent.from_json(a) for a in data.get("agents", [])),
                    key=lambda a: a.address,
                )
            ),
            resources=tuple(
                sorted(
                    (DesiredResource.from_json(r) for r in data.get("resources", [])),
                    key=lambda r: r.address,
                )
            ),
        )

    @property
    def fingerprint(self) -> str:
        """Hash of everything the specs decide; a saved plan is stale when this changes."""
        return sha256_json(self.to_json())


def spec_body(spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def managed_metadata(
    user_metadata: Mapping[str, str],
    *,
    address: str,
    env: str,
    content_hash: str,
    owner: str = "",
) -> dict[str, str]:
    """User metadata plus the keys that mark a Foundry version as runner's (and, when known,
    as the `owner` project's)."""
    metadata = dict(user_metadata)
    metadata[MANAGED_BY_KEY] = MANAGED_BY_VALUE
    metadata[ADDRESS_KEY] = address
    metadata[ENVIRONMENT_KEY] = env
    metadata[HASH_KEY] = content_hash
    if owner:
        metadata[PROJECT_KEY] = owner
    return metadata


def project_identity(env: Environment, default: str = "") -> str:
    """The project that owns `env`'s state: its declared `project:`, else `default` (derived
    from the spec folder, `runner.paths.ProjectHome`)."""
    return env.project or default


def compute_desired(project: Project, env: Environment, *, owner: str = "") -> DesiredState:
    """The desired state of `env`, owned by project `owner` (see `project_identity`);
    RenderError (from `render_agent`) on a faulty text. A declared `project:` wins over `owner`."""
    from runner.spec.render import render_agent

    owner = project_identity(env, owner)
    agents: list[DesiredAgent] = []
    for name in sorted(project.agents):
        rendered = render_agent(project, name, env)
        address = address_of("Agent", name)
        content_hash = rendered.content_hash()
        agents.append(
            DesiredAgent(
                address=address,
                name=name,
                foundry_name=rendered.foundry_name,
                definition=rendered.definition(),
                description=rendered.description,
                metadata=managed_metadata(
                    rendered.metadata,
                    address=address,
                    env=env.name,
                    content_hash=content_hash,
                    owner=owner,
                ),
                hash=content_hash,
                body=spec_body(project.agents[name]),
            )
        )
    resources: list[DesiredResource] = []
    for doc in project:
        if doc.kind in NOT_APPLIED_KINDS:
            continue
        body = spec_body(doc.spec)
        resources.append(
            DesiredResource(
                address=doc.address,
                kind=doc.kind,
                name=doc.spec.name,
                body=body,
                hash=sha256_json(body),
            )
        )
    resources.sort(key=lambda r: r.address)
    return DesiredState(
        env=env.name,
        name_prefix=env.name_prefix,
        protected=env.protected,
        agents=tuple(agents),
        resources=tuple(resources),
        project=owner,
    )
