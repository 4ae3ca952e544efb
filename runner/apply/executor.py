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
    reduced to the oldest at once (see `ops_run`); one that lands after is found by the next
    plan and removed (`RemoveDuplicateVersion`, a `delete_version`).
  - A protected environment's deletes need `allow_delete=True`; without it nothing at all runs.

Clock (elapsed time in `Progress`), sleep and randomness are injected; `on_progress` is called
after every op.

Modules: this one keeps the apply itself (`apply_plan`, the staged pool `_run_stages`,
`ensure_agent`), its results and errors; each op is done by `runner.apply.ops_run.run_op`
(`OpOutcome` is its result), within the `OpContext`, write fence and request timeout of
`runner.apply.fence`; retries are `runner.apply.retry`.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby

from runner import telemetry
from runner.apply.fence import OpContext, RetryNotice
from runner.apply.ops_run import OpOutcome, run_op
from runner.apply.retry import RetryPolicy, call_with_retry
from runner.plan.desired import DesiredAgent, DesiredState
from runner.plan.ops import Op, Plan, op_address, op_stage
from runner.plan.planner import (
    compute_actual_fingerprint,
    compute_applied_fingerprint,
    compute_plan,
)
from runner.providers.base import PROJECT_KEY, AgentVersion, Provider, TransientError
from runner.state.base import AppliedResource, Registry

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_PARALLELISM",
    "ApplyError",
    "ApplyResult",
    "DeleteNotAllowedError",
    "Progress",
    "StalePlanError",
    "apply_plan",
    "default_holder",
    "ensure_agent",
    "read_actual",
]

DEFAULT_LOCK_TIMEOUT = 120.0
DEFAULT_PARALLELISM = 32
"""Operations in flight at once. Foundry does not rate-limit agent calls (limits are per model
deployment) and each op is one or two small requests, so a wide window is what makes a big apply
latency-bound instead of round-trip-bound; 429s are still retried with their Retry-After. At 16,
200 creates at 50 ms were 13 waves (0.65 s) for 0.4 s of client CPU: still waiting on the
network; 32 (7 waves) leaves the CPU the bound, within the provider's 64 kept connections."""


class ApplyError(Exception):
    """An apply that cannot start; the message names what to do."""


class StalePlanError(ApplyError):
    pass


class DeleteNotAllowedError(ApplyError):
    pass


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
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> list[AgentVersion]:
    """Every agent's latest version (one paged listing), retried on transient failures
    (`on_retry` is told of each, as the apply's ops tell theirs)."""
    policy = policy or RetryPolicy()

    def told(retry: int, exc: TransientError, delay: float) -> None:
        if on_retry is not None:
            on_retry(RetryNotice("Foundry", retry + 1, policy.attempts, delay, exc))

    return call_with_retry(
        provider.list_agents, policy=policy, sleep=sleep, rng=rng or random.Random(), on_retry=told
    )


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
    parallelism: int = DEFAULT_PARALLELISM,
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
    on_retry: Callable[[RetryNotice], None] | None = None,
    lock_held: bool = False,
) -> ApplyResult:
    """Run `plan` in `env` under the environment's lock; see the module docstring.

    `on_retry` is told of each retry before its wait (`RetryNotice`: op, attempt, delay, error).
    `lock_held`: the caller already holds the lock on `registry` (the CLI takes it before it
    plans), so it is not taken again.

    `request_timeout`: how long after it was sent a write may still land, recorded for the write
    fence (default: `compute_request_timeout(provider)`). `clock` times `Progress.elapsed`.
    Raises LockTimeoutError, StalePlanError or DeleteNotAllowedError before any change; op
    failures are not raised but reported in the result (and journaled).
    """
    if plan.env != env:
        raise ApplyError(f"the plan is for environment {plan.env!r}, not {env!r}")
    ctx = OpContext.create(
        provider=provider,
        registry=registry,
        env=env,
        apply_id=f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}",
        policy=retry or RetryPolicy(),
        sleep=sleep,
        rng=rng or random.Random(),
        request_timeout=request_timeout,
    )
    ctx.on_retry = on_retry
    held = (
        contextlib.nullcontext()
        if lock_held
        else registry.lock(env, holder=holder or default_holder(), timeout=lock_timeout)
    )
    with held:
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
        with telemetry.span(
            f"apply {env}", {"runner.env": env, "runner.apply.id": ctx.apply_id}
        ) as span:
            outcomes = _run_stages(
                ctx, plan, parallelism=parallelism, on_progress=on_progress, clock=clock
            )
            telemetry.annotate(span, {"runner.apply.ops": len(outcomes)})
    return ApplyResult(ctx.apply_id, env, plan, tuple(outcomes), replanned)


def _run_stages(
    ctx: OpContext,
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
    caller = contextvars.copy_context()  # each op's span is a child of the caller's (the apply)

    def run(op: Op) -> OpOutcome:
        outcome = caller.copy().run(run_op, ctx, op)
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
    # the project the agent is written for owns it (none recorded: an earlier runner's rules)
    owner = desired_agent.metadata.get(PROJECT_KEY, "")
    desired = DesiredState(env=env, agents=(desired_agent,), project=owner)
    with registry.lock(env, holder=holder or default_holder(), timeout=lock_timeout):
        ctx = OpContext.create(
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
            outcome = run_op(ctx, op)
            if outcome.outcome != "ok":
                raise ApplyError(f"{outcome.address}: {outcome.detail}")
    result = registry.get(env, desired_agent.address)
    if result is None:
        raise ApplyError(f"{desired_agent.address}: not recorded after apply")
    return result
