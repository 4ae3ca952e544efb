"""The last step of a reload: a plan -> reported, or applied through the scoped backends.

Role in the flow: `ReloadEngine` validates, swaps the good state and plans; `run_plan_step`
decides what the plan becomes (`unchanged`, `planned`, `applied`, `failed`) and, with `--apply`,
runs `apply_plan` with the real provider and registry behind the views of the plan's scope
(`backends`), then reads the scope back into the kept environment state (`snapshot`).

Invariants:
  - A protected environment is never applied; a plan with conflicts is never applied.
  - The registry is claimed for the project before anything is written (another project's
    registry: `failed`, nothing changed).
  - The executor's views read exactly the plan's scope, so its stale check and any re-plan
    under the lock see the same addresses and names as the plan did.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.apply.executor import ApplyError, ApplyResult, apply_plan
from runner.plan.ops import Plan
from runner.providers.base import ProviderError
from runner.state.base import LockTimeoutError, ProjectMismatchError
from runner.watch.backends import Backends
from runner.watch.outcome import ReloadEvent
from runner.watch.snapshot import EnvironmentState, GoodState, Pending, Scope

__all__ = ["StepResult", "run_plan_step"]


@dataclass(frozen=True)
class StepResult:
    """What a plan became: the event, the plan (re-planned by the executor when applied), the
    apply's result and a message."""

    event: ReloadEvent
    plan: Plan
    result: ApplyResult | None = None
    message: str = ""


def run_plan_step(
    plan: Plan,
    scope: Scope | None,
    *,
    good: GoodState,
    state: EnvironmentState,
    backends: Backends,
    apply: bool,
    changed: bool,
    parallelism: int,
    lock_timeout: float,
) -> StepResult:
    """Report `plan`, or apply it (`apply`). `scope` is what a scoped plan was made from (None:
    the whole environment); `changed` whether the reload changed any desired address."""
    state.pending = Pending.of_plan(plan)
    if not plan.ops and not plan.conflicts:
        return StepResult("planned" if changed else "unchanged", plan)
    if not apply or good.env.protected:
        note = f"environment {good.env.name!r} is protected: planned only, nothing applied"
        return StepResult("planned", plan, message=note if apply else "")
    if plan.conflicts:
        return StepResult(
            "failed", plan, message="; ".join(f"{c.address}: {c.message}" for c in plan.conflicts)
        )
    provider, registry = backends.for_scope(good.env, scope)
    try:
        registry.claim_project(good.env.name, good.desired(()).project)
    except ProjectMismatchError as exc:
        return StepResult("failed", plan, message=str(exc))
    try:
        result = apply_plan(
            plan,
            provider=provider,
            registry=registry,
            env=good.env.name,
            parallelism=parallelism,
            lock_timeout=lock_timeout,
            desired=good.desired(None if scope is None else scope.addresses),
            replan=True,
            allow_delete=True,
        )
    except (ApplyError, LockTimeoutError, ProviderError) as exc:
        _read_back(plan, None, good=good, state=state, backends=backends)
        return StepResult("failed", plan, message=str(exc))
    _read_back(plan, result, good=good, state=state, backends=backends)
    state.pending = Pending.of_result(result)
    if result.ok:
        return StepResult("applied", result.plan, result)
    failed = "; ".join(f"{o.address}: {o.action} failed: {o.detail}" for o in result.failed)
    return StepResult("failed", result.plan, result, failed)


def _read_back(
    plan: Plan,
    result: ApplyResult | None,
    *,
    good: GoodState,
    state: EnvironmentState,
    backends: Backends,
) -> None:
    provider, registry = backends.provider, backends.registry
    if provider is None or registry is None:
        return
    state.read_back(plan, result, env=good.env.name, provider=provider, registry=registry)
