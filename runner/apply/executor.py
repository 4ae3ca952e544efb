"""The executor: runs a Plan against a provider and records every outcome in the registry.

Role in the flow: plan (pure) -> *execute* (here) | render. One function per op type, chosen
through a dispatch table; the planner decided *what*, this module only does it, safely:

  - The environment's apply lock is held for the whole apply (`Registry.lock`), so two applies
    of one environment never interleave, whatever process they run in.
  - Under the lock, Foundry and the registry are read again and compared with the fingerprints
    the plan was made from. A plan they moved away from is refused as stale (`StalePlanError`),
    or re-planned when the caller passes the desired state and `replan=True`.
  - Ops run stage by stage in dependency order (personalities/templates/channels, agents,
    escalation paths, teams/pools, alerts; deletes in reverse), each stage on a bounded thread
    pool. A stage with a failure stops the later stages (their ops are reported as skipped).
  - Transient failures are retried with backoff and jitter (`retry`). Before a retried
    `create_version`, the agent's versions are listed and one carrying the same `runner-hash`
    newer than the plan's base version is adopted: a lost response never becomes a second
    version.
  - Each outcome (ok or failed) is written to the registry the moment it happens, so a crash
    loses at most the op in flight, and the next plan adopts what that op wrote.
  - Every remote write (create_version, delete, delete_version) is announced in the lock row
    before it is sent and closed when its answer arrives (`WriteFence`, SQLite registry). If
    this process is killed with a write on the wire, whoever takes the lock over waits until
    that write can no longer land (`request_timeout` after it was sent) before planning: the
    killed write is then seen and adopted instead of being written a second time. The local
    provider needs no fence (its SQLite writes are atomic and in-process).
  - A twin that lands anyway (a grace shorter than the service's real latency) is settled: one
    that landed before our own write shows as a skipped version number, and the copies are
    reduced to the oldest at once (`_settle_twins`); one that lands after is found by the next
    plan and removed (`RemoveDuplicateVersion`, a `delete_version`).
  - A protected environment's deletes need `allow_delete=True`; without it nothing at all runs.

Clock (elapsed time in `Progress`), sleep and randomness are injected; `on_progress` is called
after every op.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Literal, Protocol, runtime_checkable

from runner.apply.retry import RetryPolicy, call_with_retry
from runner.plan.desired import DesiredAgent, DesiredState
from runner.plan.ops import (
    AdoptAgent,
    CreateAgent,
    CreateResource,
    DeleteAgent,
    DeleteResource,
    Drift,
    Op,
    Plan,
    RemoveDuplicateVersion,
    UpdateAgent,
    UpdateResource,
    op_address,
    op_stage,
)
from runner.plan.planner import (
    compute_actual_fingerprint,
    compute_applied_fingerprint,
    compute_plan,
)
from runner.providers.base import (
    AgentVersion,
    NotFoundError,
    Provider,
    ProviderError,
    TransientError,
)
from runner.state.base import AppliedResource, JournalAction, Registry

__all__ = [
    "ApplyError",
    "ApplyResult",
    "DeleteNotAllowedError",
    "OpOutcome",
    "Progress",
    "StalePlanError",
    "WriteFence",
    "apply_plan",
    "compute_request_timeout",
    "default_holder",
    "ensure_agent",
    "read_actual",
]

DEFAULT_LOCK_TIMEOUT = 120.0
# How long a remote write may take to land: FoundryProvider's default read timeout.
DEFAULT_REQUEST_TIMEOUT = 60.0
Outcome = Literal["ok", "failed", "skipped"]


@runtime_checkable
class WriteFence(Protocol):
    """A registry that records, in the lock row it holds, the remote writes in flight (see
    `runner.state.sqlite`). Registries without it (e.g. a wrapping view) get no fence."""

    def record_write_started(self, env: str, *, request_timeout: float) -> None: ...

    def record_write_finished(self, env: str) -> None: ...


def compute_request_timeout(provider: Provider) -> float:
    """How long after it was sent a write of `provider` may still land: 0 in-process, else the
    provider's `request_timeout` when it declares one, else `DEFAULT_REQUEST_TIMEOUT`."""
    if not provider.remote:
        return 0.0
    declared = getattr(provider, "request_timeout", None)
    if isinstance(declared, int | float) and not isinstance(declared, bool):
        return float(declared)
    return DEFAULT_REQUEST_TIMEOUT


class ApplyError(Exception):
    """An apply that cannot start; the message names what to do."""


class StalePlanError(ApplyError):
    pass


class DeleteNotAllowedError(ApplyError):
    pass


@dataclass(frozen=True)
class OpOutcome:
    address: str
    action: str
    outcome: Outcome
    detail: str = ""
    foundry_version: str | None = None


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    last: OpOutcome
    elapsed: float = 0.0  # seconds since the first op started (the injected clock)


@dataclass(frozen=True)
class ApplyResult:
    apply_id: str
    env: str
    plan: Plan  # the plan that ran (a re-plan under the lock when the first one was stale)
    outcomes: tuple[OpOutcome, ...] = ()
    replanned: bool = False

    @property
    def ok(self) -> bool:
        return all(o.outcome == "ok" for o in self.outcomes)

    @property
    def failed(self) -> tuple[OpOutcome, ...]:
        return tuple(o for o in self.outcomes if o.outcome == "failed")


def default_holder() -> str:
    """`user@host pid N`: who holds a lock, as error messages show it."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def read_actual(
    provider: Provider,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> list[AgentVersion]:
    """Every agent's latest version (one paged listing), retried on transient failures."""
    return call_with_retry(
        provider.list_agents,
        policy=policy or RetryPolicy(),
        sleep=sleep,
        rng=rng or random.Random(),
    )


@dataclass
class _Context:
    provider: Provider
    registry: Registry
    env: str
    apply_id: str
    policy: RetryPolicy
    sleep: Callable[[float], None]
    rng: random.Random
    request_timeout: float = 0.0
    fence: WriteFence | None = None
    rng_lock: threading.Lock = field(default_factory=threading.Lock)

    def retry(self, call: Callable[[], Any], **kwargs: Any) -> Any:
        with self.rng_lock:
            rng = random.Random(self.rng.random())
        return call_with_retry(call, policy=self.policy, sleep=self.sleep, rng=rng, **kwargs)

    def send_write(self, call: Callable[[], Any]) -> Any:
        """`call()` (one remote write), announced in the lock row first (module docstring).

        Only an answer closes it: after a TransientError (a timeout, a dropped connection) the
        write may still land, so it stays open and a takeover waits for it."""
        fence = self.fence if self.request_timeout > 0 else None
        if fence is None:
            return call()
        fence.record_write_started(self.env, request_timeout=self.request_timeout)
        try:
            result = call()
        except TransientError:
            raise
        except ProviderError:
            fence.record_write_finished(self.env)
            raise
        fence.record_write_finished(self.env)
        return result


def _build_context(
    *,
    provider: Provider,
    registry: Registry,
    env: str,
    apply_id: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random,
    request_timeout: float | None,
) -> _Context:
    return _Context(
        provider=provider,
        registry=registry,
        env=env,
        apply_id=apply_id,
        policy=policy,
        sleep=sleep,
        rng=rng,
        request_timeout=(
            compute_request_timeout(provider) if request_timeout is None else request_timeout
        ),
        fence=registry if isinstance(registry, WriteFence) else None,
    )


# ---------------------------------------------------------------- one function per op type


def _version_number(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def _write_version(
    ctx: _Context, desired: DesiredAgent, *, base_version: str | None, action: JournalAction
) -> OpOutcome:
    """create_version with lost-response recovery, then record it."""

    def find_written() -> AgentVersion | None:
        versions = ctx.provider.list_versions(desired.foundry_name)
        floor = _version_number(base_version) if base_version is not None else None
        for version in reversed(versions):
            if floor is not None and _version_number(version.version) <= floor:
                break
            if version.spec_hash == desired.hash:
                return version
        return None

    written: AgentVersion = ctx.retry(
        lambda: ctx.send_write(
            lambda: ctx.provider.create_version(
                desired.foundry_name,
                definition=desired.definition,
                metadata=desired.metadata,
                description=desired.description,
            )
        ),
        before_retry=find_written,
    )
    written = _settle_twins(ctx, desired, base_version=base_version, written=written)
    _record_agent(ctx, desired, version=written.version, hash_=desired.hash, action=action)
    return OpOutcome(desired.address, action, "ok", foundry_version=written.version)


def _settle_twins(
    ctx: _Context, desired: DesiredAgent, *, base_version: str | None, written: AgentVersion
) -> AgentVersion:
    """The version to record: `written`, unless copies of it landed since the plan's base.

    A version number past base + 1 means others landed in between; when some carry our
    `runner-hash` (a killed apply's write that outlived the takeover's grace), the oldest is
    kept and the newer copies deleted, as the planner does with a twin. One extra read, and
    only then; a service that never reuses numbers costs that read and deletes nothing.
    """
    base = _version_number(base_version)[0] if base_version is not None else 0
    number = _version_number(written.version)[0]
    if base < 0 or number < 0 or number == base + 1:
        return written
    versions: list[AgentVersion] = ctx.retry(
        lambda: ctx.provider.list_versions(desired.foundry_name)
    )
    twins = {
        v.version: v
        for v in [*versions, written]
        if _version_number(v.version)[0] > base and v.spec_hash == desired.hash
    }
    ordered = sorted(twins.values(), key=lambda v: _version_number(v.version))
    for extra in ordered[1:]:

        def delete(version: str = extra.version) -> None:
            with contextlib.suppress(NotFoundError):
                ctx.send_write(lambda: ctx.provider.delete_version(desired.foundry_name, version))

        ctx.retry(delete)
    return ordered[0]


def _record_agent(
    ctx: _Context, desired: DesiredAgent, *, version: str, hash_: str, action: JournalAction
) -> None:
    ctx.registry.record_applied(
        ctx.env,
        AppliedResource(
            address=desired.address,
            kind="Agent",
            name=desired.name,
            hash=hash_,
            body=desired.body,
            foundry_name=desired.foundry_name,
            foundry_version=version,
        ),
        apply_id=ctx.apply_id,
        action=action,
    )


def _run_create_agent(ctx: _Context, op: CreateAgent) -> OpOutcome:
    return _write_version(ctx, op.desired, base_version=None, action="create")


def _run_update_agent(ctx: _Context, op: UpdateAgent) -> OpOutcome:
    return _write_version(ctx, op.desired, base_version=op.base_version, action="update")


def _run_drift(ctx: _Context, op: Drift) -> OpOutcome:
    if op.resolution == "refresh":
        _record_agent(
            ctx, op.desired, version=op.live_version, hash_=op.live_hash or "", action="adopt"
        )
        return OpOutcome(op.desired.address, "adopt", "ok", foundry_version=op.live_version)
    return _write_version(ctx, op.desired, base_version=op.live_version, action="revert")


def _run_adopt(ctx: _Context, op: AdoptAgent) -> OpOutcome:
    _record_agent(ctx, op.desired, version=op.version, hash_=op.hash or "", action="adopt")
    return OpOutcome(op.desired.address, "adopt", "ok", foundry_version=op.version)


def _run_delete_agent(ctx: _Context, op: DeleteAgent) -> OpOutcome:
    if op.in_foundry:

        def delete() -> None:
            # NotFound: already gone, or a lost response to our own earlier attempt
            with contextlib.suppress(NotFoundError):
                ctx.send_write(lambda: ctx.provider.delete_agent(op.foundry_name))

        ctx.retry(delete)
    ctx.registry.record_deleted(ctx.env, op.address, apply_id=ctx.apply_id)
    return OpOutcome(op.address, "delete", "ok")


def _run_remove_duplicate(ctx: _Context, op: RemoveDuplicateVersion) -> OpOutcome:
    """Delete the twin; the registry already holds the kept version, so it is not written."""

    def delete() -> None:
        # NotFound: already gone, or a lost response to our own earlier attempt
        with contextlib.suppress(NotFoundError):
            ctx.send_write(lambda: ctx.provider.delete_version(op.foundry_name, op.remove))

    ctx.retry(delete)
    ctx.registry.record_version_removed(
        ctx.env, op.address, version=op.remove, apply_id=ctx.apply_id
    )
    return OpOutcome(op.address, op.action, "ok", foundry_version=op.keep)


def _run_create_resource(ctx: _Context, op: CreateResource | UpdateResource) -> OpOutcome:
    d = op.desired
    ctx.registry.record_applied(
        ctx.env,
        AppliedResource(address=d.address, kind=d.kind, name=d.name, hash=d.hash, body=d.body),
        apply_id=ctx.apply_id,
        action="create" if isinstance(op, CreateResource) else "update",
    )
    return OpOutcome(d.address, op.action, "ok")


def _run_delete_resource(ctx: _Context, op: DeleteResource) -> OpOutcome:
    ctx.registry.record_deleted(ctx.env, op.address, apply_id=ctx.apply_id)
    return OpOutcome(op.address, "delete", "ok")


_EXECUTE: dict[type[Any], Callable[[_Context, Any], OpOutcome]] = {
    CreateAgent: _run_create_agent,
    UpdateAgent: _run_update_agent,
    DeleteAgent: _run_delete_agent,
    Drift: _run_drift,
    AdoptAgent: _run_adopt,
    RemoveDuplicateVersion: _run_remove_duplicate,
    CreateResource: _run_create_resource,
    UpdateResource: _run_create_resource,
    DeleteResource: _run_delete_resource,
}


def _journal_action(op: Op) -> JournalAction:
    if isinstance(op, Drift):
        return "revert" if op.resolution == "revert" else "adopt"
    if isinstance(op, RemoveDuplicateVersion):
        return "delete_version"
    if isinstance(op, DeleteAgent | DeleteResource):
        return "delete"
    if isinstance(op, AdoptAgent):
        return "adopt"
    if isinstance(op, CreateAgent | CreateResource):
        return "create"
    return "update"


def _run_op(ctx: _Context, op: Op) -> OpOutcome:
    try:
        return _EXECUTE[type(op)](ctx, op)
    except ProviderError as exc:
        detail = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # recorded, then reported by the CLI with the address
        detail = f"{type(exc).__name__}: {exc}"
    address = op_address(op)
    action = _journal_action(op)
    try:
        ctx.registry.record_failure(
            ctx.env, address, apply_id=ctx.apply_id, action=action, detail=detail
        )
    except Exception as exc:  # the registry itself failed: still report the op's failure
        detail += f" (and recording the failure failed: {exc})"
    return OpOutcome(address, op.action, "failed", detail=detail)


# ---------------------------------------------------------------- the apply


def _stale_reason(
    plan: Plan, actual: list[AgentVersion], applied: dict[str, AppliedResource]
) -> str:
    actual_fp = compute_actual_fingerprint(
        actual, env=plan.env, prefix=plan.name_prefix, names=plan.scope_names
    )
    if actual_fp != plan.actual_fingerprint:
        return "Foundry changed since the plan was made"
    if compute_applied_fingerprint(applied) != plan.applied_fingerprint:
        return "the registry changed since the plan was made (another apply ran)"
    return ""


def apply_plan(
    plan: Plan,
    *,
    provider: Provider,
    registry: Registry,
    env: str,
    parallelism: int = 8,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[Progress], None] | None = None,
    desired: DesiredState | None = None,
    replan: bool = False,
    allow_delete: bool = True,
    retry: RetryPolicy | None = None,
    rng: random.Random | None = None,
    holder: str | None = None,
    request_timeout: float | None = None,
) -> ApplyResult:
    """Run `plan` in `env` under the environment's lock; see the module docstring.

    `request_timeout`: how long after it was sent a write may still land, recorded for the write
    fence (default: `compute_request_timeout(provider)`). `clock` times `Progress.elapsed`.
    Raises LockTimeoutError, StalePlanError or DeleteNotAllowedError before any change; op
    failures are not raised but reported in the result (and journaled).
    """
    if plan.env != env:
        raise ApplyError(f"the plan is for environment {plan.env!r}, not {env!r}")
    ctx = _build_context(
        provider=provider,
        registry=registry,
        env=env,
        apply_id=f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}",
        policy=retry or RetryPolicy(),
        sleep=sleep,
        rng=rng or random.Random(),
        request_timeout=request_timeout,
    )
    with registry.lock(env, holder=holder or default_holder(), timeout=lock_timeout):
        actual = ctx.retry(provider.list_agents)
        applied = registry.applied(env)
        replanned = False
        reason = _stale_reason(plan, actual, applied)
        if reason:
            if not (replan and desired is not None):
                raise StalePlanError(f"the plan is stale: {reason}; run `runner plan` again")
            plan = compute_plan(desired, actual, applied, env=env, refresh_only=plan.refresh_only)
            replanned = True
        if plan.conflicts:
            raise ApplyError("; ".join(f"{c.address}: {c.message}" for c in plan.conflicts))
        if plan.protected and plan.deletes and not allow_delete:
            names = ", ".join(op_address(op) for op in plan.deletes)
            raise DeleteNotAllowedError(
                f"environment {env!r} is protected and the plan deletes {names}; "
                "nothing was applied. Re-run with --allow-delete to delete them"
            )
        outcomes = _run_stages(
            ctx, plan, parallelism=parallelism, on_progress=on_progress, clock=clock
        )
    return ApplyResult(ctx.apply_id, env, plan, tuple(outcomes), replanned)


def _run_stages(
    ctx: _Context,
    plan: Plan,
    *,
    parallelism: int,
    on_progress: Callable[[Progress], None] | None,
    clock: Callable[[], float],
) -> list[OpOutcome]:
    outcomes: list[OpOutcome] = []
    total = len(plan.ops)
    progress_lock = threading.Lock()
    started = clock()

    def run(op: Op) -> OpOutcome:
        outcome = _run_op(ctx, op)
        with progress_lock:
            outcomes.append(outcome)
            if on_progress is not None:
                on_progress(Progress(len(outcomes), total, outcome, clock() - started))
        return outcome

    failed = False
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        for _stage, stage_ops in groupby(plan.ops, key=op_stage):
            batch = list(stage_ops)
            if failed:
                for op in batch:
                    run_skipped = OpOutcome(
                        op_address(op), op.action, "skipped", "an earlier stage failed"
                    )
                    with progress_lock:
                        outcomes.append(run_skipped)
                continue
            results = list(pool.map(run, batch))
            failed = any(r.outcome == "failed" for r in results)
    order = {op_address(op): i for i, op in enumerate(plan.ops)}
    return sorted(outcomes, key=lambda o: order.get(o.address, 0))


def ensure_agent(
    *,
    provider: Provider,
    registry: Registry,
    env: str,
    desired_agent: DesiredAgent,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    holder: str | None = None,
    request_timeout: float | None = None,
) -> AppliedResource:
    """The applied record of one agent, creating or updating it first when needed.

    For the runtime's get_or_create_agent: a no-op (no lock, one read) when the registry and
    Foundry already hold this exact agent; otherwise a one-agent plan + apply under the env lock,
    so concurrent callers in any thread or process end with one agent and one version.
    """
    record = registry.get(env, desired_agent.address)
    if record is not None and record.hash == desired_agent.hash:
        live = provider.get_agent(desired_agent.foundry_name)
        if live is not None and live.version == record.foundry_version:
            return record
    desired = DesiredState(env=env, agents=(desired_agent,))
    with registry.lock(env, holder=holder or default_holder(), timeout=lock_timeout):
        ctx = _build_context(
            provider=provider,
            registry=registry,
            env=env,
            apply_id=f"ensure-{uuid.uuid4().hex[:8]}",
            policy=RetryPolicy(),
            sleep=sleep,
            rng=random.Random(),
            request_timeout=request_timeout,
        )
        live = ctx.retry(lambda: provider.get_agent(desired_agent.foundry_name))
        record = registry.get(env, desired_agent.address)
        plan = compute_plan(
            desired,
            [live] if live is not None else [],
            {record.address: record} if record is not None else {},
            env=env,
        )
        if plan.conflicts:
            raise ApplyError(plan.conflicts[0].message)
        for op in plan.ops:
            outcome = _run_op(ctx, op)
            if outcome.outcome != "ok":
                raise ApplyError(f"{outcome.address}: {outcome.detail}")
    result = registry.get(env, desired_agent.address)
    if result is None:
        raise ApplyError(f"{desired_agent.address}: not recorded after apply")
    return result
