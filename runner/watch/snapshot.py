"""What the engine keeps in memory between saves: the good state and the environment's state.

Role in the flow: the memory that makes a reload cheap. `GoodState` is the last candidate that
loaded and checked cleanly (file results, project, environment, desired state by address);
`EnvironmentState` is what Foundry and the registry held when last read (latest version by
Foundry name, applied record by address) plus the ops the last plan left undone. A reload plans
from these instead of listing 1,000 agents and records again.

Invariants:
  - `GoodState` is replaced whole, never edited: an invalid save cannot half-update it.
  - `GoodState.desired(scope)` lists agents and resources sorted by address, so a scoped plan
    and a full one see the same order (the planner's output is byte-identical for both).
  - `plan_full` is the only full listing (at start, on `refresh()`, when the environment
    changes, and after a failed read); `plan_scoped` covers the changed addresses plus the
    pending ones, and returns the `Scope` it read so the apply's views read exactly that.
  - `read_back` brings every record and version an apply touched up to date; if Foundry cannot
    be read then, the versions are forgotten (`actual` is None) and the next plan is full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from runner.apply.executor import ApplyResult, read_actual
from runner.plan.desired import DesiredAgent, DesiredResource, DesiredState, project_identity
from runner.plan.ops import Conflict, Plan, op_address, op_foundry_name
from runner.plan.planner import compute_plan
from runner.providers.base import AgentVersion, Provider, ProviderError
from runner.spec.loader import FileResult
from runner.spec.models import Environment
from runner.spec.project import Project
from runner.state.base import AppliedResource, ProjectMismatchError, Registry

__all__ = ["EnvironmentState", "GoodState", "Pending", "Scope"]


@dataclass
class GoodState:
    """The last state that loaded and checked cleanly, and what it wants in the environment."""

    files: dict[str, FileResult]
    project: Project
    env: Environment
    agents: dict[str, DesiredAgent]  # by address
    resources: dict[str, DesiredResource]  # by address
    owner: str = ""
    """The project's default identity (the environment's `project:` wins)."""

    def desired(self, scope: Iterable[str] | None = None) -> DesiredState:
        if scope is None:
            agents = sorted(self.agents.values(), key=lambda a: a.address)
            resources = sorted(self.resources.values(), key=lambda r: r.address)
        else:
            wanted = sorted(set(scope))
            agents = [self.agents[a] for a in wanted if a in self.agents]
            resources = [self.resources[a] for a in wanted if a in self.resources]
        return DesiredState(
            env=self.env.name,
            name_prefix=self.env.name_prefix,
            protected=self.env.protected,
            project=project_identity(self.env, self.owner),
            agents=tuple(agents),
            resources=tuple(resources),
        )


@dataclass(frozen=True)
class Scope:
    """The addresses and Foundry names a scoped plan was made from."""

    addresses: frozenset[str]
    names: frozenset[str]


@dataclass
class Pending:
    """Ops the last plan left undone (plan-only mode, failures, conflicts, strays)."""

    addresses: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    @classmethod
    def of_plan(cls, plan: Plan) -> Pending:
        """Everything `plan` would do: pending until an apply says otherwise."""
        addresses = {op_address(op) for op in plan.ops} | {c.address for c in plan.conflicts}
        names = {n for op in plan.ops if (n := op_foundry_name(op)) is not None}
        names |= {c.foundry_name for c in plan.conflicts if isinstance(c, Conflict)}
        return cls(addresses, names)

    @classmethod
    def of_result(cls, result: ApplyResult) -> Pending:
        """The ops of an apply that did not end `ok`."""
        return cls(
            {o.address for o in result.outcomes if o.outcome != "ok"},
            {
                n
                for op in result.plan.ops
                if (n := op_foundry_name(op)) is not None
                and any(o.address == op_address(op) and o.outcome != "ok" for o in result.outcomes)
            },
        )


@dataclass
class EnvironmentState:
    """Foundry's latest versions and the registry's records, as last read, and pending ops."""

    actual: dict[str, AgentVersion] | None = None
    """Latest version by Foundry name; None until listed (or after a failed read-back)."""
    applied: dict[str, AppliedResource] = field(default_factory=dict)
    """Applied record by address."""
    pending: Pending = field(default_factory=Pending)

    def plan_full(
        self, good: GoodState, *, provider: Provider, registry: Registry
    ) -> tuple[Plan, Scope | None]:
        """List Foundry and the registry in full, remember them, and plan the environment."""
        owner = project_identity(good.env, good.owner)
        recorded = registry.project_of(good.env.name)
        if owner and recorded is not None and recorded != owner:
            raise ProjectMismatchError(
                good.env.name, recorded=recorded, project=owner, where=getattr(registry, "path", "")
            )
        actual = read_actual(provider)
        self.actual = {v.name: v for v in actual}
        self.applied = registry.applied(good.env.name)
        plan = compute_plan(good.desired(), actual, dict(self.applied), env=good.env.name)
        return plan, None

    def plan_scoped(self, good: GoodState, changed: Iterable[str]) -> tuple[Plan, Scope]:
        """The plan of the changed and pending addresses, from what is kept in memory."""
        assert self.actual is not None, "plan_full first"
        addresses = set(changed) | self.pending.addresses
        desired = good.desired(addresses)
        applied = {a: r for a in addresses if (r := self.applied.get(a)) is not None}
        names = {a.foundry_name for a in desired.agents} | self.pending.names
        names |= {r.foundry_name or r.name for r in applied.values() if r.kind == "Agent"}
        actual = [v for n in sorted(names) if (v := self.actual.get(n)) is not None]
        plan = compute_plan(desired, actual, applied, env=good.env.name)
        return plan, Scope(frozenset(addresses), frozenset(names))

    def read_back(
        self,
        plan: Plan,
        result: ApplyResult | None,
        *,
        env: str,
        provider: Provider,
        registry: Registry,
    ) -> None:
        """Bring the in-memory records and versions an apply touched up to date."""
        ops = plan.ops + (result.plan.ops if result is not None else ())
        names = {n for op in ops if (n := op_foundry_name(op)) is not None}
        for address in {op_address(op) for op in ops}:
            record = registry.get(env, address)
            if record is None:
                self.applied.pop(address, None)
            else:
                self.applied[address] = record
        if self.actual is None:
            return
        try:
            for name in names:
                live = provider.get_agent(name)
                if live is None:
                    self.actual.pop(name, None)
                else:
                    self.actual[name] = live
        except ProviderError:
            self.actual = None  # read everything on the next reload
