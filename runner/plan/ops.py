"""Plan operations as data: one frozen dataclass per kind of change (alembic's `ops`).

Role in the flow: `planner.compute_plan` returns a `Plan` holding these; `plan.render` (text,
JSON) and `apply.executor` (provider + registry) are separate interpreters dispatched on the op
type. A new kind of change is one dataclass here plus one function per interpreter.

Invariants: ops are immutable and carry everything their interpreters need (the desired agent or
resource, the Foundry version the plan saw), so executing a plan needs no second planning pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runner.plan.desired import DesiredAgent, DesiredResource
from runner.plan.diff import FieldChange

Action = Literal["create", "update", "delete", "drift", "adopt", "delete_version"]

# Apply order by kind (lower first for creates/updates; deletes run in the reverse order):
# personalities, templates and channels feed agents; agents feed escalation paths, teams and
# pools; alerts watch agents, teams and pools and notify channels.
KIND_RANK: dict[str, int] = {
    "Personality": 0,
    "Template": 0,
    "Channel": 0,
    "Agent": 1,
    "EscalationPath": 2,
    "Team": 3,
    "ResourcePool": 3,
    "Alert": 4,
}


@dataclass(frozen=True)
class CreateAgent:
    desired: DesiredAgent
    action: Action = field(default="create", init=False)


@dataclass(frozen=True)
class UpdateAgent:
    """A new version of an existing agent; `base_version` is the latest version the plan saw."""

    desired: DesiredAgent
    base_version: str
    diff: tuple[FieldChange, ...]
    action: Action = field(default="update", init=False)


@dataclass(frozen=True)
class DeleteAgent:
    """Delete agent `foundry_name` (every version); only forget it when it is already gone."""

    address: str
    foundry_name: str
    in_foundry: bool
    action: Action = field(default="delete", init=False)


@dataclass(frozen=True)
class Drift:
    """Foundry's latest version is not the one runner applied (an edit outside runner).

    `resolution` "revert" writes the spec as a new version; "refresh" (`--refresh-only`) records
    the live version in the registry instead. `diff` is live -> spec.
    """

    desired: DesiredAgent
    live_version: str
    live_hash: str | None
    applied_version: str | None
    applied_hash: str | None
    spec_changed: bool
    diff: tuple[FieldChange, ...]
    resolution: Literal["revert", "refresh"] = "revert"
    action: Action = field(default="drift", init=False)


@dataclass(frozen=True)
class AdoptAgent:
    """Foundry already holds what the spec wants (e.g. an apply died before recording it):
    record `version` in the registry, write nothing to Foundry."""

    desired: DesiredAgent
    version: str
    hash: str | None
    action: Action = field(default="adopt", init=False)


@dataclass(frozen=True)
class RemoveDuplicateVersion:
    """Foundry's latest version `remove` of a managed agent carries the same `runner-hash` as
    the version `keep` the registry recorded: a twin left by a write that landed late (a killed
    apply's request, or a response lost after the retry had looked). Delete the twin.

    Keeping the recorded version and deleting the newer twin is one Foundry write and no
    registry write, and the registry stays right as it is; keeping the twin instead would also
    mean re-recording the address. Versions are immutable, so both hold the same definition.
    """

    address: str
    foundry_name: str
    keep: str
    remove: str
    action: Action = field(default="delete_version", init=False)


@dataclass(frozen=True)
class CreateResource:
    desired: DesiredResource
    action: Action = field(default="create", init=False)


@dataclass(frozen=True)
class UpdateResource:
    desired: DesiredResource
    diff: tuple[FieldChange, ...]
    action: Action = field(default="update", init=False)


@dataclass(frozen=True)
class DeleteResource:
    address: str
    kind: str
    name: str
    action: Action = field(default="delete", init=False)


Op = (
    CreateAgent
    | UpdateAgent
    | DeleteAgent
    | Drift
    | AdoptAgent
    | RemoveDuplicateVersion
    | CreateResource
    | UpdateResource
    | DeleteResource
)


@dataclass(frozen=True)
class Unmanaged:
    """A Foundry agent in the environment's name space that this project does not manage (not
    runner's, or another runner project's: `project` names it): reported, never touched."""

    foundry_name: str
    version: str
    project: str | None = None


@dataclass(frozen=True)
class Conflict:
    """A desired agent whose Foundry name is taken by an agent runner does not manage here."""

    address: str
    foundry_name: str
    message: str


def op_address(op: Op) -> str:
    if isinstance(op, DeleteAgent | DeleteResource | RemoveDuplicateVersion):
        return op.address
    return op.desired.address


def op_kind(op: Op) -> str:
    if isinstance(
        op, CreateAgent | UpdateAgent | DeleteAgent | Drift | AdoptAgent | RemoveDuplicateVersion
    ):
        return "Agent"
    if isinstance(op, DeleteResource):
        return op.kind
    return op.desired.kind


def op_foundry_name(op: Op) -> str | None:
    if isinstance(op, DeleteAgent | RemoveDuplicateVersion):
        return op.foundry_name
    if isinstance(op, CreateAgent | UpdateAgent | Drift | AdoptAgent):
        return op.desired.foundry_name
    return None


def op_diff(op: Op) -> tuple[FieldChange, ...]:
    if isinstance(op, UpdateAgent | Drift | UpdateResource):
        return op.diff
    return ()


def op_stage(op: Op) -> tuple[int, int]:
    """(phase, rank): creates/updates (phase 0) by kind rank, then deletes in reverse rank.

    A duplicate version's removal runs with the agents (phase 0): nothing depends on a twin."""
    rank = KIND_RANK.get(op_kind(op), 5)
    if isinstance(op, DeleteAgent | DeleteResource):
        return (1, -rank)
    return (0, rank)


@dataclass(frozen=True)
class Plan:
    """What apply would do in one environment, and the fingerprints of what it was made from."""

    env: str
    ops: tuple[Op, ...]
    name_prefix: str = ""
    # Foundry names the plan looked at besides the prefix; the executor re-checks them under
    # the lock (`compute_actual_fingerprint`) to refuse a plan Foundry has moved away from.
    scope_names: tuple[str, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    protected: bool = False
    refresh_only: bool = False
    desired_fingerprint: str = ""
    actual_fingerprint: str = ""
    applied_fingerprint: str = ""
    fingerprint: str = ""

    @property
    def summary(self) -> dict[str, int]:
        counts = {"add": 0, "change": 0, "destroy": 0, "drift": 0, "adopt": 0, "duplicates": 0}
        for op in self.ops:
            if isinstance(op, RemoveDuplicateVersion):
                counts["duplicates"] += 1
            elif isinstance(op, CreateAgent | CreateResource):
                counts["add"] += 1
            elif isinstance(op, UpdateAgent | UpdateResource):
                counts["change"] += 1
            elif isinstance(op, DeleteAgent | DeleteResource):
                counts["destroy"] += 1
            elif isinstance(op, Drift):
                counts["drift"] += 1
                if op.resolution == "revert":
                    counts["change"] += 1
                else:
                    counts["adopt"] += 1
            else:
                counts["adopt"] += 1
        counts["unmanaged"] = len(self.unmanaged)
        counts["conflicts"] = len(self.conflicts)
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.ops)

    @property
    def deletes(self) -> tuple[Op, ...]:
        """What a protected environment needs --allow-delete for. A duplicate version's removal
        is not among them: it deletes only a copy runner made itself of the recorded version."""
        return tuple(op for op in self.ops if isinstance(op, DeleteAgent | DeleteResource))
