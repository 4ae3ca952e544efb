"""The per-op interpreters: one function per op type, chosen through `_EXECUTE` by `run_op`.

Role in the flow: `executor.apply_plan` runs each op of a stage through `run_op` (and
`ensure_agent` a one-agent plan's ops); the planner decided *what*, these only do it and record
the outcome in the registry the moment it happens (`OpOutcome`).

Invariants:
  - `run_op` never raises for an op's failure: it journals it (`record_failure`) and returns a
    `failed` OpOutcome; a failing registry is reported in the detail.
  - `_write_version` (create/update/revert) recovers a lost response: before a retried
    `create_version` the agent's versions newer than the plan's base are listed and one carrying
    the same `runner-hash` is adopted, so a lost response never becomes a second version;
    `_settle_twins` reduces copies that landed anyway to the oldest.
  - Every remote write goes through `OpContext.send_write` (the write fence, `fence`); a NotFound
    on a delete counts as done (already gone, or our own earlier attempt's lost response).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runner import telemetry
from runner.apply.fence import CURRENT_ADDRESS, OpContext
from runner.plan.desired import DesiredAgent
from runner.plan.ops import (
    AdoptAgent,
    CreateAgent,
    CreateResource,
    DeleteAgent,
    DeleteResource,
    Drift,
    Op,
    RemoveDuplicateVersion,
    UpdateAgent,
    UpdateResource,
    op_address,
)
from runner.providers.base import AgentVersion, NotFoundError, ProviderError
from runner.state.base import AppliedResource, JournalAction

__all__ = ["OpOutcome", "Outcome", "run_op"]

Outcome = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class OpOutcome:
    """What became of one op: `ok`, `failed` (with the error in `detail`) or `skipped`."""

    address: str
    action: str
    outcome: Outcome
    detail: str = ""
    foundry_version: str | None = None


# ---------------------------------------------------------------- one function per op type


def _version_number(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def _write_version(
    ctx: OpContext, desired: DesiredAgent, *, base_version: str | None, action: JournalAction
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
    ctx: OpContext, desired: DesiredAgent, *, base_version: str | None, written: AgentVersion
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
    ctx: OpContext, desired: DesiredAgent, *, version: str, hash_: str, action: JournalAction
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


def _run_create_agent(ctx: OpContext, op: CreateAgent) -> OpOutcome:
    return _write_version(ctx, op.desired, base_version=None, action="create")


def _run_update_agent(ctx: OpContext, op: UpdateAgent) -> OpOutcome:
    return _write_version(ctx, op.desired, base_version=op.base_version, action="update")


def _run_drift(ctx: OpContext, op: Drift) -> OpOutcome:
    if op.resolution == "refresh":
        _record_agent(
            ctx, op.desired, version=op.live_version, hash_=op.live_hash or "", action="adopt"
        )
        return OpOutcome(op.desired.address, "adopt", "ok", foundry_version=op.live_version)
    return _write_version(ctx, op.desired, base_version=op.live_version, action="revert")


def _run_adopt(ctx: OpContext, op: AdoptAgent) -> OpOutcome:
    _record_agent(ctx, op.desired, version=op.version, hash_=op.hash or "", action="adopt")
    return OpOutcome(op.desired.address, "adopt", "ok", foundry_version=op.version)


def _run_delete_agent(ctx: OpContext, op: DeleteAgent) -> OpOutcome:
    if op.in_foundry:

        def delete() -> None:
            # NotFound: already gone, or a lost response to our own earlier attempt
            with contextlib.suppress(NotFoundError):
                ctx.send_write(lambda: ctx.provider.delete_agent(op.foundry_name))

        ctx.retry(delete)
    ctx.registry.record_deleted(ctx.env, op.address, apply_id=ctx.apply_id)
    return OpOutcome(op.address, "delete", "ok")


def _run_remove_duplicate(ctx: OpContext, op: RemoveDuplicateVersion) -> OpOutcome:
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


def _run_create_resource(ctx: OpContext, op: CreateResource | UpdateResource) -> OpOutcome:
    d = op.desired
    ctx.registry.record_applied(
        ctx.env,
        AppliedResource(address=d.address, kind=d.kind, name=d.name, hash=d.hash, body=d.body),
        apply_id=ctx.apply_id,
        action="create" if isinstance(op, CreateResource) else "update",
    )
    return OpOutcome(d.address, op.action, "ok")


def _run_delete_resource(ctx: OpContext, op: DeleteResource) -> OpOutcome:
    ctx.registry.record_deleted(ctx.env, op.address, apply_id=ctx.apply_id)
    return OpOutcome(op.address, "delete", "ok")


_EXECUTE: dict[type[Any], Callable[[OpContext, Any], OpOutcome]] = {
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


def run_op(ctx: OpContext, op: Op) -> OpOutcome:
    """Do `op` and record its outcome; a failure is journaled and returned, never raised.

    Traced as `apply <action> <address>` when an OpenTelemetry SDK is installed."""
    if telemetry.tracer() is None:
        return _run_op(ctx, op)
    address = op_address(op)
    with telemetry.span(
        f"apply {op.action} {address}",
        {"runner.env": ctx.env, "runner.apply.action": op.action, "runner.address": address},
    ) as span:
        outcome = _run_op(ctx, op)
        failed = outcome.detail if outcome.outcome == "failed" else None
        telemetry.annotate(span, {"runner.apply.outcome": outcome.outcome}, error=failed)
        return outcome


def _run_op(ctx: OpContext, op: Op) -> OpOutcome:
    token = CURRENT_ADDRESS.set(op_address(op))  # retry notices name the op
    try:
        return _EXECUTE[type(op)](ctx, op)
    except ProviderError as exc:
        detail = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # recorded, then reported by the CLI with the address
        detail = f"{type(exc).__name__}: {exc}"
    finally:
        CURRENT_ADDRESS.reset(token)
    address = op_address(op)
    action = _journal_action(op)
    try:
        ctx.registry.record_failure(
            ctx.env, address, apply_id=ctx.apply_id, action=action, detail=detail
        )
    except Exception as exc:  # the registry itself failed: still report the op's failure
        detail += f" (and recording the failure failed: {exc})"
    return OpOutcome(address, op.action, "failed", detail=detail)
