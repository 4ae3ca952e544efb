"""The provider and registry behind a reload, and their scoped views for a scoped apply.

Role in the flow: the plan and apply steps' access to Foundry and the registry. `Backends`
builds them from the environment on first use (as the CLI does: `build_provider`, the SQLite
registry of the spec folder's project, `runner.paths.ProjectHome`) unless the caller gave them,
and owns only what it built.

The engine plans only the addresses a change touched (plus those with ops pending), from the
state it keeps in memory. `apply_plan` then re-reads Foundry and the registry under the
environment lock to refuse a stale plan, and may re-plan; against the real backends that would
list all 1,000 agents and every record, and compare them with a plan that covers three.
`ScopedProvider` and `ScopedRegistry` make `list_agents` and `applied` read exactly the names
and addresses the plan was made from, one `get` each.

Invariants:
  - Given backends are the caller's: `close()` and `release_provider()` close only what
    `Backends` built.
  - A view narrows what a listing *sees*, never what is written: every other call (reads by
    name, writes, the journal, the lock, the write fence) goes to the real backend unchanged.
  - A view's scope is fixed when it is built and listed in sorted order (deterministic reads);
    closing a view closes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from runner.apply.fence import WriteFence
from runner.providers.base import (
    AgentVersion,
    ConversationMessage,
    Provider,
    ProviderError,
    Reply,
    TextSink,
    ToolOutput,
)
from runner.spec.models import Environment
from runner.state.base import AppliedResource, JournalAction, JournalEntry, Registry
from runner.watch.snapshot import Scope

__all__ = ["Backends", "ScopedProvider", "ScopedRegistry"]


class Backends:
    """The provider and registry a reload plans and applies with, built when first needed."""

    def __init__(
        self,
        *,
        provider: Provider | None = None,
        registry: Registry | None = None,
        provider_factory: Callable[[Environment], Provider] | None = None,
        registry_path: Path | None = None,
        owner: str = "",
    ) -> None:
        self.provider = provider
        self._owner = owner
        self._registry_path = registry_path
        self.registry = registry
        self._owns_provider = provider is None
        self._owns_registry = registry is None
        self._provider_factory = provider_factory

    def ensure(self, env: Environment) -> tuple[Provider, Registry]:
        """The provider and registry, building what is missing (ProviderError if it cannot)."""
        if self.registry is None:
            from runner.paths import registry_path
            from runner.state.backends import open_registry, state_location
            from runner.state.pg_database import StateUnavailableError

            try:  # the environment's `state:` (the SQLite file when it names none)
                from runner.plan.desired import project_identity

                self.registry = open_registry(
                    state_location(env, default=self._registry_path or registry_path()),
                    project=project_identity(env, self._owner),
                )
            except StateUnavailableError as exc:
                raise ProviderError(str(exc)) from None
        if self.provider is None:
            if self._provider_factory is not None:
                self.provider = self._provider_factory(env)
            else:
                from runner.providers import build_provider

                if env.provider == "local" and env.data_dir is None and self._registry_path:
                    # the local store lives with the project, beside its registry
                    env = env.model_copy(update={"data_dir": str(self._registry_path.parent)})
                self.provider = build_provider(env)
        return self.provider, self.registry

    def for_scope(self, env: Environment, scope: Scope | None) -> tuple[Provider, Registry]:
        """What `apply_plan` runs with: the backends, seen through `scope` when there is one."""
        provider, registry = self.ensure(env)
        if scope is None:
            return provider, registry
        return ScopedProvider(provider, scope.names), ScopedRegistry(registry, scope.addresses)

    def release_provider(self) -> None:
        """Close the provider if it was built here (the environment moved to another one)."""
        if self._owns_provider and self.provider is not None:
            self.provider.close()
            self.provider = None

    def close(self) -> None:
        self.release_provider()
        if self._owns_registry and self.registry is not None:
            self.registry.close()
            self.registry = None


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
        self,
        *,
        conversation_id: str,
        agent_name: str,
        agent_version: str | None,
        text: str,
        structured_inputs: Mapping[str, Any] | None = None,
        tool_outputs: Sequence[ToolOutput] = (),
        previous_response_id: str | None = None,
        on_text: TextSink | None = None,
    ) -> Reply:
        return self._provider.respond(
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=agent_version,
            text=text,
            structured_inputs=structured_inputs,
            tool_outputs=tool_outputs,
            previous_response_id=previous_response_id,
            on_text=on_text,
        )

    def conversation_messages(
        self, conversation_id: str, *, limit: int = 200
    ) -> list[ConversationMessage]:
        return self._provider.conversation_messages(conversation_id, limit=limit)

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
        """Pass the executor's write fence through (see `runner.apply.fence.WriteFence`)."""
        if isinstance(self._registry, WriteFence):
            self._registry.record_write_started(env, request_timeout=request_timeout)

    def record_write_finished(self, env: str) -> None:
        if isinstance(self._registry, WriteFence):
            self._registry.record_write_finished(env)

    def history(self, env: str, address: str) -> list[JournalEntry]:
        return self._registry.history(env, address)

    def project_of(self, env: str) -> str | None:
        return self._registry.project_of(env)

    def claim_project(self, env: str, project: str) -> None:
        self._registry.claim_project(env, project)

    def lock(self, env: str, *, holder: str, timeout: float) -> AbstractContextManager[None]:
        return self._registry.lock(env, holder=holder, timeout=timeout)

    def close(self) -> None:
        """The engine owns the real registry."""
