"""The planner: desired state + Foundry's actual agents + the registry -> `Plan` (ops as data).

Role in the flow: `compute_plan` is the only place that decides what changes. Creates and deletes
come from set differences over stable keys (addresses, Foundry names); updates from a field diff
over the essence of the definition (`essence`), so an unchanged rendered definition never yields a
new version. It is **pure**: no I/O, clock or environment; identical inputs give identical plans
and byte-identical JSON, which is what the golden tests in `tests/plan/golden/` check.

Decisions for one desired agent D with Foundry's latest version L and registry record R:
  - no L: create (refresh-only: forget R);
  - L not managed by runner and not imported into R: conflict (`runner import NAME`);
  - L managed by runner for another environment: conflict;
  - no R: adopt when L's essence equals D's (an apply died before recording), else update;
  - L is the version R recorded (same version, same `runner-hash`): no-op when D's hash equals
    R's or the essences are equal, else update;
  - L is newer than R's version, carries R's `runner-hash`, and D is unchanged since R and
    equal to L: L is a twin (a write that landed after its apply had moved on, e.g. a killed
    apply's request). Remove L and keep R's version (`RemoveDuplicateVersion`): one write, and
    the registry stays as it is. Refresh-only leaves twins for the next apply. (With the spec
    changed since R, a twin cannot be told from a portal edit that kept the metadata: drift.)
  - otherwise Foundry changed outside runner: adopt when L already equals D (a lost response),
    else drift (revert to the spec; refresh-only records L instead).
Deletes: registry addresses no longer desired, and managed Foundry agents of this environment
that no desired agent accounts for. Unmanaged agents in the environment's name space are notes.

Ownership (Kubernetes ApplySets' rule): a plan touches only what its own project owns. A runner
version is this project's when its `runner-project` is the desired state's `project`, or when
it records no project (written before projects existed) and this project's registry records it
(adopted). Another project's agents, and unrecorded ones of no project, are listed like
unmanaged agents and never updated or deleted; a desired name that collides with one is a
conflict naming both projects. With no project known (`project == ""`), an agent recording none
is this project's, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from runner.plan.desired import DesiredAgent, DesiredState, sha256_json
from runner.plan.diff import compute_diff
from runner.plan.essence import compute_essence
from runner.plan.ops import (
    AdoptAgent,
    Conflict,
    CreateAgent,
    CreateResource,
    DeleteAgent,
    DeleteResource,
    Drift,
    Op,
    Plan,
    RemoveDuplicateVersion,
    Unmanaged,
    UpdateAgent,
    UpdateResource,
    op_address,
    op_stage,
)
from runner.providers.base import ADDRESS_KEY, ENVIRONMENT_KEY, AgentVersion
from runner.spec.models import address_of
from runner.state.base import AppliedResource

__all__ = ["compute_actual_fingerprint", "compute_applied_fingerprint", "compute_plan"]


def _live_essence(live: AgentVersion) -> dict[str, object]:
    return compute_essence(
        definition=live.definition, description=live.description, metadata=live.metadata
    )


def _desired_essence(agent: DesiredAgent) -> dict[str, object]:
    return compute_essence(
        definition=agent.definition, description=agent.description, metadata=agent.metadata
    )


def _version_number(version: str | None) -> int | None:
    return int(version) if version is not None and version.isdigit() else None


def _is_twin(desired: DesiredAgent, live: AgentVersion, record: AppliedResource | None) -> bool:
    """Whether `live` is a newer copy of the version `record` holds.

    The `runner-hash` alone does not prove it (an edit in the portal keeps the metadata), so the
    spec must be unchanged since `record` (D's hash is R's) and `live` must equal it.
    """
    if record is None or not record.hash or not live.managed:
        return False
    if live.spec_hash != record.hash or desired.hash != record.hash:
        return False
    live_number, recorded = _version_number(live.version), _version_number(record.foundry_version)
    if live_number is None or recorded is None or live_number <= recorded:
        return False
    return not compute_diff(_live_essence(live), _desired_essence(desired))


def _owned(live: AgentVersion, project: str, *, recorded: bool) -> bool:
    """Whether the runner version `live` is this project's (see the module docs)."""
    owner = live.project
    if owner is None:
        return not project or recorded
    return owner == project


def _ownership_conflict(desired: DesiredAgent, live: AgentVersion, project: str) -> Conflict:
    here = f"this project is {project!r}" if project else "this project records none"
    if live.project is not None:
        message = (
            f"Foundry agent {live.name!r} belongs to runner project {live.project!r} "
            f"(environment {live.metadata.get(ENVIRONMENT_KEY)!r}); {here}. It is left alone: "
            "rename the agent, or give one of the projects its own name_prefix"
        )
    else:
        message = (
            f"Foundry agent {live.name!r} was written by runner with no project recorded (an "
            f"earlier version) and this project's registry does not record it; {here}. If it "
            f"is this project's, `runner import {live.name}` adopts it; else rename the agent"
        )
    return Conflict(desired.address, live.name, message)


def _plan_agent(
    desired: DesiredAgent,
    live: AgentVersion | None,
    record: AppliedResource | None,
    *,
    env: str,
    project: str = "",
    refresh_only: bool,
) -> Op | Conflict | None:
    if live is not None and live.managed:
        recorded = record is not None and (record.foundry_name or record.name) == live.name
        if not _owned(live, project, recorded=recorded):
            return _ownership_conflict(desired, live, project)
    if live is not None and record is not None and _is_twin(desired, live, record):
        if refresh_only:  # recording the twin would hide it from the next apply
            return None
        return RemoveDuplicateVersion(
            desired.address, live.name, keep=record.foundry_version or "", remove=live.version
        )
    return _plan_one(desired, live, record, env=env, refresh_only=refresh_only)


def _plan_one(
    desired: DesiredAgent,
    live: AgentVersion | None,
    record: AppliedResource | None,
    *,
    env: str,
    refresh_only: bool,
) -> Op | Conflict | None:
    if live is None:
        if refresh_only:
            if record is None:
                return None
            return DeleteAgent(desired.address, desired.foundry_name, in_foundry=False)
        return CreateAgent(desired)
    imported = record is not None and (record.foundry_name or record.name) == live.name
    if not live.managed and not imported:
        return Conflict(
            desired.address,
            live.name,
            f"Foundry agent {live.name!r} exists but is not managed by runner; "
            f"run `runner import {live.name}` to adopt it, or rename the agent",
        )
    live_env = live.metadata.get(ENVIRONMENT_KEY)
    if live.managed and live_env != env and not imported:
        return Conflict(
            desired.address,
            live.name,
            f"Foundry agent {live.name!r} is managed by runner for environment {live_env!r}; "
            "give this environment its own name_prefix",
        )
    diff = compute_diff(_live_essence(live), _desired_essence(desired))
    if record is None:
        if not diff or refresh_only:
            return AdoptAgent(desired, live.version, live.spec_hash)
        return UpdateAgent(desired, live.version, diff)
    drifted = live.version != record.foundry_version or (live.spec_hash or "") != record.hash
    if not drifted:
        if refresh_only or desired.hash == record.hash or not diff:
            return None
        return UpdateAgent(desired, live.version, diff)
    if not diff:
        return AdoptAgent(desired, live.version, live.spec_hash)
    return Drift(
        desired,
        live_version=live.version,
        live_hash=live.spec_hash,
        applied_version=record.foundry_version,
        applied_hash=record.hash,
        spec_changed=desired.hash != record.hash,
        diff=diff,
        resolution="refresh" if refresh_only else "revert",
    )


def _in_scope(live: AgentVersion, *, env: str, prefix: str, names: set[str]) -> bool:
    return (
        live.name in names
        or live.metadata.get(ENVIRONMENT_KEY) == env
        or live.name.startswith(prefix)
    )


def compute_actual_fingerprint(
    actual: Iterable[AgentVersion], *, env: str, prefix: str, names: Iterable[str]
) -> str:
    """Hash of the Foundry agents a plan of `env` looks at (name, latest version, runner-hash)."""
    wanted = set(names)
    rows = sorted(
        [live.name, live.version, live.spec_hash or "", live.managed]
        for live in actual
        if _in_scope(live, env=env, prefix=prefix, names=wanted)
    )
    return sha256_json(rows)


def compute_applied_fingerprint(applied: Mapping[str, AppliedResource]) -> str:
    return sha256_json(
        sorted([r.address, r.hash, r.foundry_version or ""] for r in applied.values())
    )


def compute_plan(
    desired: DesiredState,
    actual: list[AgentVersion],
    applied: dict[str, AppliedResource],
    *,
    env: str,
    refresh_only: bool = False,
) -> Plan:
    """The ops that bring `env` from (actual, applied) to `desired`, in apply order."""
    latest: dict[str, AgentVersion] = {}
    for live in actual:
        latest[live.name] = live
    ops: list[Op] = []
    conflicts: list[Conflict] = []
    unmanaged: list[Unmanaged] = []

    desired_addresses = {agent.address for agent in desired.agents}
    accounted: set[str] = set()  # Foundry names some decision below already covers
    for agent in desired.agents:
        accounted.add(agent.foundry_name)
        decision = _plan_agent(
            agent,
            latest.get(agent.foundry_name),
            applied.get(agent.address),
            env=env,
            project=desired.project,
            refresh_only=refresh_only,
        )
        if isinstance(decision, Conflict):
            conflicts.append(decision)
        elif decision is not None:
            ops.append(decision)

    for address in sorted(applied):
        record = applied[address]
        if record.kind != "Agent" or address in desired_addresses:
            continue
        name = record.foundry_name or record.name
        accounted.add(name)
        found = latest.get(name)
        foreign = found is not None and (
            found.managed
            and (
                found.metadata.get(ENVIRONMENT_KEY) != env
                or not _owned(found, desired.project, recorded=True)
            )
        )
        in_foundry = found is not None and not foreign
        if refresh_only and in_foundry:
            continue
        ops.append(DeleteAgent(address, name, in_foundry=in_foundry))

    registry_names = {r.foundry_name or r.name for r in applied.values() if r.kind == "Agent"}
    for name in sorted(latest):
        live = latest[name]
        if name in accounted:
            continue
        in_env = live.managed and live.metadata.get(ENVIRONMENT_KEY) == env
        if live.managed and not _owned(live, desired.project, recorded=False):
            if in_env or name.startswith(desired.name_prefix):
                unmanaged.append(Unmanaged(name, live.version, live.project))
            continue
        if in_env:
            if refresh_only:
                continue
            address = live.metadata.get(ADDRESS_KEY) or address_of(
                "Agent", name.removeprefix(desired.name_prefix)
            )
            if address in desired_addresses or address in applied:
                # a stray copy under another Foundry name (e.g. the prefix changed): delete the
                # copy under its own name so the address's record is left alone
                address = f"{address}[{name}]"
            ops.append(DeleteAgent(address, name, in_foundry=True))
        elif not live.managed and name.startswith(desired.name_prefix):
            unmanaged.append(Unmanaged(name, live.version))

    if not refresh_only:
        desired_resources = {r.address for r in desired.resources}
        for resource in desired.resources:
            previous = applied.get(resource.address)
            if previous is None:
                ops.append(CreateResource(resource))
            elif previous.hash != resource.hash:
                ops.append(UpdateResource(resource, compute_diff(previous.body, resource.body)))
        for address in sorted(applied):
            record = applied[address]
            if record.kind != "Agent" and address not in desired_resources:
                ops.append(DeleteResource(address, record.kind, record.name))

    ops.sort(key=lambda op: (op_stage(op), op_address(op)))
    names = {a.foundry_name for a in desired.agents} | registry_names
    desired_fp = desired.fingerprint
    actual_fp = compute_actual_fingerprint(actual, env=env, prefix=desired.name_prefix, names=names)
    applied_fp = compute_applied_fingerprint(applied)
    return Plan(
        env=env,
        ops=tuple(ops),
        name_prefix=desired.name_prefix,
        scope_names=tuple(sorted(names)),
        unmanaged=tuple(unmanaged),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.address)),
        protected=desired.protected,
        refresh_only=refresh_only,
        desired_fingerprint=desired_fp,
        actual_fingerprint=actual_fp,
        applied_fingerprint=applied_fp,
        fingerprint=sha256_json([env, refresh_only, desired_fp, actual_fp, applied_fp]),
    )
