"""The loaded project: every spec document, indexed by kind and name, with its source positions.

Produced by `runner.spec.loader.load_project`, consumed by checks, rendering, the planner and the
runtime. Positions are 1-based (`file:line:col`), as editors and CI annotations expect.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from runner.spec.models import (
    Agent,
    Alert,
    Channel,
    Envelope,
    Environment,
    EscalationPath,
    Personality,
    ResourcePool,
    Scenario,
    Team,
    Template,
    Workspace,
    address_of,
)

__all__ = [
    "KIND_ATTRIBUTES",
    "Path",
    "PathItem",
    "Position",
    "Problem",
    "Project",
    "SpecDocument",
    "UnknownEnvironmentError",
    "dotted",
    "kind_may_be_missing",
    "missing_kind",
]

ANY_KIND = "*"


def missing_kind(kind: str | None) -> str:
    """The entry of `LoadResult.invalid` saying documents of `kind` (any kind for None) may be
    missing: a file or document failed to load before its name could be read."""
    return address_of(kind, ANY_KIND) if kind is not None else ANY_KIND


def kind_may_be_missing(invalid: Collection[str], kind: str) -> bool:
    """Whether a reference to an undeclared `kind` document may point into one that failed to
    load (so it is unknown, not wrong)."""
    return ANY_KIND in invalid or missing_kind(kind) in invalid


PathItem = str | int
Path = tuple[PathItem, ...]
"""Where a value sits inside its document: mapping keys and list indexes, outermost first."""


def dotted(path: Sequence[PathItem]) -> str:
    """`members[0].agent` for `("members", 0, "agent")`: how messages name a value's path."""
    out = ""
    for item in path:
        if isinstance(item, int) and not isinstance(item, bool):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


@dataclass(frozen=True, order=True)
class Position:
    file: str
    line: int
    column: int

    def __init__(self, file: str, line: int, column: int) -> None:
        # The dataclass's own __init__ sets each field through object.__setattr__ (frozen); the
        # loader makes one Position per value, so this one fills the instance dict directly.
        fields = self.__dict__
        fields["file"] = file
        fields["line"] = line
        fields["column"] = column

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, reported at a position with a stable code (e.g. `schema.extra`, `ref.agent`)."""

    file: str
    line: int
    column: int
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"

    @classmethod
    def at(cls, pos: Position, code: str, message: str) -> Problem:
        return cls(pos.file, pos.line, pos.column, code, message)

    def format(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class SpecDocument:
    """One validated document and the map from each value's path to where it was written."""

    spec: Envelope
    position: Position
    positions: dict[Path, Position] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return type(self.spec).__name__

    @property
    def address(self) -> str:
        return address_of(self.kind, self.spec.name)

    def position_of(self, path: Path) -> Position:
        """Position of the value at `path`, or of its nearest enclosing value that was written."""
        while True:
            pos = self.positions.get(path)
            if pos is not None:
                return pos
            if not path:
                return self.position
            path = path[:-1]


class UnknownEnvironmentError(LookupError):
    pass


# Kind -> the Project attribute (dict by name) that holds its specs.
KIND_ATTRIBUTES: dict[str, str] = {
    "Personality": "personalities",
    "Template": "templates",
    "Agent": "agents",
    "Team": "teams",
    "EscalationPath": "escalation_paths",
    "ResourcePool": "pools",
    "Alert": "alerts",
    "Channel": "channels",
    "Environment": "environments",
    "Workspace": "workspaces",
    "Scenario": "scenarios",
}


@dataclass
class Project:
    documents: list[SpecDocument] = field(default_factory=list)
    personalities: dict[str, Personality] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    escalation_paths: dict[str, EscalationPath] = field(default_factory=dict)
    pools: dict[str, ResourcePool] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    _by_address: dict[str, SpecDocument] = field(default_factory=dict, repr=False)

    def add(self, doc: SpecDocument) -> bool:
        """Index `doc`; False (and nothing indexed) when its kind+name is already taken."""
        if doc.address in self._by_address:
            return False
        self.documents.append(doc)
        self._by_address[doc.address] = doc
        getattr(self, KIND_ATTRIBUTES[doc.kind])[doc.spec.name] = doc.spec
        return True

    def remove(self, address: str) -> None:
        doc = self._by_address.pop(address, None)
        if doc is None:
            return
        self.documents.remove(doc)
        del getattr(self, KIND_ATTRIBUTES[doc.kind])[doc.spec.name]

    def document(self, address: str) -> SpecDocument | None:
        return self._by_address.get(address)

    def __iter__(self) -> Iterator[SpecDocument]:
        return iter(self.documents)

    def environment(self, name: str | None = None) -> Environment:
        """The named environment; without a name the default one (or the implicit `local`)."""
        if name is not None:
            env = self.environments.get(name)
            if env is None:
                known = ", ".join(sorted(self.environments)) or "none declared"
                raise UnknownEnvironmentError(f"unknown environment {name!r} (known: {known})")
            return env
        for env in self.environments.values():
            if env.default:
                return env
        if len(self.environments) == 1:
            return next(iter(self.environments.values()))
        if "local" in self.environments:
            return self.environments["local"]
        return Environment.model_validate(
            {"apiVersion": "runner/v1", "kind": "Environment", "name": "local"}
        )
