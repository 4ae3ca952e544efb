"""The executor on the real local provider: ordering, recording, stale plans, protected deletes,
retries without duplicate versions, and ensure_agent under concurrency."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runner.apply.executor import (
    DeleteNotAllowedError,
    StalePlanError,
    apply_plan,
    ensure_agent,
)
from runner.apply.retry import RetryPolicy
from runner.plan.desired import (
    DesiredAgent,
    DesiredResource,
    DesiredState,
    managed_metadata,
    sha256_json,
)
from runner.plan.ops import op_address
from runner.plan.planner import compute_plan
from runner.providers.base import AgentVersion, ProviderError, TransientError
from runner.providers.local import LocalProvider
from runner.state.sqlite import SqliteRegistry

NO_WAIT = RetryPolicy(base_delay=0.0)


def agent(name: str, instructions: str = "Help.", *, env: str = "dev") -> DesiredAgent:
    definition = {"model": "gpt-4o-mini", "instructions": instructions, "kind": "prompt"}
    h = sha256_json({"definition": definition, "description": None, "metadata": {}})
    address = f"agent.{name}"
    return DesiredAgent(
        address=address,
        name=name,
        foundry_name=name,
        definition=definition,
        description=None,
        metadata=managed_metadata({}, address=address, env=env, content_hash=h),
        hash=h,
        body={"kind": "Agent", "name": name},
    )


def team(members: list[str]) -> DesiredResource:
    body = {"kind": "Team", "name": "t", "members": [{"agent": m} for m in members]}
    return DesiredResource(
        address="team.t", kind="Team", name="t", body=body, hash=sha256_json(body)
    )


class LosingProvider(LocalProvider):
    """The real local store, but every `lose_every`-th write's response is lost after the write
    (as a dropped connection), and every `fail_every`-th call fails before doing anything."""

    def __init__(self, path: Path, *, lose_every: int = 0, fail_every: int = 0) -> None:
        super().__init__(LocalProvider.open(path).store, owns_store=True)
        self.lose_every, self.fail_every, self.calls = lose_every, fail_every, 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise TransientError("injected 503", retry_after=0.0)

    def list_agents(self) -> list[AgentVersion]:
        self._maybe_fail()
        return super().list_agents()

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion:
        self._maybe_fail()
        written = super().create_version(
            name, definition=definition, metadata=metadata, description=description
        )
        if self.lose_every and self.calls % self.lose_every == 1:
            raise TransientError("connection dropped after the write")
        return written


def plan_for(desired: DesiredState, provider: LocalProvider, registry: SqliteRegistry):  # type: ignore[no-untyped-def]
    return compute_plan(
        desired, provider.list_agents(), registry.applied(desired.env), env=desired.env
    )


def test_apply_creates_records_and_then_plans_nothing(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(
        env="dev", agents=(agent("a"), agent("b")), resources=(team(["a", "b"]),)
    )
    seen: list[str] = []
    result = apply_plan(
        plan_for(desired, provider, registry),
        provider=provider,
        registry=registry,
        env="dev",
        on_progress=lambda p: seen.append(p.last.address),
    )
    assert result.ok and len(result.outcomes) == 3
    assert seen.index("team.t") > max(seen.index("agent.a"), seen.index("agent.b"))
    assert {v.name: v.version for v in provider.list_agents()} == {"a": "1", "b": "1"}
    assert all(v.managed for v in provider.list_agents())
    assert registry.applied("dev")["agent.a"].foundry_version == "1"
    assert not plan_for(desired, provider, registry).ops


def test_lost_responses_and_failures_never_make_a_second_version(tmp_path: Path) -> None:
    provider = LosingProvider(tmp_path / "store.db", lose_every=2, fail_every=3)
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=tuple(agent(f"a{i}") for i in range(12)))
    plan = compute_plan(desired, LocalProvider(provider.store).list_agents(), {}, env="dev")
    result = apply_plan(
        plan,
        provider=provider,
        registry=registry,
        env="dev",
        retry=NO_WAIT,
        sleep=lambda s: None,
        parallelism=4,
    )
    assert result.ok, result.failed
    for i in range(12):
        assert [v.version for v in provider.list_versions(f"a{i}")] == ["1"]
    assert not plan_for(desired, LocalProvider(provider.store), registry).ops


def test_stale_plan_is_refused_or_replanned(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=(agent("a"),))
    plan = plan_for(desired, provider, registry)
    provider.create_version(
        "a", definition={"kind": "prompt", "model": "m", "instructions": "x"}, metadata={}
    )  # someone else took the name meanwhile
    with pytest.raises(StalePlanError, match="Foundry changed"):
        apply_plan(plan, provider=provider, registry=registry, env="dev")
    assert registry.applied("dev") == {}
    provider.delete_agent("a")
    result = apply_plan(
        plan, provider=provider, registry=registry, env="dev", desired=desired, replan=True
    )
    assert result.ok


def test_protected_env_deletes_nothing_without_allow_delete(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    first = DesiredState(
        env="prod", protected=True, agents=(agent("a", env="prod"), agent("b", env="prod"))
    )
    apply_plan(
        plan_for(first, provider, registry), provider=provider, registry=registry, env="prod"
    )
    second = DesiredState(env="prod", protected=True, agents=(agent("a", "changed", env="prod"),))
    plan = plan_for(second, provider, registry)
    with pytest.raises(DeleteNotAllowedError, match=r"agent\.b"):
        apply_plan(plan, provider=provider, registry=registry, env="prod", allow_delete=False)
    assert [v.version for v in provider.list_versions("a")] == ["1"]  # not even the update
    assert provider.get_agent("b") is not None
    assert apply_plan(plan, provider=provider, registry=registry, env="prod", allow_delete=True).ok
    assert provider.get_agent("b") is None and "agent.b" not in registry.applied("prod")


def test_ensure_agent_from_many_threads_makes_one_version(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db", poll_interval=0.005)
    wanted = agent("helper")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            record = ensure_agent(
                provider=provider,
                registry=registry,
                env="dev",
                desired_agent=wanted,
                lock_timeout=30,
            )
            assert record.foundry_version == "1"
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [v.version for v in provider.list_versions("helper")] == ["1"]
    changed = agent("helper", "New instructions.")
    assert (
        ensure_agent(
            provider=provider, registry=registry, env="dev", desired_agent=changed
        ).foundry_version
        == "2"
    )


def test_a_twin_of_the_recorded_version_is_removed_and_the_registry_kept(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    wanted = agent("a")
    desired = DesiredState(env="dev", agents=(wanted, agent("b")))
    assert apply_plan(
        plan_for(desired, provider, registry), provider=provider, registry=registry, env="dev"
    ).ok
    # a killed apply's create_version lands late: the same definition again, as version 2
    provider.create_version(
        "a", definition=wanted.definition, metadata=wanted.metadata, description=None
    )
    plan = plan_for(desired, provider, registry)
    assert [(op.action, op_address(op)) for op in plan.ops] == [("delete_version", "agent.a")]
    result = apply_plan(plan, provider=provider, registry=registry, env="dev")
    assert result.ok, result.failed
    assert [v.version for v in provider.list_versions("a")] == ["1"]
    assert registry.applied("dev")["agent.a"].foundry_version == "1"
    assert not plan_for(desired, provider, registry).ops
    last = registry.history("dev", "agent.a")[-1]
    assert (last.action, last.outcome, last.foundry_version) == ("delete_version", "ok", "2")
    assert last.hash == wanted.hash


def test_an_edit_that_kept_the_metadata_is_drift_not_a_twin(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    wanted = agent("a")
    desired = DesiredState(env="dev", agents=(wanted,))
    apply_plan(
        plan_for(desired, provider, registry), provider=provider, registry=registry, env="dev"
    )
    edited = {**wanted.definition, "instructions": "Edited in the portal."}
    provider.create_version("a", definition=edited, metadata=wanted.metadata)
    assert [op.action for op in plan_for(desired, provider, registry).ops] == ["drift"]


class WatchedProvider(LocalProvider):
    """The local store, posing as a remote service with a 7 s request timeout; records what the
    lock row says while each create_version is on the wire."""

    remote = True
    request_timeout = 7.0

    def __init__(self, path: Path, registry_file: Path) -> None:
        super().__init__(LocalProvider.open(path).store, owns_store=True)
        self.registry_file = registry_file
        self.seen: list[tuple[int, float, bool]] = []

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion:
        with sqlite3.connect(self.registry_file) as conn:
            row = conn.execute(
                "SELECT writes_in_flight, request_timeout, last_write_started_at "
                "FROM registry_locks WHERE env = 'dev'"
            ).fetchone()
        self.seen.append((int(row[0]), float(row[1]), row[2] is not None))
        return super().create_version(
            name, definition=definition, metadata=metadata, description=description
        )


def test_remote_writes_are_announced_in_the_lock_row_before_they_are_sent(tmp_path: Path) -> None:
    provider = WatchedProvider(tmp_path / "store.db", tmp_path / "state.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=(agent("a"), agent("b")))
    result = apply_plan(
        plan_for(desired, provider, registry),
        provider=provider,
        registry=registry,
        env="dev",
        parallelism=1,
    )
    assert result.ok
    # each write is in flight alone (the previous one's answer closed it), with its timeout
    assert provider.seen == [(1, 7.0, True), (1, 7.0, True)]
    assert registry.lock_holder("dev") is None


def test_in_process_writes_need_no_fence(tmp_path: Path) -> None:
    provider = WatchedProvider(tmp_path / "store.db", tmp_path / "state.db")
    provider.remote = False
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=(agent("a"),))
    apply_plan(
        plan_for(desired, provider, registry), provider=provider, registry=registry, env="dev"
    )
    assert provider.seen == [(0, 0.0, False)]


def test_progress_reports_elapsed_time_from_the_injected_clock(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=(agent("a"), agent("b")))
    ticks = iter(range(100))
    seen: list[float] = []
    apply_plan(
        plan_for(desired, provider, registry),
        provider=provider,
        registry=registry,
        env="dev",
        parallelism=1,
        clock=lambda: float(next(ticks)),
        on_progress=lambda p: seen.append(p.elapsed),
    )
    assert seen == [1.0, 2.0]


class GhostProvider(LocalProvider):
    """The local store, where a killed apply's create_version of the same agent lands just
    before ours (it outlived the takeover's grace)."""

    def __init__(self, path: Path) -> None:
        super().__init__(LocalProvider.open(path).store, owns_store=True)
        self.ghosts = 0

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion:
        if self.ghosts == 0:
            self.ghosts += 1
            super().create_version(
                name, definition=definition, metadata=metadata, description=description
            )
        return super().create_version(
            name, definition=definition, metadata=metadata, description=description
        )


def test_a_copy_that_lands_just_before_our_write_is_settled_at_once(tmp_path: Path) -> None:
    provider = GhostProvider(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=(agent("a"), agent("b")))
    result = apply_plan(
        plan_for(desired, provider, registry),
        provider=provider,
        registry=registry,
        env="dev",
        parallelism=1,
    )
    assert result.ok, result.failed
    assert [v.version for v in provider.list_versions("a")] == ["1"]
    assert [v.version for v in provider.list_versions("b")] == ["1"]
    assert registry.applied("dev")["agent.a"].foundry_version == "1"
    assert not plan_for(desired, provider, registry).ops


def test_each_op_is_a_span_of_the_apply_with_its_outcome(
    tmp_path: Path, otel_spans: InMemorySpanExporter
) -> None:
    class Refusing(LocalProvider):
        def create_version(self, name: str, **kwargs: Any) -> AgentVersion:
            raise ProviderError("quota exceeded", code="quota_exceeded", status=403)

    provider = Refusing(LocalProvider.open(tmp_path / "store.db").store, owns_store=True)
    registry = SqliteRegistry(tmp_path / "state.db")
    desired = DesiredState(env="dev", agents=(agent("a"), agent("b")), resources=(team(["a"]),))
    result = apply_plan(
        plan_for(desired, provider, registry), provider=provider, registry=registry, env="dev"
    )
    assert not result.ok
    finished = otel_spans.get_finished_spans()
    (whole,) = [s for s in finished if s.name == "apply dev"]
    ops = [s for s in finished if s.name.startswith("apply create ")]
    assert whole.context is not None
    assert sorted(s.name for s in ops) == ["apply create agent.a", "apply create agent.b"]
    for op in ops:  # children of the apply, though they ran on the executor's threads
        assert op.parent is not None and op.parent.span_id == whole.context.span_id
        assert dict(op.attributes or {})["runner.apply.outcome"] == "failed"
        assert not op.status.is_ok
