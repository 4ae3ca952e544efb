"""LocalStore: Foundry's agents, conversations and responses, persisted in one SQLite file.

Role in the flow: the store behind the `local` provider (the default for development, tests and
`runner test`) and the store that `runner emulator` serves over Foundry's REST protocol.
plan/apply and the runtime reach it through `LocalProvider` (in `local`), which implements the
same `Provider` Protocol as real Foundry; the emulator's routes and the tests call it directly.

A LocalStore is one face over four parts, each in its own module:
  `local_database.StoreDatabase`            the file: per-thread connections, write transactions;
  `local_agents.AgentVersions`              agents and their immutable, numbered versions;
  `local_conversations.Conversations`       conversations and their items;
  `local_responses.Responses`               the deterministic responses (and function calls).
Each method here is the part's own method, handed the call unchanged (`_HandedTo`): one
signature, one docstring, in the module that owns the tables.

Invariants: every write is one SQLite transaction, committed before the call returns (WAL
journal; `synchronous="NORMAL"` is durable across process crashes, `"FULL"` also across power
loss, at about 20x the cost per write). The store is thread-safe and safe across processes
sharing the file; a writer still blocked after `busy_timeout_ms` gets TransientError (code
`busy`). After `close()` using the store raises ProviderError.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from runner.providers.local_agents import AGENTS_SCHEMA, AgentVersions
from runner.providers.local_conversations import CONVERSATIONS_SCHEMA, Conversations
from runner.providers.local_database import StoreDatabase, Synchronous
from runner.providers.local_responses import Responses

__all__ = ["LocalStore"]

P = ParamSpec("P")
R = TypeVar("R")


class _HandedTo(Generic[P, R]):
    """A LocalStore method that is `method` of the part in attribute `part`, called as is."""

    def __init__(self, part: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self._part = part
        self._method = method
        self.__doc__ = method.__doc__

    def __get__(self, store: object, owner: type | None = None) -> Callable[P, R]:
        if store is None:  # looked up on the class (help(), inspect): the part's own function
            return cast("Callable[P, R]", self._method)
        bound: Callable[P, R] = getattr(getattr(store, self._part), self._method.__name__)
        return bound


class LocalStore:
    """Foundry's agents, conversations and responses in one SQLite file (module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 30_000,
        synchronous: Synchronous = "NORMAL",
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self._database = StoreDatabase(
            self.path,
            busy_timeout_ms=busy_timeout_ms,
            synchronous=synchronous,
            schema=AGENTS_SCHEMA + CONVERSATIONS_SCHEMA,
            read_only=read_only,
        )
        self._agents = AgentVersions(self._database)
        self._conversations = Conversations(self._database)
        self._responses = Responses(self._database)

    def close(self) -> None:
        """Close every connection this store opened; using it afterwards raises ProviderError."""
        self._database.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # agents and their versions (local_agents)
    create_version = _HandedTo("_agents", AgentVersions.create_version)
    get_version = _HandedTo("_agents", AgentVersions.get_version)
    latest_version = _HandedTo("_agents", AgentVersions.latest_version)
    list_latest = _HandedTo("_agents", AgentVersions.list_latest)
    list_versions = _HandedTo("_agents", AgentVersions.list_versions)
    delete_agent = _HandedTo("_agents", AgentVersions.delete_agent)
    delete_version = _HandedTo("_agents", AgentVersions.delete_version)

    # conversations, their items and responses (local_conversations)
    create_conversation = _HandedTo("_conversations", Conversations.create_conversation)
    get_conversation = _HandedTo("_conversations", Conversations.get_conversation)
    add_items = _HandedTo("_conversations", Conversations.add_items)
    list_items = _HandedTo("_conversations", Conversations.list_items)
    delete_conversation = _HandedTo("_conversations", Conversations.delete_conversation)
    # responses (local_responses)
    respond = _HandedTo("_responses", Responses.respond)
    get_response = _HandedTo("_responses", Responses.get_response)
