"""Scoped views of the provider and the registry, for applying a scoped plan.

Role in the flow: the apply step of a reload. The engine plans only the addresses a change
touched (plus those with ops pending), from the state it keeps in memory. `apply_plan` then
re-reads Foundry and the registry under the environment lock to refuse a stale plan, and may
re-plan; against the real backends that would list all 1,000 agents and every record, and
compare them with a plan that covers three. These views make `list_agents` and `applied` read
exactly the names and addresses the plan was made from, one `get` each.

Invariants:
  - Every other call (reads by name, writes, the journal, the lock, the write fence) goes to
    the real backend unchanged: a view narrows what a listing *sees*, never what is written.
  - The scope is fixed when the view is built and listed in sorted order (deterministic reads).
  - Closing a view closes nothing: the engine owns the real provider and registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from runner.apply.executor import WriteFence
from runner.providers.base import AgentVersion, Provider, Reply
from runner.state.base import AppliedResource, JournalAction, JournalEntry, Registry

__all__ = ["ScopedProvider", "ScopedRegistry"]


class ScopedProvider:
    """The real provider, except that `list_agents` reads only the names a scoped plan covers."""

    def __init__(self, provider: Provider, names: Iterable[str]) -> None:
        self._provider = provider
        self._names = sorted(set(names))
        self.name = provider.name
        self.remote = provider.remote

    def list_agents(self) -> list[AgentVersion]:
        found = (self._provider.get_agent(n) for n in self._names)
        return [v for v in found if v is not None]

    def get_agent(self, name: str) -> AgentVersion | None:
        return self._provider.get_agent(name)

    def list_versions(self, name: str) -> list[AgentVersion]:
        return self._provider.list_versions(name)

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion:
        return self._provider.create_version(
            name, definition=definition, metadata=metadata, description=description
        )

    def delete_agent(self, name: str) -> None:
        self._provider.delete_agent(name)

    def delete_version(self, name: str, version: str) -> None:
        self._provider.delete_version(name, version)

    def create_conversation(self, *, metadata: Mapping[str, str] | None = None) -> str:
        return self._provider.create_conversation(metadata=metadata)

    def respond(
        self, *, conversation_id: str, agent_name: str, agent_version: str | None, text: str
    ) -> Reply:
        return self._provider.respond(
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=agent_version,
            text=text,
        )

    def request_count(self) -> int:
        return self._provider.request_count()

    def close(self) -> None:
        """The engine owns the real provider; closing the view closes nothing."""


class ScopedRegistry:
    """The real registry, except that `applied` reads only the addresses a scoped plan covers."""

    def __init__(self, registry: Registry, addresses: Iterable[str]) -> None:
        self._registry = registry
        self._addresses = sorted(set(addresses))

    def applied(self, env: str) -> dict[str, AppliedResource]:
        found = ((a, self._registry.get(env, a)) for a in self._addresses)
        return {a: r for a, r in found if r is not None}

    def get(self, env: str, address: str) -> AppliedResource | None:
        return self._registry.get(env, address)

    def record_applied(
        self, env: str, resource: AppliedResource, *, apply_id: str, action: JournalAction
    ) -> None:
        self._registry.record_applied(env, resource, apply_id=apply_id, action=action)

    def record_deleted(self, env: str, address: str, *, apply_id: str) -> None:
        self._registry.record_deleted(env, address, apply_id=apply_id)

    def record_failure(
        self, env: str, address: str, *, apply_id: str, action: JournalAction, detail: str
    ) -> None:
        self._registry.record_failure(env, address, apply_id=apply_id, action=action, detail=detail)

    def record_version_removed(
        self, env: str, address: str, *, version: str, apply_id: str
    ) -> None:
        self._registry.record_version_removed(env, address, version=version, apply_id=apply_id)

    def record_write_started(self, env: str, *, request_timeout: float) -> None:
        """Pass the executor's write fence through (see `runner.apply.executor.WriteFence`)."""
        if isinstance(self._registry, WriteFence):
            self._registry.record_write_started(env, request_timeout=request_timeout)

    def record_write_finished(self, env: str) -> None:
        if isinstance(self._registry, WriteFence):
            self._registry.record_write_finished(env)

    def history(self, env: str, address: str) -> list[JournalEntry]:
        return self._registry.history(env, address)

    def lock(self, env: str, *, holder: str, timeout: float) -> AbstractContextManager[None]:
        return self._registry.lock(env, holder=holder, timeout=timeout)

    def close(self) -> None:
        """The engine owns the real registry."""
